// HTTP edge cases (issue 7, bad input): oversized bodies refused while they stream with the hub's
// memory bounded, slow clients timed out while others are served, malformed JSON and YAML, unknown
// kinds and versions, wrong content types and bad query parameters, each a clean Kubernetes Status.
// A real `bramble hub` process for most; an in-process API server with short timeouts for the slow
// clients (the hub's own timeouts are tens of seconds; one idle connection checks they apply).

import { mkdtempSync, readFileSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import { connect as netConnect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import fc from 'fast-check'
import t from 'tap'
import { JOIN_PATH, JOIN_TOKENS_PATH } from '../../src/api/join.js'
import { apiRequest, closeApiAgents, type ApiTarget } from '../helpers/api-client.js'
import { startApiServerFixture } from '../helpers/api-server-fixture.js'
import { startHubProcess, type HubProcess } from '../helpers/hub-process.js'

const MB = 1024 * 1024
const CONFIGMAPS = '/api/v1/namespaces/default/configmaps'

let hub: HubProcess
let admin: ApiTarget

t.before(async () => {
  hub = await startHubProcess({ dataDir: mkdtempSync(join(tmpdir(), 'bi-hub-')) })
  admin = { server: hub.server, ca: hub.ca, token: hub.token }
})

t.teardown(async () => {
  closeApiAgents()
  await hub?.cleanup()
})

/** Resident and peak resident memory of a process, in bytes (Linux /proc). */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
  return { rss: kb('VmRSS'), peak: kb('VmHWM') }
}

interface StreamResult {
  status?: number
  json?: any
  /** Bytes of body the client had written when the answer came (or the connection ended). */
  sentBytes: number
  error?: string
}

/** POSTs up to `totalBytes` of body in 64 KiB chunks, stopping as soon as an answer or an error comes. */
function streamBody(target: ApiTarget, path: string, totalBytes: number, declareLength: boolean): Promise<StreamResult> {
  const url = new URL(path, target.server)
  const head = Buffer.from('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"huge"},"data":{"a":"')
  const chunk = Buffer.alloc(64 * 1024, 'a')
  return new Promise((resolve) => {
    let sentBytes = 0
    let finished = false
    const result: StreamResult = { sentBytes: 0 }
    const finish = (extra: Partial<StreamResult>) => {
      if (finished) return
      finished = true
      Object.assign(result, extra, { sentBytes })
      resolve(result)
    }
    const req = httpsRequest(url, {
      method: 'POST',
      agent: false,
      ca: target.ca,
      headers: { Authorization: `Bearer ${target.token}`, 'Content-Type': 'application/json', ...(declareLength ? { 'Content-Length': String(totalBytes) } : {}) },
    })
    req.on('response', (res) => {
      const parts: Buffer[] = []
      res.on('data', (d) => parts.push(d))
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8')
        let json: unknown
        try {
          json = JSON.parse(text)
        } catch {
          json = undefined
        }
        finish({ status: res.statusCode, json })
        req.destroy()
      })
    })
    req.on('error', (err) => setTimeout(() => finish({ error: err.message }), 2_000))
    const pump = () => {
      while (!finished && sentBytes < totalBytes) {
        const piece = sentBytes === 0 ? head : chunk.subarray(0, Math.min(chunk.length, totalBytes - sentBytes))
        sentBytes += piece.length
        if (!req.write(piece)) return void req.once('drain', pump)
      }
      if (!finished) req.end()
    }
    pump()
  })
}

t.test('a 200 MB body is refused with 413 while it streams; the hub reads no more of it and its memory stays bounded', async (t) => {
  const pid = hub.child.pid!
  const before = memoryOf(pid)
  let highest = before.rss
  const sampler = setInterval(() => (highest = Math.max(highest, memoryOf(pid).rss)), 50)
  t.teardown(() => clearInterval(sampler))

  const chunked = await streamBody(admin, CONFIGMAPS, 200 * MB, false)
  t.equal(chunked.status, 413, `chunked: answered 413 (${chunked.error ?? ''})`)
  t.match(chunked.json, { kind: 'Status', reason: 'RequestEntityTooLarge', code: 413, message: /larger than 3145728 bytes/ })
  t.ok(chunked.sentBytes < 100 * MB, `the answer came while the client was still sending (after ${(chunked.sentBytes / MB).toFixed(1)} MB of 200)`)

  const declared = await streamBody(admin, CONFIGMAPS, 200 * MB, true)
  t.equal(declared.status, 413, `Content-Length 200 MB: answered 413 (${declared.error ?? ''})`)
  t.ok(declared.sentBytes < 100 * MB, `before the body was sent (after ${(declared.sentBytes / MB).toFixed(1)} MB)`)

  clearInterval(sampler)
  const after = memoryOf(pid)
  highest = Math.max(highest, after.rss)
  t.comment(`hub RSS before ${(before.rss / MB).toFixed(0)} MB, highest while streaming ${(highest / MB).toFixed(0)} MB, after ${(after.rss / MB).toFixed(0)} MB`)
  t.ok(highest - before.rss < 64 * MB, 'the hub grew by far less than the body (3 MB limit, no buffering of the rest)')
  t.equal((await apiRequest(admin, 'GET', CONFIGMAPS)).status, 200, 'the hub serves the next request')
  t.equal((await apiRequest(admin, 'GET', `${CONFIGMAPS}/huge`)).status, 404, 'nothing was stored')
})

t.test('malformed JSON and YAML: 400 with the parser\'s message and the line and column', async (t) => {
  const json = await apiRequest(admin, 'POST', CONFIGMAPS, '{\n  "apiVersion": "v1",\n  "kind": "ConfigMap",\n  "metadata": {"name": "x",}\n}')
  t.equal(json.status, 400)
  t.match(json.json, { kind: 'Status', reason: 'BadRequest', code: 400, message: /^the request body is not valid JSON: .*line 4, column \d+/ })

  const truncated = await apiRequest(admin, 'POST', CONFIGMAPS, '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"')
  t.equal(truncated.status, 400)
  t.match(truncated.json.message, /not valid JSON: .*line 1, column \d+/)

  const yaml = await apiRequest(admin, 'POST', CONFIGMAPS, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\ndata: {}\n', { 'Content-Type': 'application/yaml' })
  t.equal(yaml.status, 400)
  t.match(yaml.json, { kind: 'Status', reason: 'BadRequest', message: /^the request body is not valid YAML: .*at line \d+, column \d+/ })

  const deep = await apiRequest(admin, 'POST', CONFIGMAPS, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"d"},"data":${'['.repeat(100_000)}${']'.repeat(100_000)}}`)
  t.equal(deep.status, 400, 'a body nested 100000 deep is refused, not a stack overflow')
  t.match(deep.json.message, /nested more than 100 levels deep/)

  const patch = await apiRequest(admin, 'PATCH', '/api/v1/namespaces/default', '{"metadata": {"labels": }}', { 'Content-Type': 'application/merge-patch+json' })
  t.equal(patch.status, 400)
  t.match(patch.json.message, /not valid JSON: .*line 1, column \d+/)

  const notObject = await apiRequest(admin, 'POST', CONFIGMAPS, '- a\n- b\n', { 'Content-Type': 'application/yaml' })
  t.equal(notObject.status, 400)
  t.equal(notObject.json.kind, 'Status')

  const yamlCases: Array<[string, string, RegExp]> = [
    ['an alias bomb', Array.from({ length: 7 }, (_, i) => `${'abcdefg'[i]}: &${'abcdefg'[i]} [${i === 0 ? '"x","x","x","x","x","x","x","x","x"' : Array(9).fill(`*${'abcdefg'[i - 1]}`).join(',')}]`).join('\n'), /resource exhaustion/],
    ['a duplicate key', 'apiVersion: v1\nkind: ConfigMap\nkind: Secret\nmetadata: {name: dup}\n', /Map keys must be unique at line 3, column 1/],
    ['two documents', 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: two}\n---\napiVersion: v1\n', /multiple documents/],
  ]
  for (const [what, text, message] of yamlCases) {
    const res = await apiRequest(admin, 'POST', CONFIGMAPS, text, { 'Content-Type': 'application/yaml' })
    t.equal(res.status, 400, what)
    t.match(res.json, { kind: 'Status', reason: 'BadRequest', message }, what)
  }
})

t.test('protobuf bodies that are garbage, with or without the k8s magic, are a 400 Status', async (t) => {
  const seen: Record<number, number> = {}
  const samples = fc.sample(fc.tuple(fc.boolean(), fc.uint8Array({ maxLength: 300 })), { numRuns: 300, seed: 3 })
  for (const [magic, bytes] of samples) {
    const body = Buffer.concat([magic ? Buffer.from('k8s\0') : Buffer.alloc(0), Buffer.from(bytes)])
    const res = await apiRequest(admin, 'POST', CONFIGMAPS, body, { 'Content-Type': 'application/vnd.kubernetes.protobuf' })
    seen[res.status] = (seen[res.status] ?? 0) + 1
    if (res.status !== 400 || res.json?.kind !== 'Status') t.fail(`a ${res.status} for ${body.toString('hex').slice(0, 80)}: ${res.text.slice(0, 200)}`)
  }
  t.same(seen, { 400: samples.length }, 'every one a 400')
})

t.test('the public join endpoint and the token endpoint answer garbage with a 4xx Status, never a 5xx', async (t) => {
  const valid = { token: 'K10abc::bramble.xyz', nodeName: 'pi-1', arch: 'arm64', os: 'linux' }
  const bodies = fc.sample(
    fc.oneof(
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
      fc.string({ maxLength: 80 }),
      fc.record({ key: fc.constantFrom('token', 'nodeName', 'arch', 'os', 'secretsPublicKey', 'version', '__proto__'), value: fc.jsonValue({ maxDepth: 2 }) }).map(({ key, value }) => JSON.stringify({ ...valid, [key]: value })),
    ),
    { numRuns: 300, seed: 11 },
  )
  const seen: Record<number, number> = {}
  for (const body of bodies) {
    for (const [path, target] of [[JOIN_PATH, { server: admin.server, ca: admin.ca }], [JOIN_TOKENS_PATH, admin]] as const) {
      const res = await apiRequest(target, 'POST', path, body)
      seen[res.status] = (seen[res.status] ?? 0) + 1
      if (res.status >= 500 || res.status < 400 ? !(path === JOIN_TOKENS_PATH && res.status < 300) : res.json?.kind !== 'Status') t.fail(`${path}: ${res.status} for ${body.slice(0, 120)}: ${res.text.slice(0, 200)}`)
    }
  }
  t.comment(`answers by status: ${JSON.stringify(seen)}`)
  t.ok(Object.keys(seen).every((s) => Number(s) < 500), 'no 5xx')
  t.equal(hub.child.exitCode, null, 'the hub is running')
})

t.test('request headers beyond the limit: 431 Status, and the connection is closed', async (t) => {
  const socket = await tlsSocket(admin)
  const closed = untilClosed(socket)
  socket.write(`GET /api/v1/namespaces HTTP/1.1\r\nHost: bramble\r\nX-Big: ${'x'.repeat(40_000)}\r\n\r\n`)
  const text = await closed
  t.match(text, /^HTTP\/1\.1 431 /)
  t.match(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)), { kind: 'Status', reason: 'RequestHeaderFieldsTooLarge', code: 431 })
})

t.test('unknown kinds, groups and versions: 404 Status as Kubernetes answers; a body of another kind: 400 naming it', async (t) => {
  for (const path of ['/api/v1/namespaces/default/widgets', '/apis/apps/v2/deployments', '/apis/apps/v2', '/apis/widgets.example.com/v1/widgets', '/api/v2/pods']) {
    const res = await apiRequest(admin, 'GET', path)
    t.equal(res.status, 404, path)
    t.match(res.json, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404, message: /the server could not find the requested resource/ }, path)
  }
  const post = await apiRequest(admin, 'POST', '/apis/apps/v2/namespaces/default/deployments', { apiVersion: 'apps/v2', kind: 'Deployment', metadata: { name: 'x' } })
  t.equal(post.status, 404, 'a POST to an unknown version')
  const otherKind = await apiRequest(admin, 'POST', CONFIGMAPS, { apiVersion: 'v1', kind: 'Widget', metadata: { name: 'x' } })
  t.equal(otherKind.status, 400)
  t.match(otherKind.json.message, /v1 Widget/)
})

t.test('wrong Content-Type: 415 naming the accepted types', async (t) => {
  const cm = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'ct' } })
  for (const type of ['text/plain', 'application/xml', 'multipart/form-data; boundary=x']) {
    const res = await apiRequest(admin, 'POST', CONFIGMAPS, cm, { 'Content-Type': type })
    t.equal(res.status, 415, type)
    t.match(res.json, { kind: 'Status', reason: 'UnsupportedMediaType', code: 415, message: /application\/json, application\/yaml/ }, type)
  }
  const patch = await apiRequest(admin, 'PATCH', '/api/v1/namespaces/default', '{}', { 'Content-Type': 'application/json' })
  t.equal(patch.status, 415, 'a PATCH as plain JSON is not a patch type')
  t.equal((await apiRequest(admin, 'GET', `${CONFIGMAPS}/ct`)).status, 404, 'nothing was stored')
})

t.test('invalid query parameters: 400 naming the parameter', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['GET', `${CONFIGMAPS}?limit=ten`, /^limit: Invalid value: "ten"/],
    ['GET', `${CONFIGMAPS}?watch=maybe`, /^watch: Invalid value: "maybe"/],
    ['GET', `${CONFIGMAPS}?watch=true&timeoutSeconds=soon`, /^timeoutSeconds: Invalid value: "soon"/],
    ['GET', `${CONFIGMAPS}?resourceVersion=latest`, /^resourceVersion: Invalid value: "latest"/],
    ['GET', `${CONFIGMAPS}?watch=1&resourceVersion=-5`, /^resourceVersion: Invalid value: "-5"/],
    ['GET', `${CONFIGMAPS}?labelSelector=a%20in%20(`, /unable to parse requirement/],
    ['GET', `${CONFIGMAPS}?fieldSelector=spec.nodeName%3Dx`, /field selector/],
    ['POST', `${CONFIGMAPS}?fieldValidation=Loose`, /^fieldValidation: Unsupported value: "Loose"/],
    ['POST', `${CONFIGMAPS}?dryRun=Some`, /^dryRun: Unsupported value: "Some"/],
    ['DELETE', `${CONFIGMAPS}/x?gracePeriodSeconds=later`, /^gracePeriodSeconds: Invalid value/],
    ['DELETE', `${CONFIGMAPS}/x?propagationPolicy=Sideways`, /^propagationPolicy: Unsupported value: "Sideways"/],
    ['GET', '/api/v1/namespaces/default/pods/x/log?tailLines=all', /^tailLines: Invalid value: "all"/],
    ['GET', '/api/v1/namespaces/default/pods/x/log?follow=yes', /^follow: Invalid value: "yes"/],
    ['GET', `${CONFIGMAPS}/%E0%A4%A`, /malformed percent-encoding/],
  ]
  for (const [method, path, message] of cases) {
    const body = method === 'POST' ? { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'q' } } : undefined
    const res = await apiRequest(admin, method, path, body, { Accept: 'application/json' })
    t.equal(res.status, 400, `${method} ${path}`)
    t.match(res.json, { kind: 'Status', reason: 'BadRequest', code: 400, message }, `${method} ${path}: ${res.json?.message}`)
  }
  t.equal((await apiRequest(admin, 'GET', `${CONFIGMAPS}/q`)).status, 404, 'nothing was stored')
  const ok = await apiRequest(admin, 'GET', `${CONFIGMAPS}?watch=false&limit=5&resourceVersion=0`)
  t.equal(ok.status, 200, 'well-formed parameters are served')
})

/** Collects what the server writes on a raw socket until it closes it. */
function untilClosed(socket: Socket | TLSSocket): Promise<string> {
  let data = ''
  socket.on('data', (d: Buffer) => (data += d.toString('utf8')))
  socket.on('error', () => {})
  return new Promise((resolve) => socket.once('close', () => resolve(data)))
}

function tlsSocket(target: ApiTarget): Promise<TLSSocket> {
  const url = new URL(target.server)
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: url.hostname, port: Number(url.port), ca: target.ca }, () => resolve(s))
    s.once('error', reject)
  })
}

t.test('a watcher that stops reading is cut off instead of buffered for without bound', async (t) => {
  const socket = await tlsSocket(admin)
  let received = ''
  const headersIn = new Promise<void>((resolve) => socket.once('data', () => resolve()))
  const closed = untilClosed(socket)
  socket.on('data', (d: Buffer) => (received += d.toString('latin1')))
  socket.write(`GET ${CONFIGMAPS}?watch=true HTTP/1.1\r\nHost: bramble\r\nAuthorization: Bearer ${admin.token}\r\n\r\n`)
  await headersIn
  t.match(received, /^HTTP\/1\.1 200 /, 'the watch started')
  socket.pause()

  // 40 ConfigMaps of 900 KB: 36 MB of events for a client that reads none of them.
  const pid = hub.child.pid!
  const before = memoryOf(pid).rss
  const value = 'v'.repeat(900 * 1024)
  for (let i = 0; i < 40; i++) {
    const res = await apiRequest(admin, 'POST', CONFIGMAPS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `big-${i}` }, data: { v: value } })
    if (res.status !== 201) t.fail(`create big-${i}: ${res.status} ${res.text.slice(0, 200)}`)
  }
  t.comment(`hub RSS ${(before / MB).toFixed(0)} MB before the writes, ${(memoryOf(pid).rss / MB).toFixed(0)} MB after`)

  // Reading again, the client finds the stream ended part way.
  socket.resume()
  const outcome = await Promise.race([closed, new Promise<'open'>((r) => setTimeout(() => r('open'), 60_000).unref())])
  socket.destroy()
  t.not(outcome, 'open', 'the hub closed the watch')
  const events = (received.match(/"type":"ADDED"/g) ?? []).length
  t.ok(events < 40, `the watcher got ${events} of the 40 events before it was cut off`)
  for (let i = 0; i < 40; i++) await apiRequest(admin, 'DELETE', `${CONFIGMAPS}/big-${i}`)
  const again = await apiRequest(admin, 'GET', `${CONFIGMAPS}?watch=true&timeoutSeconds=1`)
  t.equal(again.status, 200, 'a new watch is served')
})

t.test('the hub closes a connection that sends nothing (its default timeouts apply)', async (t) => {
  const url = new URL(hub.server)
  const silentTcp = netConnect({ host: url.hostname, port: Number(url.port) })
  const silentTls = await tlsSocket(admin)
  const closed = Promise.all([untilClosed(silentTcp), untilClosed(silentTls)])
  const outcome = await Promise.race([closed, new Promise<'open'>((r) => setTimeout(() => r('open'), 120_000).unref())])
  silentTcp.destroy()
  silentTls.destroy()
  t.not(outcome, 'open', 'both connections were closed by the hub')
  if (outcome !== 'open') t.match(outcome[1], /^HTTP\/1\.1 408 /, 'the TLS one was told why: 408')
  t.equal((await apiRequest(admin, 'GET', '/api/v1/namespaces')).status, 200, 'and the hub serves others')
})

t.test('slow clients: trickled headers and a trickled body get a 408 Status and are closed; others are served meanwhile', async (t) => {
  const fx = await startApiServerFixture(t, ['default'], { timeouts: { headersMs: 1_000, requestMs: 3_000 } })
  const target = fx.admin
  const trickle = (socket: TLSSocket, piece: string) => {
    const timer = setInterval(() => socket.writable && socket.write(piece), 200)
    socket.once('close', () => clearInterval(timer))
    return timer
  }

  // Headers one line at a time, never finished (slowloris).
  const headers = await tlsSocket(target)
  const headersClosed = untilClosed(headers)
  headers.write('GET /api/v1/namespaces HTTP/1.1\r\nHost: bramble\r\n')
  trickle(headers, 'X-Slow: 1\r\n')

  // Headers complete, the body a byte at a time.
  const body = await tlsSocket(target)
  const bodyClosed = untilClosed(body)
  body.write(`POST ${CONFIGMAPS} HTTP/1.1\r\nHost: bramble\r\nAuthorization: Bearer ${target.token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`)
  trickle(body, ' ')

  // Many connections that never send a byte.
  const idle = await Promise.all(Array.from({ length: 20 }, () => tlsSocket(target)))
  const idleClosed = Promise.all(idle.map(untilClosed))

  for (let i = 0; i < 5; i++) {
    t.equal((await apiRequest(target, 'GET', '/api/v1/namespaces')).status, 200, `another client is served while they hang on (${i + 1})`)
    await new Promise((r) => setTimeout(r, 200))
  }

  const deadline = <T>(p: Promise<T>) => Promise.race([p, new Promise<'open'>((r) => setTimeout(() => r('open'), 60_000).unref())])
  const [h, b, i] = await Promise.all([deadline(headersClosed), deadline(bodyClosed), deadline(idleClosed)])
  for (const s of [headers, body, ...idle]) s.destroy()
  t.not(h, 'open', 'the trickled headers were cut off')
  t.not(b, 'open', 'the trickled body was cut off')
  t.not(i, 'open', 'the idle connections were closed')
  for (const [what, text] of [['headers', h], ['body', b]] as const) {
    if (text === 'open') continue
    t.match(text, /^HTTP\/1\.1 408 /, `${what}: 408`)
    const status = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))
    t.match(status, { kind: 'Status', status: 'Failure', reason: 'Timeout', code: 408 }, `${what}: a Kubernetes Status`)
  }
  t.equal((await apiRequest(target, 'GET', `${CONFIGMAPS}`)).json.items.length, 0, 'the half-sent object was not stored')
  t.equal((await apiRequest(target, 'GET', '/api/v1/namespaces')).status, 200, 'the server still serves')
})
