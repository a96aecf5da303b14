// Seeds and mutations for property tests of manifests: real manifests (shared/manifests) and one
// valid object of each kind, and fast-check arbitraries that set, delete and add fields anywhere
// in them. Used in-process (test/api/fuzz.test.ts) and over HTTP (test/hub/api-fuzz.test.ts).

import fc from 'fast-check'
import { readFileSync } from 'node:fs'
import { parseManifests } from '../../src/api/codec.js'
import type { KubeObject } from '../../src/api/types.js'

const container = { name: 'app', image: 'nginx:1.27', ports: [{ containerPort: 80, name: 'http' }], resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '1' } }, livenessProbe: { httpGet: { port: 80 } } }
const template = { metadata: { labels: { app: 'web' } }, spec: { containers: [container], volumes: [{ name: 'v', emptyDir: {} }], tolerations: [{ key: 'edge', operator: 'Exists' }] } }
const jobSpec = { template: { spec: { restartPolicy: 'OnFailure', containers: [container] } } }

export const SEEDS: KubeObject[] = [
  ...parseManifests(readFileSync(new URL('../../../shared/manifests/guestbook.yaml', import.meta.url), 'utf8')),
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default', labels: { app: 'web' } }, spec: template.spec },
  { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'd' }, spec: { selector: { matchLabels: { app: 'web' } }, template } },
  { apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'r' }, spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template } },
  { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'j' }, spec: jobSpec },
  { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'c' }, spec: { schedule: '*/5 * * * *', jobTemplate: { spec: jobSpec } } },
  { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: { a: 'eA==' } },
  { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm' }, data: { a: 'b' } },
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ns' } },
  { apiVersion: 'v1', kind: 'Node', metadata: { name: 'pi1' }, spec: { podCIDR: '10.42.1.0/24' } },
  { apiVersion: 'v1', kind: 'Event', metadata: { name: 'e', namespace: 'default' }, involvedObject: { kind: 'Pod', name: 'p' }, type: 'Normal' },
  { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'web' }, subsets: [{ addresses: [{ ip: '10.42.0.5' }], ports: [{ port: 80 }] }] },
]

type Path = (string | number)[]

function pathsOf(v: unknown, at: Path = [], out: Path[] = []): Path[] {
  out.push(at)
  if (Array.isArray(v)) v.forEach((x, i) => pathsOf(x, [...at, i], out))
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) pathsOf(x, [...at, k], out)
  return out
}

export type Mutation = { pick: number; op: 'set' | 'delete' | 'add'; key: string; value: unknown }

export function mutate(obj: KubeObject, mutations: Mutation[]): unknown {
  let root: any = structuredClone(obj)
  for (const m of mutations) {
    const paths = pathsOf(root)
    const path = paths[m.pick % paths.length]
    if (path.length === 0) {
      if (m.op === 'set') root = m.value
      continue
    }
    let parent = root
    for (const p of path.slice(0, -1)) parent = parent[p]
    const last = path[path.length - 1]
    const target = parent[last]
    if (m.op === 'delete') {
      if (Array.isArray(parent)) parent.splice(last as number, 1)
      else delete parent[last]
    } else if (m.op === 'add' && target && typeof target === 'object' && !Array.isArray(target)) target[m.key] = m.value
    else if (m.op === 'add' && Array.isArray(target)) target.push(m.value)
    else parent[last] = m.value
  }
  return root
}

const interesting = fc.constantFrom('', '0', '-1', '25%', '0%', 'Always', 'Never', 'TCP', 'None', '1.5', '128Mi', 'a=b', '@hourly', '* * * * *', 'x'.repeat(300), '..', 'kubernetes.io/x', 'delete', 'replace', '\u0000', '😀', '1e400')
const values = fc.oneof(
  interesting,
  fc.string({ maxLength: 20 }),
  fc.integer({ min: -100000, max: 100000 }),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.jsonValue({ maxDepth: 2 }),
)
export const mutation = fc.record({
  pick: fc.nat(),
  op: fc.constantFrom('set' as const, 'delete' as const, 'add' as const),
  key: fc.oneof(fc.constantFrom('name', 'image', 'port', 'replicas', 'spec', 'status', 'metadata', '__proto__', 'constructor', '$patch', '$retainKeys', '$setElementOrder/containers', '$deleteFromPrimitiveList/args'), fc.string({ maxLength: 8 })),
  value: values,
})

/** One RFC 6902 operation, its paths picked among the target object's own (or a raw, odd one). */
export type JsonPatchOp = { op: string; pick: number; from: number; rawPath: string | null; value: unknown }

export const jsonPatchOp = fc.record({
  op: fc.constantFrom('add', 'remove', 'replace', 'move', 'copy', 'test', 'bogus'),
  pick: fc.nat(),
  from: fc.nat(),
  rawPath: fc.option(fc.constantFrom('', '/', '/-', '/__proto__/polluted', '/constructor/prototype/x', '/metadata/~2', '/spec/containers/99', 'no-slash', '/metadata/labels/a~1b'), { freq: 4 }),
  value: values,
})

const pointer = (path: Path) => path.map((p) => `/${String(p).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('')

/** The operations as a JSON patch body for `target`. */
export function jsonPatchOf(target: KubeObject, ops: JsonPatchOp[]): unknown[] {
  const paths = pathsOf(target)
  return ops.map((o) => {
    const path = o.rawPath ?? pointer(paths[o.pick % paths.length])
    return { op: o.op, path, ...(o.op === 'move' || o.op === 'copy' ? { from: pointer(paths[o.from % paths.length]) } : {}), ...(o.op === 'remove' ? {} : { value: o.value }) }
  })
}
