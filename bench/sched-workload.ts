// bench/sched's cluster and workload: nodes of three sizes over two architectures and four zones,
// a tenth of them tainted for dedicated work, and pods with the mix a real fleet sends — plain
// requests, zone selectors, architecture constraints, tolerations, best-effort, preferences; and
// how its benches read their sizes from the environment.

import type { KubeObject } from '../src/api/types.js'
import type { SimulatedNodeSpec } from './simulated-host.js'

const GiB = 1024 ** 3
export const ZONE_LABEL = 'topology.kubernetes.io/zone'
export const ACCELERATOR_LABEL = 'bramble.io/accelerator'
const ZONES = ['zone-a', 'zone-b', 'zone-c', 'zone-d']
const SIZES = [
  { cpuCores: 4, memoryBytes: 4 * GiB }, // a Raspberry Pi 4
  { cpuCores: 8, memoryBytes: 16 * GiB },
  { cpuCores: 16, memoryBytes: 64 * GiB },
]
export const APP_IMAGE = 'registry.bench.invalid/bench/app:1'

export function simulatedNodes(count: number): SimulatedNodeSpec[] {
  return Array.from({ length: count }, (_, i) => {
    const size = SIZES[i % SIZES.length]!
    const gpu = i % 10 === 9
    const maintenance = i % 10 === 4
    return {
      name: `sim-${String(i).padStart(4, '0')}`,
      arch: i % 2 === 0 ? 'arm64' : 'amd64',
      ...size,
      address: `10.200.${Math.floor(i / 250)}.${(i % 250) + 1}`,
      labels: { [ZONE_LABEL]: ZONES[Math.floor(i / 2) % ZONES.length]!, ...(gpu ? { [ACCELERATOR_LABEL]: 'gpu' } : {}) },
      taints: [
        ...(gpu ? [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' as const }] : []),
        ...(maintenance ? [{ key: 'maintenance', value: 'soon', effect: 'PreferNoSchedule' as const }] : []),
      ],
    }
  })
}

/** Pod `i` of the workload, in `namespace`. */
export function benchPod(i: number, namespace: string): KubeObject {
  const kind = i % 20
  const cpu = `${100 + (i % 5) * 100}m`
  const memory = `${64 * (1 + (i % 4))}Mi`
  const requests = kind >= 15 && kind <= 17 ? undefined : { cpu, memory }
  const spec: Record<string, any> = {
    terminationGracePeriodSeconds: 1,
    containers: [{ name: 'app', image: APP_IMAGE, ...(requests ? { resources: { requests } } : {}) }],
  }
  const annotations: Record<string, string> = {}
  const zone = ZONES[i % ZONES.length]!
  const arch = Math.floor(i / 20) % 2 === 0 ? 'arm64' : 'amd64'
  if (kind >= 8 && kind <= 10) spec.nodeSelector = { [ZONE_LABEL]: zone }
  else if (kind === 11 || kind === 12) {
    spec.affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/arch', operator: 'In', values: [arch] }] }] } } }
  } else if (kind === 13) annotations['bramble.io/architectures'] = arch
  else if (kind === 14) {
    spec.nodeSelector = { [ACCELERATOR_LABEL]: 'gpu' }
    spec.tolerations = [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }]
  } else if (kind >= 18) {
    spec.affinity = { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 50, preference: { matchExpressions: [{ key: ZONE_LABEL, operator: 'In', values: [zone] }] } }] } }
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `bench-${String(i).padStart(5, '0')}`, namespace, labels: { app: 'bench', shape: String(kind) }, ...(Object.keys(annotations).length ? { annotations } : {}) },
    spec,
  } as KubeObject
}

/** An environment variable holding a whole number from 1 to `max` (`fallback` when unset). */
export function positiveInt(name: string, fallback: number, max: number): number {
  const raw = process.env[name]
  const value = raw === undefined ? fallback : Number(raw)
  if (!Number.isInteger(value) || value < 1 || value > max) throw new Error(`${name} must be a whole number from 1 to ${max}, got "${raw}"`)
  return value
}
