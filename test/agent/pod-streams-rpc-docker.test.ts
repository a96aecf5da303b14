// The node's side of exec sessions on the shared dockerd, the hub played by the test through the
// session's messages: output in sequence with an opened message first and the exit code last,
// output stops being read once a window is unacknowledged and goes on after the acknowledgement,
// a session the hub stops speaking to ends, and a container that is not there is named.

import t from 'tap'
import { randomUUID } from 'node:crypto'
import { LABELS } from '../../src/agent/container-runtime.js'
import { DockerRuntime } from '../../src/agent/docker-runtime.js'
import { PodStreamsRpc } from '../../src/agent/pod-streams-rpc.js'
import type { RpcReply, RpcRequest } from '../../src/api/protocol.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'
import { WINDOW_BYTES } from '../../src/lib/stream-window.js'
import { ensureBusyboxImage } from '../helpers/busybox-image.js'
import { dockerClient, dockerUnavailable, removeClusterContainers, testClusterId } from '../helpers/docker.js'

const docker = dockerClient()
const unavailable = await dockerUnavailable(docker)
if (unavailable) t.plan(0, unavailable)
else await run()

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

async function run() {
  const image = await ensureBusyboxImage(docker)
  const runtime = new DockerRuntime(docker)
  const clusterId = testClusterId()
  t.teardown(() => removeClusterContainers(docker, clusterId))
  const id = await runtime.create({
    name: `ex-streams-${clusterId}`,
    image,
    cmd: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'],
    labels: { [LABELS.cluster]: clusterId, [LABELS.podNamespace]: 'default', [LABELS.podName]: 'ex-pod', [LABELS.containerName]: 'app', [LABELS.role]: 'app', [LABELS.attempt]: '0' },
  })
  await runtime.start(id)

  const replies: RpcReply[] = []
  const rpc = new PodStreamsRpc({ runtime, docker, clusterId, clock: systemClock, logger: silentLogger(), silenceLimitMs: 1_500, reply: async (_topic, r) => void replies.push(r) })
  t.teardown(() => rpc.closeAll())
  const replyTopic = 'bramble/v1/nodes/ex-node/up/rpc-reply'
  const exec = (command: string[], extra: Record<string, unknown> = {}): string => {
    const session = randomUUID()
    void rpc.handle({ id: session, replyTopic, method: 'exec', params: { namespace: 'default', name: 'ex-pod', command, ...extra } } as RpcRequest)
    return session
  }
  const of = (session: string) => replies.filter((r) => r.id === session)
  const input = (session: string, params: Record<string, unknown>) => rpc.handle({ id: randomUUID(), replyTopic, method: 'stream', params: { session, ...params } } as RpcRequest)
  const outputOf = (session: string) => Buffer.concat(of(session).filter((r) => r.chunk).map((r) => Buffer.from(r.chunk!, 'base64')))

  await t.test('output comes in sequence: opened, the chunks, then the exit code', async (t) => {
    const session = exec(['sh', '-c', 'echo one; echo two >&2; exit 3'])
    const end = await until('the end', () => of(session).find((r) => r.done === true))
    t.same(end.result, { exitCode: 3 })
    const sequenced = of(session).filter((r) => typeof r.seq === 'number')
    t.same(sequenced.map((r) => r.seq), sequenced.map((_, i) => i), 'consecutive sequence numbers')
    t.same(sequenced[0].result, { opened: true })
    t.equal(Buffer.concat(sequenced.filter((r) => r.channel === 1 && r.chunk).map((r) => Buffer.from(r.chunk!, 'base64'))).toString(), 'one\n')
    t.equal(Buffer.concat(sequenced.filter((r) => r.channel === 2 && r.chunk).map((r) => Buffer.from(r.chunk!, 'base64'))).toString(), 'two\n')
  })

  await t.test('input in sequence reaches stdin; its acknowledgement follows; eof ends it', async (t) => {
    const session = exec(['cat'], { stdin: true })
    await input(session, { seq: 1, data: Buffer.from('second\n').toString('base64') })
    await input(session, { seq: 0, data: Buffer.from('first\n').toString('base64') })
    await until('the bytes written to stdin acknowledged', () => of(session).some((r) => r.ack === 13))
    await input(session, { seq: 2, eof: true })
    await until('the end', () => of(session).find((r) => r.done === true))
    t.equal(outputOf(session).toString(), 'first\nsecond\n', 'put back in order')
  })

  await t.test('output waits for acknowledgements beyond a window', async (t) => {
    const total = 4 * WINDOW_BYTES
    const session = exec(['head', '-c', String(total), '/dev/zero'])
    await until('a window of output', () => outputOf(session).length >= WINDOW_BYTES)
    await new Promise((r) => setTimeout(r, 700))
    const held = outputOf(session).length
    t.ok(held < total, `output held at ${held} bytes of ${total} while unacknowledged`)
    t.notOk(of(session).some((r) => r.done), 'not finished while held')
    for (let acked = 0; !of(session).some((r) => r.done); ) {
      const got = outputOf(session).length
      if (got > acked) await input(session, { ack: (acked = got) })
      await new Promise((r) => setTimeout(r, 20))
    }
    t.equal(outputOf(session).length, total, 'all of it once acknowledged')
  })

  await t.test('a session the hub stops speaking to ends', async (t) => {
    const session = exec(['sleep', '30'])
    await until('opened', () => of(session).length > 0)
    const end = await until('the session ended', () => of(session).find((r) => r.ok === false), 10_000)
    t.match(end.error, /the hub has not spoken to this session/)
  })

  await t.test('pings keep a quiet session and are answered', async (t) => {
    const session = exec(['sleep', '3'])
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 700))
      await input(session, { ping: true })
    }
    const end = await until('the end', () => of(session).find((r) => r.done === true || r.ok === false), 10_000)
    t.same(end.result, { exitCode: 0 }, 'the command ran to its end')
    t.ok(of(session).filter((r) => r.ack !== undefined).length >= 4, 'each ping answered')
  })

  await t.test('a missing pod or container is named', async (t) => {
    const missing = randomUUID()
    await rpc.handle({ id: missing, replyTopic, method: 'exec', params: { namespace: 'default', name: 'ex-none', command: ['true'] } } as RpcRequest)
    t.match(of(missing)[0].error, /pod "ex-none" in namespace "default" has no containers on this node/)
    const wrong = randomUUID()
    await rpc.handle({ id: wrong, replyTopic, method: 'exec', params: { namespace: 'default', name: 'ex-pod', container: 'nope', command: ['true'] } } as RpcRequest)
    t.match(of(wrong)[0].error, /container nope is not valid for pod ex-pod/)
    const closed = randomUUID()
    await rpc.handle({ id: closed, replyTopic, method: 'port-forward', params: { namespace: 'default', name: 'ex-pod', port: 9 } } as RpcRequest)
    t.match(of(closed)[0].error, /could not reach port 9 of the pod/)
  })
}
