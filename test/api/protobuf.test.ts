import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import protobuf from 'protobufjs'
import { decodeK8sProtobuf } from '../../src/api/protobuf.js'
import { K8S_PROTO } from '../../src/api/k8s-proto/k8s-proto-text.js'

const dir = new URL('../fixtures/proto/', import.meta.url)
const bodies = readdirSync(dir).filter((f) => f.endsWith('.bin'))

t.test('decodes every body real kubectl create sent to the same object its --dry-run=client JSON shows', async (t) => {
  t.ok(bodies.length >= 10, 'fixtures are present')
  for (const file of bodies) {
    const expected = JSON.parse(readFileSync(new URL(file.replace(/\.kubectl-[\d.]+\.bin$/, '.expected.json'), dir), 'utf8'))
    t.same(decodeK8sProtobuf(readFileSync(new URL(file, dir))), expected, file)
  }
})

t.test('kubectl 1.32 and 1.33 send the same bytes for create namespace|configmap|secret|deployment', async (t) => {
  for (const name of ['namespace-demo', 'configmap-c', 'secret-s', 'deployment-web']) {
    t.ok(readFileSync(new URL(`${name}.kubectl-1.32.bin`, dir)).equals(readFileSync(new URL(`${name}.kubectl-1.33.bin`, dir))), name)
  }
})

t.test('binary Secret data arrives as base64 strings', async (t) => {
  const secret = decodeK8sProtobuf(readFileSync(new URL('secret-s.kubectl-1.32.bin', dir)))
  t.equal(Buffer.from((secret.data as Record<string, string>).password, 'base64').toString(), 'hunter2')
})

const root = protobuf.parse(K8S_PROTO, { keepCase: true }).root
function envelope(apiVersion: string, kind: string, message: string, value: object): Buffer {
  const type = root.lookupType(message)
  const raw = type.encode(type.fromObject(value)).finish()
  const unknown = root.lookupType('Unknown')
  return Buffer.concat([Buffer.from('k8s\0', 'latin1'), Buffer.from(unknown.encode(unknown.fromObject({ typeMeta: { apiVersion, kind }, raw })).finish())])
}

t.test('keeps an explicit zero in a pointer field, converts Time, IntOrString and Quantity', async (t) => {
  const body = envelope('apps/v1', 'Deployment', 'Deployment', {
    metadata: { name: 'd', namespace: 'ns', creationTimestamp: { seconds: 1735689600 }, generation: 0 },
    spec: {
      replicas: 0,
      minReadySeconds: 0,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: { type: 1, strVal: '25%' }, maxUnavailable: { type: 0, intVal: 1 } } },
      template: {
        spec: {
          containers: [{ name: 'c', image: 'i', resources: { limits: { cpu: { string: '500m' } } } }],
          volumes: [{ name: 'scratch', volumeSource: { emptyDir: {} } }, { name: 'cfg', volumeSource: { configMap: { localObjectReference: { name: 'cm' } } } }],
        },
      },
    },
  })
  t.same(decodeK8sProtobuf(body), {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'd', namespace: 'ns', creationTimestamp: '2025-01-01T00:00:00Z' },
    spec: {
      replicas: 0,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: '25%' } },
      template: {
        spec: {
          volumes: [{ name: 'scratch', emptyDir: {} }, { name: 'cfg', configMap: { name: 'cm' } }],
          containers: [{ name: 'c', image: 'i', resources: { limits: { cpu: '500m' } } }],
        },
      },
    },
  })
})

t.test('refuses what it cannot decode, saying what to do', async (t) => {
  t.throws(() => decodeK8sProtobuf(Buffer.from('{"kind":"Namespace"}')), { name: 'ProtobufDecodeError', code: 'BRAMBLE_PROTOBUF_BAD_MAGIC' })
  t.throws(() => decodeK8sProtobuf(envelope('rbac.authorization.k8s.io/v1', 'Role', 'Namespace', {})), { code: 'BRAMBLE_PROTOBUF_UNKNOWN_KIND', message: /send it as JSON/ })
  t.throws(() => decodeK8sProtobuf(Buffer.concat([Buffer.from('k8s\0', 'latin1'), Buffer.from([0x0a, 0xff])])), { code: 'BRAMBLE_PROTOBUF_MALFORMED' })
  const withProbe = envelope('v1', 'Pod', 'Pod', { metadata: { name: 'p' }, spec: { containers: [{ name: 'c', livenessProbe: Buffer.from([0x10, 0x05]) }] } })
  t.throws(() => decodeK8sProtobuf(withProbe), { code: 'BRAMBLE_PROTOBUF_UNSUPPORTED_FIELD', message: /Pod\.spec\.containers\[0\]\.livenessProbe/ })
})
