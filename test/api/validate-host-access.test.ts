// Validation of what reaches into the node: securityContext, hostPath types, host-network ports and
// extended resources, each bad value named by its field path.

import t from 'tap'
import { applyDefaults } from '../../src/api/defaults.js'
import type { KubeObject } from '../../src/api/types.js'
import { validateObject } from '../../src/api/validate.js'
import { schedule } from '../../src/sched/scheduler.js'

const pod = (spec: Record<string, unknown>) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default' }, spec })
const c = (extra: Record<string, unknown> = {}) => ({ name: 'app', image: 'busybox', ...extra })
const errors = (spec: Record<string, unknown>) => validateObject(pod(spec)).errors.map((e) => `${e.field}: ${e.message}`)

t.test('a pod using all of it, as Home Assistant next to a Zigbee stick would, is valid and nothing is ignored', async (t) => {
  const r = validateObject(
    pod({
      hostNetwork: true,
      hostPID: true,
      hostIPC: true,
      securityContext: { runAsUser: 1000, runAsGroup: 1000, supplementalGroups: [20] },
      volumes: [{ name: 'zigbee', hostPath: { path: '/dev/ttyUSB0', type: 'CharDevice' } }, { name: 'config', hostPath: { path: '/srv/ha', type: 'DirectoryOrCreate' } }],
      containers: [
        c({
          ports: [{ containerPort: 8123, hostPort: 8123 }],
          securityContext: { privileged: false, capabilities: { add: ['NET_ADMIN', 'CAP_NET_RAW'], drop: ['ALL'] }, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, runAsUser: 1001 },
          resources: { limits: { 'devices.bramble.dev/serial': 1 } },
          volumeMounts: [{ name: 'zigbee', mountPath: '/dev/zigbee' }, { name: 'config', mountPath: '/config' }],
        }),
      ],
    }),
  )
  t.same(r.errors, [])
  t.same(r.ignoredFields, [], 'Bramble acts on every one of these fields')
})

t.test('bad securityContext values name their field', async (t) => {
  t.same(errors({ securityContext: { runAsUser: -1, supplementalGroups: [5, -2] }, containers: [c({ securityContext: { runAsGroup: 4294967296 } })] }).sort(), [
    'spec.containers[0].securityContext.runAsGroup: Invalid value: 4294967296: must be between 0 and 2147483647, inclusive',
    'spec.securityContext.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive',
    'spec.securityContext.supplementalGroups[1]: Invalid value: -2: must be between 0 and 2147483647, inclusive',
  ])
  t.same(errors({ containers: [c({ securityContext: { capabilities: { add: ['NET_ADMIN', 'FLY'], drop: ['cap_bogus'] } } })] }), [
    'spec.containers[0].securityContext.capabilities.add[1]: Invalid value: "FLY": must be a Linux capability name, with or without CAP_ (NET_ADMIN, CAP_SYS_TIME), or ALL',
    'spec.containers[0].securityContext.capabilities.drop[0]: Invalid value: "cap_bogus": must be a Linux capability name, with or without CAP_ (NET_ADMIN, CAP_SYS_TIME), or ALL',
  ])
  t.same(errors({ containers: [c({ securityContext: { privileged: true, allowPrivilegeEscalation: false, capabilities: { add: ['CAP_SYS_ADMIN'] } } })] }), [
    'spec.containers[0].securityContext: Invalid value: "": cannot set `allowPrivilegeEscalation` to false and `privileged` to true',
    'spec.containers[0].securityContext: Invalid value: "": cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN',
  ])
})

t.test('hostPath: a known type, an absolute path without ..', async (t) => {
  const vol = (hostPath: Record<string, unknown>) => ({ volumes: [{ name: 'v', hostPath }], containers: [c()] })
  const [typeErr] = errors(vol({ path: '/dev/ttyUSB0', type: 'SerialPort' }))
  t.match(typeErr, /^spec\.volumes\[0\]\.hostPath\.type: Unsupported value: "SerialPort": supported values: "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"/)
  t.same(errors(vol({ path: 'dev/ttyUSB0' })), ['spec.volumes[0].hostPath.path: Invalid value: "dev/ttyUSB0": must be an absolute path'])
  t.same(errors(vol({ path: '/srv/../etc' })), ['spec.volumes[0].hostPath.path: Invalid value: "/srv/../etc": must not contain \'..\''])
  t.same(errors(vol({ path: '/srv', type: '' })), [], '"" is the default: no check')
})

t.test('with hostNetwork a hostPort must equal its containerPort', async (t) => {
  t.same(errors({ hostNetwork: true, containers: [c({ ports: [{ containerPort: 80, hostPort: 8080 }] })] }), ['spec.containers[0].ports[0].hostPort: Invalid value: 8080: must match `containerPort` when `hostNetwork` is true'])
  t.same(errors({ containers: [c({ ports: [{ containerPort: 80, hostPort: 8080 }] })] }), [], 'without hostNetwork any host port goes')
})

t.test('extended resources are whole and cannot be overcommitted', async (t) => {
  const res = (resources: Record<string, unknown>) => ({ containers: [c({ resources })] })
  t.same(errors(res({ limits: { 'devices.bramble.dev/serial': '500m' } })), ['spec.containers[0].resources.limits.devices.bramble.dev/serial: Invalid value: "500m": must be an integer'])
  t.same(errors(res({ requests: { 'devices.bramble.dev/serial': 1 } })), ['spec.containers[0].resources.limits.devices.bramble.dev/serial: Forbidden: Limit must be set for non overcommitable resources'])
  t.same(errors(res({ requests: { 'devices.bramble.dev/serial': 1 }, limits: { 'devices.bramble.dev/serial': 2 } })), ['spec.containers[0].resources.requests.devices.bramble.dev/serial: Invalid value: "1": must be equal to devices.bramble.dev/serial limit of 2'])
  t.same(errors(res({ requests: { 'devices.bramble.dev/serial': 2 }, limits: { 'devices.bramble.dev/serial': 2 } })), [])
  t.same(errors(res({ requests: { cpu: '100m' }, limits: { cpu: '200m' } })), [], 'cpu may be overcommitted as before')
})

t.test('defaults: a hostNetwork pod publishes its container ports on the node; hostPath type is ""', async (t) => {
  const p = applyDefaults(pod({ hostNetwork: true, volumes: [{ name: 'v', hostPath: { path: '/srv' } }], containers: [c({ ports: [{ containerPort: 8123 }, { containerPort: 53, hostPort: 53, protocol: 'UDP' }] })] }) as KubeObject)
  t.same(p.spec.containers[0].ports, [{ containerPort: 8123, hostPort: 8123, protocol: 'TCP' }, { containerPort: 53, hostPort: 53, protocol: 'UDP' }])
  t.equal(p.spec.volumes[0].hostPath.type, '')
  const own = applyDefaults(pod({ containers: [c({ ports: [{ containerPort: 80 }] })] }) as KubeObject)
  t.same(own.spec.containers[0].ports, [{ containerPort: 80, protocol: 'TCP' }], 'a pod of its own network: no host port')
  // So two of them never share a node, as with Kubernetes.
  const node = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n' }, status: { allocatable: { cpu: '4', memory: '4Gi', pods: '110' }, conditions: [{ type: 'Ready', status: 'True' }] } }
  t.match(schedule(p, { nodes: [{ node, pods: [p] }] }), { kind: 'unschedulable', reasons: { "node(s) didn't have free ports for the requested pod ports": 1 } })
})
