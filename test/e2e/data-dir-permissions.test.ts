// Issue 6: files in the data dirs are the owner's alone. `bramble up` (a hub and a local agent on
// the real Docker engine) runs a Pod with a Secret and a ConfigMap volume; afterwards every file
// and directory in the hub's and the agent's data dir is neither group- nor other-accessible. The
// one exception is what lies inside a pod's own directory: its volume files keep the modes the pod
// asks for (a container's user must read them), and the owner-only pods directory above them keeps
// everyone else on the host out. (Secret volume files live on tmpfs, outside the data dir.)

import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import t, { type Test } from 'tap'
import { closeApiAgents } from '../helpers/api-client.js'
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../helpers/busybox-image.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'
import { runCli, until } from '../helpers/e2e.js'
import { startHubProcess } from '../helpers/hub-process.js'

const docker = dockerClient()
const PODS_DIR = join('agent', 'pods')

const POD = `
apiVersion: v1
kind: Secret
metadata: {name: perm-secret}
stringData: {password: hunter2-perm}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: perm-config}
data: {greeting: hello}
---
apiVersion: v1
kind: Pod
metadata: {name: perm-pod}
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{name: creds, secret: {secretName: perm-secret}}, {name: config, configMap: {name: perm-config}}]
  containers:
  - name: sleeper
    image: ${BUSYBOX_IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'trap "exit 0" TERM; while :; do sleep 1; done']
    volumeMounts: [{name: creds, mountPath: /creds}, {name: config, mountPath: /config}]
`

/** Every path under `root` (relative), with its mode bits and whether it is a directory. */
function walk(root: string): Array<{ path: string; mode: number; dir: boolean }> {
  const out: Array<{ path: string; mode: number; dir: boolean }> = []
  const visit = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name)
      const st = statSync(full, { throwIfNoEntry: false })
      if (!st) continue
      out.push({ path: relative(root, full), mode: st.mode & 0o777, dir: st.isDirectory() })
      if (st.isDirectory()) visit(full)
    }
  }
  visit(root)
  return out
}

async function run(t: Test) {
  await ensureBusyboxImage(docker)
  const up = await startHubProcess({ command: 'up', args: ['--node-name', 'perm-e2e'] })
  const clusterId = readFileSync(join(up.dataDir, 'cluster-id'), 'utf8').trim()
  t.teardown(async () => {
    await up.stop()
    closeApiAgents()
    await removeClusterContainers(docker, clusterId)
    await up.cleanup()
  })
  const manifest = join(up.dataDir, 'perm-pod.yaml')
  writeFileSync(manifest, POD)
  const applied = await runCli(['apply', '-f', manifest], { kubeconfig: up.kubeconfig })
  t.equal(applied.code, 0, `apply: ${applied.stderr}`)
  await until('the pod runs', async () => {
    const r = await runCli(['get', 'pod', 'perm-pod', '-o', 'json'], { kubeconfig: up.kubeconfig })
    return r.code === 0 && JSON.parse(r.stdout).status?.phase === 'Running'
  })
  await up.stop()

  const entries = walk(up.dataDir).filter((e) => e.path !== 'perm-pod.yaml') // the test's own manifest
  t.equal(statSync(up.dataDir).mode & 0o777, 0o700, 'the data dir itself is owner-only')
  for (const part of ['store', 'mqtt', 'agent', join('agent', 'replica'), PODS_DIR]) {
    t.ok(entries.some((e) => e.path === part && e.dir), `${part} exists after the run`)
  }
  t.ok(entries.some((e) => e.path.startsWith(PODS_DIR + '/') && !e.dir), 'the pod wrote its ConfigMap volume files under the pods directory')
  const checked = entries.filter((e) => !e.path.startsWith(PODS_DIR + '/'))
  const open = checked.filter((e) => (e.mode & 0o077) !== 0).map((e) => `${e.path} ${e.mode.toString(8)}`)
  t.same(open, [], `no file or directory outside the pods directory is group- or other-accessible (${checked.length} checked)`)
}

t.test('every file in the hub and agent data dirs is owner-only after a run', async (t) => {
  const why = await dockerUnavailable(docker)
  if (why) return t.plan(0, why)
  await run(t)
})
