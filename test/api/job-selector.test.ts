// The selector the API gives a new Job: on its uid, with matching labels on the pod template,
// unless the Job brings its own (manualSelector, or a selector already set).

import t from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { CONTROLLER_UID_LABEL, JOB_NAME_LABEL, withGeneratedJobSelector } from '../../src/api/job-selector.js'
import { validateObject } from '../../src/api/validate.js'

const UID = '6f1c1bde-0d4e-4b8a-9a57-3f2b8f0e1a11'

function job(spec: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'pi', namespace: 'default' },
    spec: { template: { metadata: { labels: { app: 'pi' } }, spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox' }] } }, ...spec },
  }
}

t.test('a Job without a selector gets one on its uid, and its template the labels it selects', async (t) => {
  const out = withGeneratedJobSelector(job(), UID)
  t.same(out.spec.selector, { matchLabels: { [CONTROLLER_UID_LABEL]: UID } })
  t.same(out.spec.template.metadata.labels, { app: 'pi', [CONTROLLER_UID_LABEL]: UID, [JOB_NAME_LABEL]: 'pi', 'controller-uid': UID, 'job-name': 'pi' })
  t.same(validateObject(out).errors, [], 'and the result is valid')
})

t.test('a Job with its own selector, or manualSelector, is left as it is (the do-nothing case)', async (t) => {
  const own = job({ selector: { matchLabels: { app: 'pi' } } })
  t.equal(withGeneratedJobSelector(own, UID), own)
  const manual = job({ manualSelector: true })
  t.equal(withGeneratedJobSelector(manual, UID), manual)
})

t.test('a template without metadata still gets the labels', async (t) => {
  const out = withGeneratedJobSelector({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'x' }, spec: { template: { spec: { restartPolicy: 'Never', containers: [] } } } }, UID)
  t.equal(out.spec.template.metadata.labels[JOB_NAME_LABEL], 'x')
})
