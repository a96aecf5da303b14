// A pod's persistentVolumeClaim volumes on the agent: mounted from the bound volume's directory
// (a relative hostPath under the agent's data dir), made before the pod starts (0777, or 02775 owned
// by the pod's fsGroup, which the containers join), a claim not yet bound here holds the pod; and
// the directories of volumes the hub no longer sends are removed (on a real temp dir).

import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { appContainerSpec } from '../../src/agent/pod-container-spec.js'
import { PodConfigProblem, type DesiredPod } from '../../src/agent/desired-pod.js'
import { CLAIM_DIR_FSGROUP_MODE, CLAIM_DIR_MODE, podVolumes } from '../../src/agent/pod-volumes.js'
import type { PlanSettings } from '../../src/agent/pod-planner.js'
import { securityFields } from '../../src/agent/pod-security.js'
import { pruneVolumeDirs } from '../../src/agent/volume-dirs.js'
import type { KubeObject } from '../../src/api/types.js'

const settings: PlanSettings = {
  clusterId: 'c1',
  podsDir: '/var/lib/bramble/agent/pods',
  secretsDir: '/run/bramble/c1/pods',
  pauseImage: 'bramble/pause:1',
  log: { maxSize: '10m', maxFile: 3 },
  defaultGraceSeconds: 30,
  backoff: { initialMs: 10_000, maxMs: 300_000, resetAfterMs: 600_000 },
  dataDir: '/var/lib/bramble/agent',
}

const volume = (name: string, path: string): KubeObject => ({ apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name }, spec: { hostPath: { path }, claimRef: { namespace: 'default', name: 'data-db-0' } } })

function desired(claims: Record<string, KubeObject>, securityContext?: any): DesiredPod {
  return {
    pod: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'db-0', namespace: 'default', uid: 'uid-db-0' },
      spec: {
        ...(securityContext ? { securityContext } : {}),
        containers: [{ name: 'db', image: 'busybox', volumeMounts: [{ name: 'data', mountPath: '/data' }] }],
        volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data-db-0' } }],
      },
    },
    configMaps: {},
    secrets: {},
    claims,
  }
}

t.test("mounts the bound volume's directory under the agent's data dir, made 0777 before the pod starts", async (t) => {
  const d = desired({ 'data-db-0': volume('pvc-1', 'volumes/pvc-1') })
  const volumes = podVolumes(d, settings)
  if (volumes instanceof PodConfigProblem) throw new Error(volumes.message)
  t.same(volumes.hostPaths, [{ path: '/var/lib/bramble/agent/volumes/pvc-1', kind: 'directory', mode: CLAIM_DIR_MODE }])
  const spec = appContainerSpec(d, d.pod.spec.containers[0], 'app', settings, 'sandbox', 0)
  if (spec instanceof PodConfigProblem) throw new Error(spec.message)
  t.match(spec.mounts, [{ type: 'bind', source: '/var/lib/bramble/agent/volumes/pvc-1', target: '/data', readOnly: false }])
})

t.test('a volume with an absolute hostPath is mounted from there', async (t) => {
  const d = desired({ 'data-db-0': volume('usb', '/mnt/usb') })
  const spec = appContainerSpec(d, d.pod.spec.containers[0], 'app', settings, 'sandbox', 0)
  if (spec instanceof PodConfigProblem) throw new Error(spec.message)
  t.match(spec.mounts, [{ source: '/mnt/usb', target: '/data' }])
})

t.test('with an fsGroup the directory is group-owned and setgid, and the containers join the group', async (t) => {
  const d = desired({ 'data-db-0': volume('pvc-1', 'volumes/pvc-1') }, { fsGroup: 2000, runAsUser: 1000 })
  const volumes = podVolumes(d, settings)
  if (volumes instanceof PodConfigProblem) throw new Error(volumes.message)
  t.same(volumes.hostPaths, [{ path: '/var/lib/bramble/agent/volumes/pvc-1', kind: 'directory', mode: CLAIM_DIR_FSGROUP_MODE, group: 2000 }])
  t.same(securityFields(d.pod.spec, d.pod.spec.containers[0]).groupAdd, ['2000'])
})

t.test('a claim not bound to a volume on this node holds the pod, naming the claim', async (t) => {
  const d = desired({})
  const volumes = podVolumes(d, settings)
  t.ok(volumes instanceof PodConfigProblem)
  t.equal((volumes as PodConfigProblem).message, 'persistentvolumeclaim "data-db-0" is not bound to a volume on this node yet')
  t.ok(appContainerSpec(d, d.pod.spec.containers[0], 'app', settings, 'sandbox', 0) instanceof PodConfigProblem)
})

t.test('removes the directories of volumes no longer sent, keeps the others and anything that is not a directory', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sts-volume-dirs-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  t.same(await pruneVolumeDirs(dataDir, []), [], 'no volumes directory yet: nothing to do')
  for (const name of ['pvc-kept', 'pvc-gone']) {
    mkdirSync(join(dataDir, 'volumes', name), { recursive: true })
    writeFileSync(join(dataDir, 'volumes', name, 'data'), name)
  }
  writeFileSync(join(dataDir, 'volumes', 'notes.txt'), 'a file someone left')
  const removed = await pruneVolumeDirs(dataDir, [volume('pvc-kept', 'volumes/pvc-kept'), volume('usb', '/mnt/usb')])
  t.same(removed, ['pvc-gone'])
  t.ok(existsSync(join(dataDir, 'volumes', 'pvc-kept', 'data')))
  t.notOk(existsSync(join(dataDir, 'volumes', 'pvc-gone')))
  t.ok(existsSync(join(dataDir, 'volumes', 'notes.txt')))
})
