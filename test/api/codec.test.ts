import t from 'tap'
import { readFileSync } from 'node:fs'
import { parseManifests, toYaml, toYamlDocuments } from '../../src/api/codec.js'
import { validateObject } from '../../src/api/validate.js'
import { applyDefaults } from '../../src/api/defaults.js'

const GUESTBOOK = new URL('../../../shared/manifests/guestbook.yaml', import.meta.url)

t.test('the guestbook manifest parses and validates as it is', async (t) => {
  const objs = parseManifests(readFileSync(GUESTBOOK, 'utf8'), 'guestbook.yaml')
  t.same(
    objs.map((o) => `${o.kind}/${o.metadata.name}`),
    ['Service/redis-master', 'Deployment/redis-master', 'Service/redis-replica', 'Deployment/redis-replica', 'Service/frontend', 'Deployment/frontend'],
  )
  for (const o of objs) {
    t.same(validateObject(o), { errors: [], unknownFields: [], ignoredFields: [] }, `${o.kind}/${o.metadata.name}`)
    t.same(validateObject(applyDefaults(o)).errors, [], `${o.kind}/${o.metadata.name} once defaulted`)
  }
})

t.test('reads multi-document YAML, skipping empty documents', async (t) => {
  const text = '---\n# nothing\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  "on": yes\n---\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n...\n'
  const objs = parseManifests(text)
  t.same(objs.map((o) => o.metadata.name), ['a', 'b'])
  t.same(objs[0].data, { on: 'yes' }, 'YAML 1.2: yes is a string, as Kubernetes manifests expect')
  t.same(parseManifests(''), [])
  t.same(parseManifests('\n---\n'), [])
})

t.test('reads JSON, lists and arrays', async (t) => {
  t.same(parseManifests('{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"x"}}'), [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x' } }])
  const list = parseManifests(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a' } }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'b' } }] }))
  t.same(list.map((o) => o.metadata.name), ['a', 'b'])
  const podList = parseManifests('apiVersion: v1\nkind: PodList\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: p}\n')
  t.same(podList.map((o) => o.kind), ['Pod'])
})

t.test('parse errors name the source, the document and the line', async (t) => {
  const text = 'apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n'
  t.throws(() => parseManifests(text, 'app.yaml'), { code: 'BRAMBLE_API_MANIFEST_PARSE', source: 'app.yaml', documentIndex: 1, message: /^app\.yaml: document 2, line \d+: / })
  t.throws(() => parseManifests('a: b\na: c\n', 'dup.yaml'), { code: 'BRAMBLE_API_MANIFEST_PARSE', documentIndex: 0 })
  t.throws(() => parseManifests('just a string\n', 's.yaml'), { code: 'BRAMBLE_API_MANIFEST_PARSE', message: /expected an object/ })
  t.throws(() => parseManifests('kind: List\nitems: [1]\n', 'l.yaml'), { code: 'BRAMBLE_API_MANIFEST_PARSE', message: /items\[0\]/ })
  t.throws(() => parseManifests('{"kind": ', 'broken.json'), { code: 'BRAMBLE_API_MANIFEST_PARSE', source: 'broken.json' })
})

t.test('writes YAML as kubectl does', async (t) => {
  const obj = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', annotations: { long: 'x '.repeat(100).trim() } }, spec: { containers: [{ name: 'a', image: 'nginx', args: ['--port', '80'] }] } }
  const yaml = toYaml(obj)
  t.equal(
    yaml,
    `apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    long: ${'x '.repeat(100).trim()}\nspec:\n  containers:\n  - name: a\n    image: nginx\n    args:\n    - --port\n    - "80"\n`,
  )
  t.same(parseManifests(yaml), [obj], 'round-trips')
  const two = toYamlDocuments([{ a: 1 }, { b: 2 }])
  t.equal(two, 'a: 1\n---\nb: 2\n')
})
