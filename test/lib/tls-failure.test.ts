// Certificate failures in one clear sentence: a node whose clock is far off names the skew against
// the hub's Date header; a peer with the wrong CA fails at once instead of retrying until a timeout.
// Against a real hub: its API for the Date header, its embedded broker for the wrong-CA case, and
// a TLS server presenting a certificate from the hub's own CA that is not yet valid (no faketime here).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:tls'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { startHub } from '../../src/hub/hub.js'
import { systemClock } from '../../src/lib/clock.js'
import { resolveHubConfig } from '../../src/lib/config.js'
import { silentLogger } from '../../src/lib/logger.js'
import { connectMqttBus, MqttConnectError } from '../../src/lib/mqtt-bus.js'
import { clockSkewMs, clockSkewSentence, describeDuration, explainTlsFailure, fetchHubDate, tlsFailureKind, tlsFailureSentence } from '../../src/lib/tls-failure.js'
import { makeCert } from '../helpers/cert-factory.js'
import { testTls } from '../helpers/tls.js'

const DAY_MS = 86_400_000
const NOW = Date.parse('2026-03-01T12:00:00Z')

t.test('the skew is the hub Date header minus the local clock', async (t) => {
  t.equal(clockSkewMs('Sun, 01 Mar 2026 12:00:30 GMT', NOW), 30_000)
  t.equal(clockSkewMs('Sun, 01 Mar 2026 11:00:00 GMT', NOW), -3_600_000)
  t.equal(clockSkewMs(undefined, NOW), undefined, 'no header, no skew')
  t.equal(clockSkewMs('not a date', NOW), undefined)
})

t.test('durations read in the units that matter', async (t) => {
  t.equal(describeDuration(45_000), '45 s')
  t.equal(describeDuration(-12 * 60_000), '12 min')
  t.equal(describeDuration(3 * 3_600_000 + 5 * 60_000), '3 h 5 min')
  t.equal(describeDuration(1 * DAY_MS), '1 day')
  t.equal(describeDuration(812 * DAY_MS + 4 * 3_600_000), '812 days 4 h')
  t.equal(describeDuration(5 * DAY_MS - 1_500), '5 days', 'rounded: the Date header has whole seconds')
  t.equal(describeDuration(3_600_000 - 1_000), '1 h')
})

t.test('clocks within a minute of the hub say nothing; further apart, which way and by how much', async (t) => {
  t.equal(clockSkewSentence(59_000, NOW), undefined)
  t.equal(clockSkewSentence(-60_000, NOW), undefined)
  t.equal(clockSkewSentence(undefined, NOW), undefined)
  const behind = clockSkewSentence(3 * DAY_MS, NOW)!
  t.match(behind, /^this node's clock is 3 days behind the hub's \(node: 2026-03-01T12:00:00\.000Z, hub: 2026-03-04T12:00:00\.000Z\)/)
  t.match(behind, /set the time/)
  t.match(clockSkewSentence(-2 * 3_600_000, NOW)!, /is 2 h ahead of the hub's/)
})

t.test('certificate failures are told apart by their code, also inside a cause', async (t) => {
  const tls = (code: string) => Object.assign(new Error(code), { code })
  t.equal(tlsFailureKind(tls('CERT_NOT_YET_VALID')), 'not-yet-valid')
  t.equal(tlsFailureKind(tls('CERT_HAS_EXPIRED')), 'expired')
  t.equal(tlsFailureKind(tls('SELF_SIGNED_CERT_IN_CHAIN')), 'wrong-ca')
  t.equal(tlsFailureKind(tls('UNABLE_TO_VERIFY_LEAF_SIGNATURE')), 'wrong-ca')
  t.equal(tlsFailureKind(tls('ERR_TLS_CERT_ALTNAME_INVALID')), 'wrong-name')
  t.equal(tlsFailureKind(new MqttConnectError('mqtts://hub:8883', tls('CERT_NOT_YET_VALID'))), 'not-yet-valid', 'through the connect error')
  t.equal(tlsFailureKind(tls('ECONNREFUSED')), undefined, 'a refused connection is no certificate failure')
  t.equal(tlsFailureSentence(tls('ECONNREFUSED'), { peer: 'the hub', localNowMs: NOW }), undefined)
})

t.test('a not-yet-valid certificate with a skewed clock names the skew; with the clocks agreeing, the certificate', async (t) => {
  const err = Object.assign(new Error('certificate is not yet valid'), { code: 'CERT_NOT_YET_VALID' })
  const skewed = tlsFailureSentence(err, { peer: 'the MQTT broker at mqtts://hub:8883', localNowMs: NOW, skewMs: 400 * DAY_MS })!
  t.match(skewed, /^TLS to the MQTT broker at mqtts:\/\/hub:8883 failed because its certificate looks not yet valid: this node's clock is 400 days behind the hub's/)
  t.notMatch(skewed, /CERT_NOT_YET_VALID/, 'no raw TLS code')
  const unknown = tlsFailureSentence(err, { peer: 'the hub', localNowMs: NOW })!
  t.match(unknown, /not yet valid by this node's clock \(2026-03-01T12:00:00\.000Z\); this node's clock is probably wrong/)
  const expired = Object.assign(new Error('certificate has expired'), { code: 'CERT_HAS_EXPIRED' })
  t.match(tlsFailureSentence(expired, { peer: 'the hub', localNowMs: NOW, skewMs: 2_000 })!, /has expired .* restart the hub, which renews its serving certificate/)
  t.match(tlsFailureSentence(expired, { peer: 'the hub', localNowMs: NOW, skewMs: -30 * DAY_MS })!, /this node's clock is 30 days ahead of the hub's/)
})

t.test('against a real hub', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'bramble-tls-failure-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const dataDir = join(root, 'hub')
  const hub = await startHub(resolveHubConfig({ dataDir, listen: '127.0.0.1', apiPort: '0', mqttPort: '0', storeMapSize: '64Mi' }, {}), { logger: silentLogger(), clock: systemClock })
  t.teardown(() => hub.close())
  const brokerPort = Number(new URL(hub.brokerUrl).port)

  t.test("the hub's Date header gives a node's skew", async (t) => {
    const date = await fetchHubDate(hub.url)
    t.type(date, 'string')
    const threeDaysBehind = Date.now() - 3 * DAY_MS
    const skew = clockSkewMs(date, threeDaysBehind)!
    t.ok(Math.abs(skew - 3 * DAY_MS) < 60_000, 'about three days')
    t.equal(await fetchHubDate('https://127.0.0.1:1', 2000), undefined, 'no hub, no date')
  })

  t.test('a broker not signed by the pinned CA fails at once with a clear sentence, not after the connect timeout', async (t) => {
    const started = Date.now()
    const err = await connectMqttBus({
      url: `mqtts://127.0.0.1:${brokerPort}`,
      username: 'nobody',
      password: 'nothing',
      clientId: 'wrong-ca',
      ca: testTls().ca, // another cluster's CA
      logger: silentLogger(),
      connectTimeoutMs: 60_000,
    }).then(
      () => undefined,
      (e: unknown) => e,
    )
    t.ok(err instanceof MqttConnectError, 'the connect fails')
    t.equal(tlsFailureKind(err), 'wrong-ca', 'because of the certificate, not a timeout')
    t.ok(Date.now() - started < 30_000, 'well before the connect timeout')
    const sentence = await explainTlsFailure(err, `the MQTT broker at mqtts://127.0.0.1:${brokerPort}`, hub.url, () => Date.now())
    t.match(sentence, /presented a certificate the cluster CA pinned at join did not sign: it is not this cluster's hub/)
  })

  t.test("a certificate from the hub's CA that is not yet valid is explained by the node's clock skew", async (t) => {
    const caPem = readFileSync(join(dataDir, 'ca.crt'), 'utf8')
    const future = makeCert(Date.now() + 2 * DAY_MS, Date.now() + 30 * DAY_MS, { certPem: caPem, keyPem: readFileSync(join(dataDir, 'ca.key'), 'utf8') })
    const server = createServer({ key: future.keyPem, cert: future.certPem })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const url = `mqtts://127.0.0.1:${(server.address() as AddressInfo).port}`
    const err = await connectMqttBus({ url, username: 'n1', password: 'p', clientId: 'n1', ca: caPem, logger: silentLogger(), connectTimeoutMs: 60_000 }).then(
      () => undefined,
      (e: unknown) => e,
    )
    t.equal(tlsFailureKind(err), 'not-yet-valid')
    // This node's clock as a Pi booted offline would have it: five days behind the hub's.
    const nodeNow = () => Date.now() - 5 * DAY_MS
    const sentence = (await explainTlsFailure(err, `the MQTT broker at ${url}`, hub.url, nodeNow))!
    t.match(sentence, new RegExp(`^TLS to the MQTT broker at ${url.replace(/[.]/g, '\\.')} failed because its certificate looks not yet valid: this node's clock is 5 days behind the hub's`))
    t.notMatch(sentence, /CERT_NOT_YET_VALID|certificate is not yet valid$/, 'not the raw TLS error')
  })
})
