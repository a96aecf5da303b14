// The check the agent runs at start on its secret volumes' directory.

import t from 'tap'
import { isMemoryBacked } from '../../src/agent/memory-backed-dir.js'

t.test('/dev/shm is tmpfs: memory-backed', async (t) => {
  t.equal(await isMemoryBacked('/dev/shm'), true)
})

t.test('a directory on another file system (procfs) is not', async (t) => {
  t.equal(await isMemoryBacked('/proc'), false)
})

t.test('a missing directory is an error naming it, not a guess', async (t) => {
  await t.rejects(isMemoryBacked('/nonexistent-bramble-dir'), { code: 'ENOENT', message: /nonexistent-bramble-dir/ })
})
