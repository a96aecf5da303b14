import t from 'tap'
import { validateObject } from '../../src/api/validate.js'
import type { FieldError } from '../../src/api/types.js'
import { cronScheduleError } from '../../src/api/validate-cron.js'

const pairs = (errs: FieldError[]): string[] => [...new Set(errs.map((e) => `${e.field} ${e.type}`))].sort()
const podTemplate = (labels: Record<string, string> = { app: 'web' }, spec: Record<string, unknown> = {}) => ({
  metadata: { labels },
  spec: { containers: [{ name: 'app', image: 'nginx' }], ...spec },
})
const deployment = (spec: Record<string, unknown>) => ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec })
const good = { selector: { matchLabels: { app: 'web' } }, template: podTemplate() }

t.test('a deployment needs a non-empty selector matching its template', async (t) => {
  t.same(validateObject(deployment(good)).errors, [])
  t.same(pairs(validateObject(deployment({ template: podTemplate() })).errors), ['spec.selector FieldValueRequired'])
  t.same(pairs(validateObject(deployment({ ...good, selector: {} })).errors), ['spec.selector FieldValueInvalid'])
  const mismatch = validateObject(deployment({ ...good, template: podTemplate({ app: 'db' }) })).errors
  t.same(pairs(mismatch), ['spec.template.metadata.labels FieldValueInvalid'])
  t.match(mismatch[0].message, '`selector` does not match template `labels`')
  t.same(pairs(validateObject(deployment({ selector: good.selector })).errors), ['spec.template FieldValueRequired'])
  t.same(pairs(validateObject(deployment(undefined as never)).errors), ['spec.selector FieldValueRequired', 'spec.template FieldValueRequired'])
})

t.test('deployment replicas, strategy and timings', async (t) => {
  const errs = validateObject(
    deployment({ ...good, replicas: -1, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: '0%' } }, revisionHistoryLimit: -2, minReadySeconds: 10, progressDeadlineSeconds: 5 }),
  ).errors
  t.same(pairs(errs), [
    'spec.progressDeadlineSeconds FieldValueInvalid',
    'spec.replicas FieldValueInvalid',
    'spec.revisionHistoryLimit FieldValueInvalid',
    'spec.strategy.rollingUpdate.maxUnavailable FieldValueInvalid',
  ])
  t.match(errs.find((e) => e.field.endsWith('maxUnavailable'))?.message, 'may not be 0 when `maxSurge` is 0')
  t.same(pairs(validateObject(deployment({ ...good, strategy: { type: 'BlueGreen' } })).errors), ['spec.strategy.type FieldValueNotSupported'])
  t.same(pairs(validateObject(deployment({ ...good, strategy: { type: 'Recreate', rollingUpdate: { maxSurge: 1 } } })).errors), ['spec.strategy.rollingUpdate FieldValueForbidden'])
  t.same(pairs(validateObject(deployment({ ...good, strategy: { rollingUpdate: { maxSurge: '25', maxUnavailable: '150%' } } })).errors), [
    'spec.strategy.rollingUpdate.maxSurge FieldValueInvalid',
    'spec.strategy.rollingUpdate.maxUnavailable FieldValueInvalid',
  ])
  t.same(validateObject(deployment({ ...good, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } })).errors, [])
  t.same(pairs(validateObject(deployment({ ...good, template: podTemplate({ app: 'web' }, { restartPolicy: 'Never' }) })).errors), ['spec.template.spec.restartPolicy FieldValueNotSupported'])
  t.same(pairs(validateObject(deployment({ ...good, template: podTemplate({ app: 'web' }, { containers: [{ name: 'b', image: 'x' }, { name: 'b', image: 'y' }] }) })).errors), [
    'spec.template.spec.containers[1].name FieldValueDuplicate',
  ])
})

t.test('replica sets and daemon sets', async (t) => {
  const rs = (spec: Record<string, unknown>) => validateObject({ apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'r' }, spec })
  t.same(rs({ ...good, replicas: 3 }).errors, [])
  t.same(pairs(rs({ ...good, replicas: -3 }).errors), ['spec.replicas FieldValueInvalid'])
  const ds = (spec: Record<string, unknown>) => validateObject({ apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'd' }, spec })
  t.same(ds(good).errors, [])
  t.same(pairs(ds({ ...good, updateStrategy: { type: 'Sometimes' } }).errors), ['spec.updateStrategy.type FieldValueNotSupported'])
  t.same(pairs(ds({ ...good, updateStrategy: { rollingUpdate: { maxUnavailable: 0 } } }).errors), ['spec.updateStrategy.rollingUpdate.maxUnavailable FieldValueInvalid'], 'maxSurge defaults to 0 for daemon sets')
  t.same(pairs(ds({ template: podTemplate() }).errors), ['spec.selector FieldValueRequired'])
})

const job = (spec: Record<string, unknown>) => ({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'j' }, spec })
const jobTemplate = { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'run', image: 'busybox' }] } } }

t.test('jobs', async (t) => {
  t.same(validateObject(job(jobTemplate)).errors, [])
  t.same(pairs(validateObject(job({ template: { spec: { containers: [{ name: 'run', image: 'busybox' }] } } })).errors), ['spec.template.spec.restartPolicy FieldValueRequired'])
  const always = validateObject(job({ template: { spec: { restartPolicy: 'Always', containers: [{ name: 'run', image: 'busybox' }] } } })).errors
  t.same(pairs(always), ['spec.template.spec.restartPolicy FieldValueNotSupported'])
  t.equal(always[0].message, 'Unsupported value: "Always": supported values: "OnFailure", "Never"')
  t.same(pairs(validateObject(job({ ...jobTemplate, completions: -1, parallelism: -1, backoffLimit: -1, completionMode: 'Odd' })).errors), [
    'spec.backoffLimit FieldValueInvalid',
    'spec.completionMode FieldValueNotSupported',
    'spec.completions FieldValueInvalid',
    'spec.parallelism FieldValueInvalid',
  ])
  t.same(pairs(validateObject(job({ ...jobTemplate, manualSelector: true })).errors), ['spec.selector FieldValueRequired'])
})

t.test('cron jobs', async (t) => {
  const cron = (spec: Record<string, unknown>) => validateObject({ apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'c' }, spec })
  t.same(cron({ schedule: '*/5 * * * *', jobTemplate: { spec: jobTemplate } }).errors, [])
  t.same(cron({ schedule: '@hourly', concurrencyPolicy: 'Forbid', jobTemplate: { spec: jobTemplate } }).errors, [])
  t.same(pairs(cron({ schedule: '61 * * * *', concurrencyPolicy: 'Sometimes', jobTemplate: { spec: jobTemplate } }).errors), [
    'spec.concurrencyPolicy FieldValueNotSupported',
    'spec.schedule FieldValueInvalid',
  ])
  t.same(pairs(cron({ jobTemplate: { spec: { template: { spec: { restartPolicy: 'Never', containers: [] } } } } }).errors), [
    'spec.jobTemplate.spec.template.spec.containers FieldValueRequired',
    'spec.schedule FieldValueRequired',
  ])
  t.same(pairs(cron({ schedule: '@daily' }).errors), ['spec.jobTemplate FieldValueRequired'])
})

t.test('cron schedules: five fields or a macro', async (t) => {
  for (const ok of ['* * * * *', '0 0 * * *', '*/15 9-17 * * 1-5', '0 12 1,15 JAN-JUN MON', '5 4 * * sun', '0 0 ? * 7', '@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly', '0-59/10 * * * *'])
    t.equal(cronScheduleError(ok), undefined, ok)
  for (const bad of ['', '* * * *', '* * * * * *', '60 * * * *', '* 24 * * *', '* * 0 * *', '* * * 13 *', '* * * * 8', '*/0 * * * *', '5-1 * * * *', '@every 5m', '@often', 'TZ=UTC * * * * *', 'a b c d e', '1,,2 * * * *'])
    t.type(cronScheduleError(bad), 'string', bad)
})
