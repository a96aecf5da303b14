// Certificates over time: backdated so a Pi whose clock lags still accepts them, and the serving
// certificate renewed in the running hub (API server and embedded broker) well before it expires.

import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from 'node:tls'
import t, { type Test } from 'tap'
import { startApiServer } from '../../src/hub/api-server.js'
import { startEmbeddedBroker } from '../../src/hub/broker.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { NodeCredentials } from '../../src/hub/node-credentials.js'
import { startHub } from '../../src/hub/hub.js'
import { CA_BACKDATE_MS, ensurePki, PKI_FILES, RENEWAL_CHECK_INTERVAL_MS, SERVER_BACKDATE_MS, startCertRenewal, type PkiOptions } from '../../src/hub/pki.js'
import { renewalDue } from '../../src/lib/cert-lifetime.js'
import { systemClock, type Clock } from '../../src/lib/clock.js'
import { resolveHubConfig } from '../../src/lib/config.js'
import { silentLogger } from '../../src/lib/logger.js'
import { FakeClock } from '../agent/fake-clock.js'

const DAY_MS = 86_400_000

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-renewal-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function options(dataDir: string, clock: FakeClock): PkiOptions {
  return { dataDir, advertise: '127.0.0.1', listen: '127.0.0.1', clock, logger: silentLogger(), hostname: 'pi-hub', interfaceAddresses: [] }
}

/** The certificate a TLS server presents to a new connection (not verified: the fake clock is ahead of the real one). */
function presented(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerX509Certificate()!.fingerprint256)
      socket.destroy()
    })
    socket.once('error', reject)
  })
}

t.test('certificates are valid from well before their issue time, the CA by longer', async (t) => {
  const clock = new FakeClock(Date.now())
  const pki = ensurePki(options(join(tempDir(t), 'data'), clock))
  const ca = new X509Certificate(pki.caCertPem)
  const server = new X509Certificate(pki.serverCertPem)
  t.equal(Date.parse(ca.validFrom), Math.floor((clock.now() - CA_BACKDATE_MS) / 1000) * 1000, 'the CA is backdated a year')
  t.equal(Date.parse(server.validFrom), Math.floor((clock.now() - SERVER_BACKDATE_MS) / 1000) * 1000, 'the serving certificate a week')
  t.ok(Date.parse(ca.validTo) - clock.now() >= 3649 * DAY_MS, 'the CA lasts ten years')
  const serverLifeMs = Date.parse(server.validTo) - clock.now()
  t.ok(serverLifeMs > 364 * DAY_MS && serverLifeMs <= 365 * DAY_MS, 'the serving certificate lasts a year from issue')
  t.ok(new Date(clock.now() - 3 * DAY_MS) > new Date(server.validFrom), 'a node whose clock is three days behind still accepts it')
})

t.test('renewal is due once less than a third of the life or 30 days remains', async (t) => {
  const clock = new FakeClock(Date.now())
  const cert = new X509Certificate(ensurePki(options(join(tempDir(t), 'data'), clock)).serverCertPem)
  const lifeMs = Date.parse(cert.validTo) - Date.parse(cert.validFrom)
  t.notOk(renewalDue(cert, clock.now()), 'not when fresh')
  t.notOk(renewalDue(cert, Date.parse(cert.validTo) - lifeMs / 3 - DAY_MS), 'not a day before the last third')
  t.ok(renewalDue(cert, Date.parse(cert.validTo) - lifeMs / 3 + DAY_MS), 'a day into the last third')
  t.ok(renewalDue(cert, Date.parse(cert.validTo) + DAY_MS), 'once expired')
})

t.test('the running API server and broker present a renewed certificate once the old one nears expiry', async (t) => {
  const dir = tempDir(t)
  const clock = new FakeClock(Date.now())
  const opts = options(join(dir, 'data'), clock)
  const pki = ensurePki(opts)
  const store = await openLmdbStore({ path: join(dir, 'store'), logger: silentLogger(), clock, mapSizeBytes: 64 * 1024 * 1024 })
  t.teardown(() => store.close())
  const tls = { key: pki.serverKeyPem, cert: pki.serverCertPem }
  const api = await startApiServer({ store, logger: silentLogger(), clock, tls, authenticate: async () => undefined, host: '127.0.0.1', port: 0 })
  t.teardown(() => api.close())
  const credentials = await NodeCredentials.open(join(dir, 'mqtt'))
  const broker = await startEmbeddedBroker({ port: 0, host: '127.0.0.1', tls, credentials, logger: silentLogger() })
  t.teardown(() => broker.close())

  const original = new X509Certificate(pki.serverCertPem)
  t.equal(await presented(api.port), original.fingerprint256)
  let applied = 0
  const renewal = startCertRenewal({ ...opts, pki, apply: (next) => (applied++, api.setTls(next), broker.setTls(next)) })
  t.teardown(() => renewal.stop())

  clock.advance(30 * DAY_MS)
  t.equal(applied, 0, 'a month in, nothing is renewed')
  t.equal(await presented(api.port), original.fingerprint256)

  clock.advance(240 * DAY_MS)
  t.equal(applied, 1, 'renewed once, on the daily check that found it in its last third')
  const onDisk = new X509Certificate(readFileSync(join(opts.dataDir, PKI_FILES.serverCert), 'utf8'))
  t.not(onDisk.fingerprint256, original.fingerprint256, 'a new certificate is in the data dir')
  t.ok(onDisk.verify(new X509Certificate(pki.caCertPem).publicKey), 'signed by the same CA')
  t.ok(Date.parse(onDisk.validTo) > Date.parse(original.validTo) + 200 * DAY_MS, 'it lasts a year from the renewal')
  t.equal(await presented(api.port), onDisk.fingerprint256, 'the API server presents it without a restart')
  t.equal(await presented(broker.port), onDisk.fingerprint256, 'and so does the embedded broker')
  t.equal(clock.pendingTimers, 1, 'the next daily check is scheduled')
  renewal.stop()
  t.equal(clock.pendingTimers, 0, 'stopping cancels it')
})

t.test('a serving certificate not yet valid by the hub clock (the clock went back) is replaced at start', async (t) => {
  const dir = join(tempDir(t), 'data')
  const clock = new FakeClock(Date.now())
  const first = ensurePki(options(dir, clock))
  const earlier = new FakeClock(Date.now() - 30 * DAY_MS)
  const second = ensurePki(options(dir, earlier))
  t.same(second.created, { ca: false, server: true })
  t.ok(Date.parse(new X509Certificate(second.serverCertPem).validFrom) <= earlier.now(), 'valid by the clock the hub has now')
  t.equal(second.caCertPem, first.caCertPem, 'the CA (backdated a year) is kept')
})

t.test('a running hub renews its serving certificate on the daily check and serves it on the API and MQTT ports', async (t) => {
  const dataDir = join(tempDir(t), 'hub')
  // Real time for everything the hub runs, except that the test moves the wall clock and fires the daily check.
  let offsetMs = 0
  const dailyChecks: Array<() => void> = []
  const clock: Clock = {
    now: () => Date.now() + offsetMs,
    monotonic: () => systemClock.monotonic(),
    setTimeout: (fn, ms) => (ms === RENEWAL_CHECK_INTERVAL_MS ? (dailyChecks.push(fn), { cancel: () => {} }) : systemClock.setTimeout(fn, ms)),
  }
  const hub = await startHub(resolveHubConfig({ dataDir, listen: '127.0.0.1', apiPort: '0', mqttPort: '0', storeMapSize: '64Mi' }, {}), { logger: silentLogger(), clock })
  t.teardown(() => hub.close())
  const brokerPort = Number(new URL(hub.brokerUrl).port)
  const original = new X509Certificate(readFileSync(join(dataDir, PKI_FILES.serverCert), 'utf8')).fingerprint256
  t.equal(await presented(hub.apiPort), original)
  t.equal(dailyChecks.length, 1, 'the first daily check is scheduled at start')

  offsetMs = 300 * DAY_MS
  dailyChecks.shift()!()
  const renewed = new X509Certificate(readFileSync(join(dataDir, PKI_FILES.serverCert), 'utf8')).fingerprint256
  t.not(renewed, original, 'renewed in the data dir')
  t.equal(await presented(hub.apiPort), renewed, 'the API presents it')
  t.equal(await presented(brokerPort), renewed, 'the embedded broker presents it')
  t.equal(dailyChecks.length, 1, 'the next check is scheduled')
})
