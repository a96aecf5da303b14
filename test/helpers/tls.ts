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

  /** A leaf certificate signed by the CA, with its own key pair. */
  const issue = (serial: string, commonName: string, extensions: object[]) => {
    const leafKeys = keys()
    const leaf = forge.pki.createCertificate()
    leaf.publicKey = leafKeys.pub
    leaf.serialNumber = serial
    leaf.validity.notBefore = ca.validity.notBefore
    leaf.validity.notAfter = ca.validity.notAfter
    leaf.setSubject([{ name: 'commonName', value: commonName }])
    leaf.setIssuer(ca.subject.attributes)
    leaf.setExtensions(extensions)
    leaf.sign(caKeys.priv, forge.md.sha256.create())
    return { cert: forge.pki.certificateToPem(leaf), key: forge.pki.privateKeyToPem(leafKeys.priv) }
  }
  const server = issue('02', 'localhost', [
    { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
    { name: 'extKeyUsage', serverAuth: true },
  ])
  const client = issue('03', 'bramble-test-client', [{ name: 'extKeyUsage', clientAuth: true }])
  cached = { ca: forge.pki.certificateToPem(ca), key: server.key, cert: server.cert, clientCert: client.cert, clientKey: client.key }
  return cached
}
