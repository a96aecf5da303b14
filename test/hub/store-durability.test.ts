// An acknowledged write survives the hub's death. SIGKILL proves the process side; the strace
// test proves the power-cut side: between the write of each object to the LMDB data file and its
// acknowledgment, the file is fdatasync'ed and the meta page (the commit point) is written
// through an O_DSYNC descriptor, so nothing acknowledged waits in the page cache.

import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'

const projectRoot = fileURLToPath(new URL('../..', import.meta.url))
const compiled = import.meta.url.endsWith('.js')
const writerScript = fileURLToPath(new URL(`../fixtures/store-writer.${compiled ? 'js' : 'ts'}`, import.meta.url))
/** Under tap the TypeScript loader is in our execArgv; the child needs it to run the fixture. */
const loaderArgs = compiled ? [] : process.execArgv.filter((arg) => arg.includes('@tapjs/typescript') || arg === '--enable-source-maps')

function writerCommand(dir: string, count: number, concurrency: number): string[] {
  return [process.execPath, ...loaderArgs, writerScript, dir, String(count), String(concurrency)]
}

interface Ack {
  name: string
  revision: number
}

function parseAck(line: string): Ack | undefined {
  const m = /^ack (\S+) (\d+)$/.exec(line)
  return m ? { name: m[1]!, revision: Number(m[2]) } : undefined
}

t.test('writes acknowledged before a SIGKILL are all there after reopening', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'bramble-durable-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'store')
  const [command, ...args] = writerCommand(path, 1_000_000, 16)
  const child = spawn(command!, args, { cwd: projectRoot, stdio: ['ignore', 'pipe', 'inherit'] })
  const acks: Ack[] = []
  let finished = false
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, signal) => resolve(signal)))
  for await (const line of createInterface({ input: child.stdout! })) {
    const ack = parseAck(line)
    if (ack) acks.push(ack)
    if (line === 'done') finished = true
    // Kill it mid-stream, with writes in flight.
    if (acks.length === 500) child.kill('SIGKILL')
  }
  t.equal(await exited, 'SIGKILL', 'the writer died by SIGKILL')
  t.notOk(finished, 'it was killed mid-stream')
  t.ok(acks.length >= 500, `${acks.length} writes were acknowledged before it died`)

  const store = await openLmdbStore({ path })
  t.teardown(() => store.close())
  const stored = new Set((await store.list({ resource: 'pods', namespace: 'default' })).items.map((o) => o.metadata.name))
  const lost = acks.filter((ack) => !stored.has(ack.name))
  t.same(lost, [], 'no acknowledged write was lost')
  const newest = Math.max(...acks.map((a) => a.revision))
  t.ok((await store.revision()) >= newest, 'the revision is at least the newest acknowledged one')
  const after = await store.create({ resource: 'pods', namespace: 'default', name: 'after-crash' }, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'after-crash' } })
  t.ok(Number(after.metadata.resourceVersion) > newest, 'the reopened store writes on, no repair needed')
})

/** One system call from `strace -f -o`: `PID name(args) = ret`, possibly split into unfinished/resumed lines. */
interface Call {
  pid: string
  name: string
  args: string
  /** Line index where the call started and where it returned. */
  start: number
  end: number
  result: string
}

function parseTrace(text: string): Call[] {
  const calls: Call[] = []
  const open = new Map<string, Call>()
  text.split('\n').forEach((line, index) => {
    const resumed = /^(\d+) +<\.\.\. (\w+) resumed>(.*)\) += (.*)$/.exec(line)
    if (resumed) {
      const call = open.get(`${resumed[1]} ${resumed[2]}`)
      if (call) {
        call.args += resumed[3]
        call.end = index
        call.result = resumed[4]!
        open.delete(`${resumed[1]} ${resumed[2]}`)
      }
      return
    }
    const m = /^(\d+) +(\w+)\((.*)$/.exec(line)
    if (!m) return
    const [, pid, name, rest] = m as unknown as [string, string, string, string]
    const unfinished = rest.endsWith('<unfinished ...>')
    const done = /^(.*)\) += (.*)$/.exec(rest)
    const call: Call = { pid, name, args: unfinished ? rest : (done?.[1] ?? rest), start: index, end: index, result: unfinished ? '' : (done?.[2] ?? '') }
    calls.push(call)
    if (unfinished) open.set(`${pid} ${name}`, call)
  })
  return calls
}

const strace = spawnSync('strace', ['-V'], { encoding: 'utf8' })
const straceMissing = strace.error !== undefined || strace.status !== 0

t.test(
  'under strace, each acknowledged write is fdatasync-ed and committed to the data file before its ack',
  { skip: straceMissing ? 'strace is not installed (apt-get install strace)' : false },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'bramble-strace-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const path = join(dir, 'store')
    const tracePath = join(dir, 'trace.txt')
    const traced = ['-f', '-s', '1000000', '-o', tracePath, '-e', 'trace=openat,close,fsync,fdatasync,msync,write,pwrite64,writev,pwritev,pwritev2']
    const result = spawnSync('strace', [...traced, ...writerCommand(path, 200, 8)], { cwd: projectRoot, encoding: 'utf8', maxBuffer: 64 << 20 })
    t.equal(result.status, 0, `the traced writer ran to the end ${result.stderr ?? ''}`)
    const calls = parseTrace(await readFile(tracePath, 'utf8'))

    // Which descriptors point at the data file at each moment (fd numbers are reused).
    const dataFile = join(path, 'data.mdb')
    const fds = new Map<string, { dsync: boolean }>()
    const dataWrites: Call[] = [] // pages
    const metaWrites: Call[] = [] // through the O_DSYNC descriptor: the commit point
    const syncs: Call[] = []
    const acks = new Map<string, Call>()
    for (const call of calls) {
      const fd = /^(\d+)/.exec(call.args)?.[1]
      if (call.name === 'openat') {
        const opened = call.result.trim()
        if (call.args.includes(`"${dataFile}"`)) fds.set(opened, { dsync: call.args.includes('O_DSYNC') })
        else fds.delete(opened)
      } else if (call.name === 'close' && fd) {
        fds.delete(fd)
      } else if (call.name === 'write' && fd === '1') {
        const ack = /"ack (\S+) \d+\\n"/.exec(call.args)
        if (ack) acks.set(ack[1]!, call)
      } else if (fd && fds.has(fd)) {
        if (call.name === 'fsync' || call.name === 'fdatasync') syncs.push(call)
        else if (/write/.test(call.name)) (fds.get(fd)!.dsync ? metaWrites : dataWrites).push(call)
      } else if (call.name === 'msync' && /MS_SYNC/.test(call.args)) {
        syncs.push(call)
      }
    }
    t.equal(acks.size, 200, 'every write was acknowledged')
    t.ok(metaWrites.length > 0, 'LMDB writes its meta page through an O_DSYNC descriptor')

    const unproven: string[] = []
    for (const [name, ack] of acks) {
      const written = dataWrites.find((w) => w.args.includes(name))
      if (!written) {
        unproven.push(`${name}: never written to the data file before its ack`)
        continue
      }
      const synced = syncs.find((s) => s.end > written.end && s.end < ack.start)
      const committed = synced && metaWrites.find((m) => m.start > synced.end && m.end < ack.start)
      if (!synced) unproven.push(`${name}: no fsync/fdatasync of the data file between its write and its ack`)
      else if (!committed) unproven.push(`${name}: no synchronous meta-page commit between the fsync and the ack`)
    }
    t.same(unproven, [], 'for every ack: data-file write, then fdatasync, then O_DSYNC commit, then the ack')
    t.ok(syncs.length < acks.size, `concurrent writes share commits (${syncs.length} syncs for ${acks.size} creates)`)
  },
)
