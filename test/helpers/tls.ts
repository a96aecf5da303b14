// A throwaway CA and localhost serving certificate for in-process API tests, and a client
// certificate from the same CA (for servers that ask for one, as etcd with --client-cert-auth).

import { generateKeyPairSync } from 'node:crypto'
import forge from 'node-forge'

export interface TestTls {
  ca: string
  key: string
  cert: string
  /** A certificate for TLS clients (extKeyUsage clientAuth), signed by `ca`. */
  clientCert: string
  clientKey: string
}

let cached: TestTls | undefined

export function testTls(): TestTls {
  if (cached) return cached
  const keys = () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const priv = forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }).toString())
    return { priv, pub: forge.pki.setRsaPublicKey(priv.n, priv.e) }
  }
  const caKeys = keys()
  const ca = forge.pki.createCertificate()
  ca.publicKey = caKeys.pub
  ca.serialNumber = '01'
  ca.validity.notBefore = new Date(Date.now() - 60_000)
  ca.validity.notAfter = new Date(Date.now() + 86_400_000)
  ca.setSubject([{ name: 'commonName', value: 'bramble-test-ca' }])
  ca.setIssuer(ca.subject.attributes)
  ca.setExtensions([{ name: 'basicConstraints', cA: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true }])
  ca.sign(caKeys.priv, forge.md.sha256.create())

  const serverKeys = keys()
  const cert = forge.pki.createCertificate()
  cert.publicKey = serverKeys.pub
  cert.serialNumber = '02'
  cert.validity.notBefore = ca.validity.notBefore
  cert.validity.notAfter = ca.validity.notAfter
  cert.setSubject([{ name: 'commonName', value: 'localhost' }])
  cert.setIssuer(ca.subject.attributes)
  cert.setExtensions([
    { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
    { name: 'extKeyUsage', serverAuth: true },
  ])
  cert.sign(caKeys.priv, forge.md.sha256.create())

  const clientKeys = keys()
  const client = forge.pki.createCertificate()
  client.publicKey = clientKeys.pub
  client.serialNumber = '03'
  client.validity.notBefore = ca.validity.notBefore
  client.validity.notAfter = ca.validity.notAfter
  client.setSubject([{ name: 'commonName', value: 'bramble-test-client' }])
  client.setIssuer(ca.subject.attributes)
  client.setExtensions([{ name: 'extKeyUsage', clientAuth: true }])
  client.sign(caKeys.priv, forge.md.sha256.create())
  cached = {
    ca: forge.pki.certificateToPem(ca),
    key: forge.pki.privateKeyToPem(serverKeys.priv),
    cert: forge.pki.certificateToPem(cert),
    clientCert: forge.pki.certificateToPem(client),
    clientKey: forge.pki.privateKeyToPem(clientKeys.priv),
  }
  return cached
}
