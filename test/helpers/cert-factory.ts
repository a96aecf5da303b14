// Certificates with chosen validity for tests of expiry and clock skew: self-signed, or signed by a
// given CA (a hub's own, from its data dir), serving 127.0.0.1.

import { generateKeyPairSync } from 'node:crypto'
import forge from 'node-forge'

export interface CertAndKey {
  certPem: string
  keyPem: string
}

/** A serving certificate for 127.0.0.1 valid over [fromMs, toMs], signed by `signer` or by itself. */
export function makeCert(fromMs: number, toMs: number, signer?: CertAndKey): CertAndKey {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const keyPem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()
  const priv = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey
  const cert = forge.pki.createCertificate()
  cert.publicKey = forge.pki.setRsaPublicKey(priv.n, priv.e)
  cert.serialNumber = '0badc10c'
  cert.validity.notBefore = new Date(fromMs)
  cert.validity.notAfter = new Date(toMs)
  cert.setSubject([{ name: 'commonName', value: 'bramble-hub' }])
  cert.setIssuer(signer ? forge.pki.certificateFromPem(signer.certPem).subject.attributes : cert.subject.attributes)
  cert.setExtensions([{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }, { name: 'extKeyUsage', serverAuth: true }])
  cert.sign(signer ? forge.pki.privateKeyFromPem(signer.keyPem) : priv, forge.md.sha256.create())
  return { certPem: forge.pki.certificateToPem(cert), keyPem }
}
