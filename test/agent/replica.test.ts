// The agent's LMDB replica: the Replica contract, and durability — a desired state applied (so
// acknowledged to the hub) is still there after the process is SIGKILLed.

import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { openReplica } from '../../src/agent/replica.js'
import { replicaContract } from '../contract/replica.js'

// Child mode: apply desired messages one after another, printing each revision once applied.
if (process.env.BRAMBLE_REPLICA_WRITER) {
  const replica = await openReplica(process.env.BRAMBLE_REPLICA_WRITER)
  for (let revision = 1; ; revision++) {
    const pod = { apiVersion: 'v1', kind: 'Pod' as const, metadata: { name: `p${revision}`, namespace: 'default', uid: `u${revision}` }, spec: {} }
    await replica.applyDesired({ revision, since: revision - 1, full: false, upserts: [pod], deletes: [] })
    process.stdout.write(`applied ${revision}\n`)
  }
} else {
  const dirs: string[] = []
  t.teardown(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))))

  t.test('the LMDB replica meets the Replica contract', async (t) => {
    replicaContract(t, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'bramble-replica-'))
      dirs.push(dir)
      return () => openReplica(join(dir, 'replica'))
    })
  })

  t.test('a desired state reported applied survives a SIGKILL of the agent process', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'bramble-replica-kill-'))
    dirs.push(dir)
    const path = join(dir, 'replica')
    const self = fileURLToPath(import.meta.url)
    const loader = process.execArgv.filter((a) => a.includes('@tapjs/') || a.startsWith('--import') || a.startsWith('--loader') || a === '--enable-source-maps')
    const child = spawn(process.execPath, [...loader, self], { env: { ...process.env, BRAMBLE_REPLICA_WRITER: path }, stdio: ['ignore', 'pipe', 'inherit'] })
    let applied = 0
    for await (const line of createInterface({ input: child.stdout! })) {
      const m = /^applied (\d+)$/.exec(line)
      if (m) applied = Number(m[1])
      if (applied >= 20) {
        child.kill('SIGKILL')
        break
      }
    }
    await new Promise((r) => child.once('exit', r))
    const replica = await openReplica(path)
    t.teardown(() => replica.close())
    t.ok(replica.revision() >= applied, `revision ${replica.revision()} is at least the last one reported applied (${applied})`)
    const names = new Set(replica.pods().map((p) => p.metadata.name))
    for (let r = 1; r <= applied; r++) if (!names.has(`p${r}`)) t.fail(`pod p${r}, applied before the kill, is missing`)
  })
}
