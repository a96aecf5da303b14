// The real kubectl's `delete --cascade=orphan|foreground|background` against a real hub process:
// the DeleteOptions body it sends, the 202 of a deletion the garbage collector finishes, and its
// wait until the object is gone. No agent: pods stay Pending, which is all ownership needs.

import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import t from 'tap'
import { startHubProcess, type HubProcess } from '../helpers/hub-process.js'

const SEARCH = [...(process.env.PATH ?? '').split(delimiter), '/usr/lib/google-cloud-sdk/bin']
const kubectlBin = ['1.33', '1.32', '1.31', '1.30', '1.29'].flatMap((v) => SEARCH.filter(Boolean).map((dir) => join(dir, `kubectl.${v}`))).find((bin) => existsSync(bin))

interface Run {
  code: number
  stdout: string
  stderr: string
}

if (!kubectlBin) {
  t.comment('no pinned kubectl (kubectl.1.29 ... kubectl.1.33) on PATH or in /usr/lib/google-cloud-sdk/bin: skipping')
  t.pass('skipped: no kubectl found')
} else {
  let hub: HubProcess
  const home = mkdtempSync(join(tmpdir(), 'bramble-kubectl-cascade-'))
  const kubectl = (...args: string[]) =>
    new Promise<Run>((resolve) => {
      execFile(kubectlBin, ['--kubeconfig', hub.kubeconfig, '--cache-dir', join(home, 'cache'), ...args], { env: { PATH: process.env.PATH, HOME: home }, timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as any).code ?? 1) : 0, stdout, stderr }),
      )
    })
  const json = async (...args: string[]) => JSON.parse((await kubectl(...args, '-o', 'json')).stdout)
  const until = async (what: string, check: () => Promise<boolean>) => {
    const deadline = Date.now() + 20_000
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
      await new Promise((r) => setTimeout(r, 200))
    }
  }
  const podsOf = async (app: string) => (await json('get', 'pods', '-l', `app=${app}`)).items.length

  t.before(async () => {
    hub = await startHubProcess()
  })
  t.teardown(async () => {
    await hub?.cleanup()
    rmSync(home, { recursive: true, force: true })
  })

  t.test(`${kubectlBin.split('/').pop()} delete --cascade=orphan keeps the ReplicaSet and pods, unowned`, async (t) => {
    t.equal((await kubectl('create', 'deployment', 'keep', '--image=busybox:1', '--replicas=2')).code, 0)
    await until('2 pods exist', async () => (await podsOf('keep')) === 2)
    const run = await kubectl('delete', 'deployment', 'keep', '--cascade=orphan')
    t.equal(run.code, 0, run.stderr)
    t.match(run.stdout, 'deployment.apps "keep" deleted')
    const rs = (await json('get', 'rs', '-l', 'app=keep')).items
    t.equal(rs.length, 1, 'the ReplicaSet stays')
    t.notOk(rs[0].metadata.ownerReferences, 'no longer owned')
    t.equal(await podsOf('keep'), 2, 'its pods stay')

    const fg = await kubectl('delete', 'rs', rs[0].metadata.name, '--cascade=foreground')
    t.equal(fg.code, 0, fg.stderr)
    t.equal(await podsOf('keep'), 0, 'foreground: the pods are gone by the time kubectl returns')
  })

  t.test('kubectl delete (background, its default) takes the ReplicaSets and pods after the Deployment', async (t) => {
    t.equal((await kubectl('create', 'deployment', 'bg', '--image=busybox:1', '--replicas=1')).code, 0)
    await until('its pod exists', async () => (await podsOf('bg')) === 1)
    t.equal((await kubectl('delete', 'deployment', 'bg')).code, 0)
    await until('its ReplicaSet and pod are collected', async () => (await podsOf('bg')) === 0 && (await json('get', 'rs', '-l', 'app=bg')).items.length === 0)
    t.pass()
  })
}
