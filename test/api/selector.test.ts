import t from 'tap'
import {
  checkFieldSelector,
  labelSelectorFromObject,
  labelSelectorToString,
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
} from '../../src/api/selector.js'

t.test('parses every form of the label selector string', async (t) => {
  t.same(parseLabelSelector('a=b,c!=d,e in (x,y),f notin (z),g,!h'), [
    { key: 'a', operator: 'In', values: ['b'] },
    { key: 'c', operator: 'NotIn', values: ['d'] },
    { key: 'e', operator: 'In', values: ['x', 'y'] },
    { key: 'f', operator: 'NotIn', values: ['z'] },
    { key: 'g', operator: 'Exists', values: [] },
    { key: 'h', operator: 'DoesNotExist', values: [] },
  ])
  t.same(parseLabelSelector('app==web'), [{ key: 'app', operator: 'In', values: ['web'] }])
  t.same(parseLabelSelector(' app = web , tier in ( a , b ) '), [
    { key: 'app', operator: 'In', values: ['web'] },
    { key: 'tier', operator: 'In', values: ['a', 'b'] },
  ])
  t.same(parseLabelSelector('app.kubernetes.io/name=x'), [{ key: 'app.kubernetes.io/name', operator: 'In', values: ['x'] }])
  t.same(parseLabelSelector('gpu>2,mem<8'), [
    { key: 'gpu', operator: 'Gt', values: ['2'] },
    { key: 'mem', operator: 'Lt', values: ['8'] },
  ])
  t.same(parseLabelSelector('a='), [{ key: 'a', operator: 'In', values: [''] }])
  t.same(parseLabelSelector(''), [])
})

t.test('refuses malformed label selector strings', async (t) => {
  for (const bad of ['a=b,', ',a', 'a in x', 'a in (x', 'a in ()', 'a b', '=b', 'a=b=c', 'a>x', '!', 'a=-bad-', 'bad key!=x', 'a=(b)', 'a!b']) {
    t.throws(() => parseLabelSelector(bad), { code: 'BRAMBLE_API_SELECTOR' }, bad)
  }
})

t.test('matches labels', async (t) => {
  const labels = { app: 'web', tier: 'frontend', gpu: '4' }
  const m = (s: string): boolean => matchesLabels(parseLabelSelector(s), labels)
  t.ok(m(''))
  t.ok(m('app=web'))
  t.notOk(m('app=db'))
  t.ok(m('app!=db'))
  t.ok(m('missing!=x'), '!= is met by an absent label')
  t.ok(m('tier in (frontend,backend)'))
  t.notOk(m('tier notin (frontend)'))
  t.ok(m('missing notin (x)'))
  t.ok(m('app,!missing'))
  t.notOk(m('!app'))
  t.ok(m('gpu>3'))
  t.notOk(m('gpu<3'))
  t.notOk(m('app>3'), 'Gt on a non-integer label does not match')
  t.ok(matchesLabels([], undefined))
  t.notOk(matchesLabels(parseLabelSelector('app'), undefined))
  t.notOk(matchesLabels(parseLabelSelector('toString'), {}), 'inherited properties are not labels')
})

t.test('round-trips requirements to a string', async (t) => {
  const s = 'a=b,c!=d,e in (x,y),f notin (y,z),g,!h,n>1'
  t.equal(labelSelectorToString(parseLabelSelector(s)), s)
})

t.test('builds requirements from matchLabels and matchExpressions', async (t) => {
  const r = labelSelectorFromObject(
    { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['a', 'b'] }, { key: 'canary', operator: 'DoesNotExist' }] },
    'spec.selector',
  )
  t.same(r.errors, [])
  t.ok(matchesLabels(r.requirements, { app: 'web', tier: 'a' }))
  t.notOk(matchesLabels(r.requirements, { app: 'web', tier: 'a', canary: 'y' }))
  t.notOk(matchesLabels(r.requirements, { app: 'web' }))
  t.same(labelSelectorFromObject(undefined, 'spec.selector'), { requirements: [], errors: [] })
})

t.test('reports bad selector objects with paths', async (t) => {
  const r = labelSelectorFromObject(
    {
      matchLabels: { 'bad key': 'v', ok: 'bad value!' },
      matchExpressions: [
        { key: 'a', operator: 'In' },
        { key: 'b', operator: 'Exists', values: ['x'] },
        { key: 'c', operator: 'Near', values: ['x'] },
        { operator: 'Exists' },
        { key: 'd', operator: 'Gt', values: ['1'] },
        'junk',
      ],
    },
    'spec.selector',
  )
  t.same(
    r.errors.map((e) => [e.field, e.type]),
    [
      ['spec.selector.matchLabels', 'FieldValueInvalid'],
      ['spec.selector.matchLabels', 'FieldValueInvalid'],
      ['spec.selector.matchExpressions[0].values', 'FieldValueRequired'],
      ['spec.selector.matchExpressions[1].values', 'FieldValueForbidden'],
      ['spec.selector.matchExpressions[2].operator', 'FieldValueInvalid'],
      ['spec.selector.matchExpressions[3].key', 'FieldValueRequired'],
      ['spec.selector.matchExpressions[4].operator', 'FieldValueInvalid'],
      ['spec.selector.matchExpressions[5]', 'FieldValueTypeInvalid'],
    ],
  )
  t.match(r.errors[2].message, "Required value: must be specified when `operator` is 'In' or 'NotIn'")
  t.equal(r.errors[4].message, 'Invalid value: "Near": not a valid selector operator')
  t.same(labelSelectorFromObject('app=web', 'spec.selector').errors.map((e) => e.type), ['FieldValueTypeInvalid'])
})

t.test('node selector requirements take Gt and Lt with one integer', async (t) => {
  const ok = labelSelectorFromObject({ matchExpressions: [{ key: 'cpus', operator: 'Gt', values: ['2'] }] }, 'x', { allowGtLt: true })
  t.same(ok.errors, [])
  t.ok(matchesLabels(ok.requirements, { cpus: '4' }))
  const bad = labelSelectorFromObject({ matchExpressions: [{ key: 'cpus', operator: 'Lt', values: ['two'] }, { key: 'c', operator: 'Gt', values: ['1', '2'] }] }, 'x', { allowGtLt: true })
  t.same(bad.errors.map((e) => [e.field, e.type]), [
    ['x.matchExpressions[0].values[0]', 'FieldValueInvalid'],
    ['x.matchExpressions[1].values', 'FieldValueRequired'],
  ])
})

t.test('parses field selectors', async (t) => {
  t.same(parseFieldSelector('metadata.name=x,spec.nodeName!=y,status.phase==Running'), [
    { field: 'metadata.name', operator: '=', value: 'x' },
    { field: 'spec.nodeName', operator: '!=', value: 'y' },
    { field: 'status.phase', operator: '=', value: 'Running' },
  ])
  t.same(parseFieldSelector('involvedObject.fieldPath=spec.containers{a\\,b}'), [{ field: 'involvedObject.fieldPath', operator: '=', value: 'spec.containers{a,b}' }])
  t.same(parseFieldSelector('spec.nodeName='), [{ field: 'spec.nodeName', operator: '=', value: '' }])
  t.same(parseFieldSelector(''), [])
  for (const bad of ['metadata.name', '=x', 'a=b=c', 'a=\\q']) t.throws(() => parseFieldSelector(bad), { code: 'BRAMBLE_API_SELECTOR' }, bad)
})

t.test('matches fields per kind', async (t) => {
  const pod = { kind: 'Pod', metadata: { name: 'p', namespace: 'default' }, spec: { nodeName: 'pi1', restartPolicy: 'Always' }, status: { phase: 'Running', podIP: '10.42.0.5' } }
  const m = (s: string, o: Record<string, unknown>): boolean => matchesFields(parseFieldSelector(s), o)
  t.ok(m('metadata.name=p,metadata.namespace=default', pod))
  t.ok(m('spec.nodeName=pi1,status.phase=Running,status.podIP=10.42.0.5', pod))
  t.notOk(m('spec.nodeName!=pi1', pod))
  t.ok(m('spec.nodeName=', { kind: 'Pod', metadata: { name: 'unscheduled' } }), 'an absent field reads as empty')
  const ev = { kind: 'Event', metadata: { name: 'e' }, involvedObject: { kind: 'Pod', name: 'p', namespace: 'default', uid: 'u1' }, reason: 'Pulled', type: 'Normal', source: { component: 'agent' } }
  t.ok(m('involvedObject.kind=Pod,involvedObject.name=p,involvedObject.namespace=default,involvedObject.uid=u1,reason=Pulled,type=Normal,source=agent', ev))
  t.ok(m('spec.unschedulable=true', { kind: 'Node', metadata: { name: 'n' }, spec: { unschedulable: true } }))
  t.ok(m('spec.unschedulable=false', { kind: 'Node', metadata: { name: 'n' }, spec: {} }))
  t.ok(m('type=kubernetes.io/tls', { kind: 'Secret', metadata: { name: 's' }, type: 'kubernetes.io/tls' }))
  t.ok(m('', pod))
})

t.test('an unsupported field is an error naming it', async (t) => {
  t.throws(() => matchesFields(parseFieldSelector('spec.nodeName=x'), { kind: 'Service', metadata: { name: 's' } }), {
    code: 'BRAMBLE_API_FIELD_SELECTOR_UNSUPPORTED',
    field: 'spec.nodeName',
    message: /field label not supported: spec\.nodeName/,
  })
  t.throws(() => checkFieldSelector(parseFieldSelector('status.phase=Running'), 'ConfigMap'), { message: /status\.phase/ })
  t.doesNotThrow(() => checkFieldSelector(parseFieldSelector('status.phase=Running'), 'Pod'))
})
