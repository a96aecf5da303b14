// MosquittoReloader: a SIGHUP per reload, and one more once reloads pause (Mosquitto loses a SIGHUP
// that comes while it still reloads). A real process counts the signals it gets.

import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'
import { MosquittoReloader } from '../../src/hub/mosquitto-config.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A process that prints a line for each SIGHUP it gets; resolves once it listens for them. */
async function hangupCounter(t: Test): Promise<{ child: ChildProcess; count: () => number }> {
  const child = spawn(process.execPath, ['-e', "process.on('SIGHUP', () => console.log('hup')); console.log('ready'); setInterval(() => {}, 1000)"], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => void child.kill('SIGKILL'))
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  while (!out.includes('ready')) await sleep(10)
  return { child, count: () => out.split('\n').filter((l) => l === 'hup').length }
}

t.test('each reload signals at once, and a burst of them is followed by one more once they pause', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-reloader-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const { child, count } = await hangupCounter(t)
  const pidFile = join(dir, 'mosquitto.pid')
  writeFileSync(pidFile, `${child.pid}\n`)
  const reloader = new MosquittoReloader(pidFile, systemClock, silentLogger(), 300)
  t.teardown(() => reloader.close())

  reloader.reload()
  await sleep(100)
  reloader.reload()
  await sleep(100)
  reloader.reload()
  await sleep(100)
  t.equal(count(), 3, 'three reloads, three signals at once')
  await sleep(500)
  t.equal(count(), 4, 'one more once the reloads paused')
  await sleep(500)
  t.equal(count(), 4, 'and no more after it')

  reloader.reload()
  reloader.close()
  await sleep(500)
  t.equal(count(), 5, 'closed: the pending one is not sent')
})

t.test('a pid file that names no process is logged, never thrown', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-reloader-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const errors: string[] = []
  const log = { ...silentLogger(), error: (_o: unknown, msg: string) => void errors.push(msg) } as unknown as ReturnType<typeof silentLogger>
  writeFileSync(join(dir, 'empty.pid'), '\n')
  const reloader = new MosquittoReloader(join(dir, 'empty.pid'), systemClock, log, 50)
  t.doesNotThrow(() => reloader.reload())
  const missing = new MosquittoReloader(join(dir, 'missing.pid'), systemClock, log, 50)
  t.doesNotThrow(() => missing.reload())
  await sleep(150)
  t.equal(errors.length, 4, 'each signal that could not be sent is logged (two at once, two once settled)')
  t.match(errors[0], /reload it by hand/)
})
