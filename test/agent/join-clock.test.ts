// Joining with a clock far off. A Pi booted offline with a clock in the past finds every certificate
// "not yet valid"; faketime is not available here, so the node meets a real hub through a TLS front
// that presents a certificate from the hub's own CA valid only from two days ahead. The join fails
// at once with a sentence naming this node's clock skew against the hub's Date header.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, request } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { JoinFailedError } from '../../src/agent/errors.js'
import { joinHub } from '../../src/agent/join-client.js'
import { startHub } from '../../src/hub/hub.js'
import { systemClock } from '../../src/lib/clock.js'
import { resolveHubConfig } from '../../src/lib/config.js'
import { silentLogger } from '../../src/lib/logger.js'
import { makeCert } from '../helpers/cert-factory.js'

const DAY_MS = 86_400_000

t.test('a join that meets a certificate not yet valid names the clock skew, not the TLS error', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'bramble-join-clock-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const dataDir = join(root, 'hub')
  const hub = await startHub(resolveHubConfig({ dataDir, listen: '127.0.0.1', apiPort: '0', mqttPort: '0', storeMapSize: '64Mi' }, {}), { logger: silentLogger(), clock: systemClock })
  t.teardown(() => hub.close())

  // The front passes every request on to the real hub (its answers, Date header included).
  const ca = { certPem: readFileSync(join(dataDir, 'ca.crt'), 'utf8'), keyPem: readFileSync(join(dataDir, 'ca.key'), 'utf8') }
  const future = makeCert(Date.now() + 2 * DAY_MS, Date.now() + 400 * DAY_MS, ca)
  const front = createServer({ key: future.keyPem, cert: future.certPem }, (req, res) => {
    const upstream = request(new URL(req.url ?? '/', hub.url), { method: req.method, headers: req.headers, ca: ca.certPem, agent: false }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    upstream.on('error', () => res.writeHead(502).end())
    req.pipe(upstream)
  })
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => front.close(() => resolve())))
  const address = `127.0.0.1:${(front.address() as AddressInfo).port}`

  const { token } = hub.tokens.createJoinToken({ caHash: hub.caHash })
  // This node's clock, as a Pi booted offline might have it: five days behind the hub's.
  const err = await joinHub({ hub: address, token, nodeName: 'pi-late', logger: silentLogger(), now: () => Date.now() - 5 * DAY_MS }).catch((e: unknown) => e)
  t.ok(err instanceof JoinFailedError, 'the join fails')
  t.match(
    (err as Error).message,
    /^could not join the hub at 127\.0\.0\.1:\d+: TLS to the hub at 127\.0\.0\.1:\d+ failed because its certificate looks not yet valid: this node's clock is 5 days behind the hub's \(node: .*, hub: .*\); set the time/,
  )
  t.equal(await hub.store.get({ resource: 'nodes', namespace: '', name: 'pi-late' }), undefined, 'no Node was registered')

  const unknownSkew = await joinHub({ hub: address, token, nodeName: 'pi-late', logger: silentLogger() }).catch((e: unknown) => e)
  t.match((unknownSkew as Error).message, /its certificate is not yet valid by this node's clock .*; this node's clock is probably wrong/, "with the clocks agreeing, the certificate's own start is blamed on the clock")
})
