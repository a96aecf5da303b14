// The hub's PKI: made on first start, reused after, the serving certificate renewed when it no
// longer fits the advertised address.

import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { caHash, ensurePki, PKI_FILES, type PkiOptions } from '../../src/hub/pki.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-pki-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'data')
}

function options(dataDir: string, extra: Partial<PkiOptions> = {}): PkiOptions {
  return {
    dataDir,
    advertise: '127.0.0.1',
    listen: '0.0.0.0',
    clock: systemClock,
    logger: silentLogger(),
    hostname: 'pi-hub',
    interfaceAddresses: ['127.0.0.1', '192.168.7.20', 'fe80::1234'],
    ...extra,
  }
}

const mode = (path: string) => statSync(path).mode & 0o777

t.test('first start creates a CA and a serving certificate with owner-only keys', async (t) => {
  const dir = tempDir(t)
  const pki = ensurePki(options(dir))
  t.same(pki.created, { ca: true, server: true })
  t.equal(mode(dir), 0o700, 'data dir is owner-only')
  t.equal(mode(join(dir, PKI_FILES.caKey)), 0o600)
  t.equal(mode(join(dir, PKI_FILES.serverKey)), 0o600)
  t.equal(readFileSync(join(dir, PKI_FILES.caCert), 'utf8'), pki.caCertPem)

  const ca = new X509Certificate(pki.caCertPem)
  t.ok(ca.ca, 'the CA certificate is a CA')
  t.ok(Date.parse(ca.validTo) - Date.now() > 9 * 365 * 86_400_000, 'the CA lasts about ten years')
  t.equal(pki.caHash, caHash(pki.caCertPem))
  t.match(pki.caHash, /^[0-9a-f]{64}$/)
})

t.test('the serving certificate is signed by the CA, for server auth, with every expected name', async (t) => {
  const pki = ensurePki(options(tempDir(t)))
  const cert = new X509Certificate(pki.serverCertPem)
  const ca = new X509Certificate(pki.caCertPem)
  t.ok(cert.verify(ca.publicKey), 'verifies against the CA key')
  t.ok(cert.checkIssued(ca), 'names the CA as issuer')
  t.notOk(cert.ca)
  t.ok(cert.keyUsage?.includes('1.3.6.1.5.5.7.3.1'), 'extended key usage serverAuth')
  for (const ip of ['127.0.0.1', '::1', '192.168.7.20', 'fe80::1234']) t.ok(cert.checkIP(ip), `covers ${ip}`)
  for (const host of ['localhost', 'pi-hub']) t.ok(cert.checkHost(host), `covers ${host}`)
  t.notOk(cert.checkIP('10.9.9.9'), 'covers no other address')
  t.ok(new X509Certificate(pki.serverCertPem).publicKey.asymmetricKeyType === 'rsa')
})

t.test('a specific listen address puts only that address (and loopback) in the certificate', async (t) => {
  const pki = ensurePki(options(tempDir(t), { listen: '10.0.0.5', advertise: '10.0.0.5' }))
  const cert = new X509Certificate(pki.serverCertPem)
  t.ok(cert.checkIP('10.0.0.5'))
  t.ok(cert.checkIP('127.0.0.1'))
  t.notOk(cert.checkIP('192.168.7.20'), 'interface addresses are left out')
})

t.test('a DNS name as advertise address goes into the certificate as a DNS name', async (t) => {
  const pki = ensurePki(options(tempDir(t), { advertise: 'hub.example.lan' }))
  t.ok(new X509Certificate(pki.serverCertPem).checkHost('hub.example.lan'))
})

t.test('a second start reuses the CA and the serving certificate', async (t) => {
  const dir = tempDir(t)
  const first = ensurePki(options(dir))
  const second = ensurePki(options(dir))
  t.same(second.created, { ca: false, server: false })
  t.equal(second.caCertPem, first.caCertPem)
  t.equal(second.serverCertPem, first.serverCertPem)
  t.equal(second.serverKeyPem, first.serverKeyPem)
})

t.test('a new advertise address renews only the serving certificate', async (t) => {
  const dir = tempDir(t)
  const first = ensurePki(options(dir))
  const second = ensurePki(options(dir, { advertise: '10.1.2.3' }))
  t.same(second.created, { ca: false, server: true })
  t.equal(second.caCertPem, first.caCertPem, 'the CA is kept, so join tokens stay valid')
  t.not(second.serverCertPem, first.serverCertPem)
  const cert = new X509Certificate(second.serverCertPem)
  t.ok(cert.checkIP('10.1.2.3'))
  t.ok(cert.verify(new X509Certificate(second.caCertPem).publicKey))
  t.equal(readFileSync(join(dir, PKI_FILES.serverCert), 'utf8'), second.serverCertPem, 'the renewed certificate is on disk')
})

t.test('a serving certificate close to expiry is renewed', async (t) => {
  const dir = tempDir(t)
  const first = ensurePki(options(dir))
  const later = { ...systemClock, now: () => Date.now() + 600 * 86_400_000 }
  const second = ensurePki(options(dir, { clock: later }))
  t.same(second.created, { ca: false, server: true })
  t.not(second.serverCertPem, first.serverCertPem)
})
