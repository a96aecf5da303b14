// Heartbeats carry the running pods' usage: the decoder takes well-formed reports (and none, from
// older agents) and refuses malformed ones, naming the field.

import t from 'tap'
import { decodeUp } from '../../src/api/protocol-decode.js'

const beat = (pods?: unknown) => Buffer.from(JSON.stringify({ seq: 1, uptimeMs: 1000, cpu: 0.25, memory: 123456, ...(pods === undefined ? {} : { pods }) }))

t.test('a heartbeat with pod usage, or without (older agents), decodes', async (t) => {
  const pods = [{ namespace: 'default', name: 'web', containers: [{ name: 'app', cpuCores: 0.012, memoryBytes: 10485760 }] }]
  t.same(decodeUp('heartbeat', beat(pods)), { ok: true, message: { seq: 1, uptimeMs: 1000, cpu: 0.25, memory: 123456, pods } })
  t.equal(decodeUp('heartbeat', beat()).ok, true)
})

t.test('malformed pod usage is refused with the path of the bad field', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{}, /^up\/heartbeat: pods: expected an array/],
    [[{ name: 'web', containers: [] }], /^up\/heartbeat: pods\[0\]\.namespace: required field is missing/],
    [[{ namespace: 'default', name: 'web', containers: [{ name: 'app', cpuCores: -1, memoryBytes: 0 }] }], /^up\/heartbeat: pods\[0\]\.containers\[0\]\.cpuCores: must not be negative/],
    [[{ namespace: 'default', name: 'web', containers: [{ name: 'app', cpuCores: 0, memoryBytes: 'lots' }] }], /^up\/heartbeat: pods\[0\]\.containers\[0\]\.memoryBytes: expected a finite number/],
  ]
  for (const [pods, reason] of cases) {
    const r = decodeUp('heartbeat', beat(pods))
    t.equal(r.ok, false)
    t.match(!r.ok && r.reason, reason)
  }
})
