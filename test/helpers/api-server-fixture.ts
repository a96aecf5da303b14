// An API server in-process on a real LMDB store in a temp dir, with an admin and a read-only
// token, for tests of the HTTP API; stopped and removed when the test ends.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startApiServer, type ApiServerOptions, type RunningApiServer } from '../../src/hub/api-server.js'
import type { UserInfo } from '../../src/hub/auth.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import type { Store } from '../../src/hub/store.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'
import { closeApiAgents, type ApiTarget } from './api-client.js'
import { testTls } from './tls.js'

const USERS: Record<string, UserInfo> = {
  'admin-token': { name: 'admin', role: 'admin' },
  'viewer-token': { name: 'viewer', role: 'read-only' },
}

export interface ApiServerFixture {
  store: Store
  server: RunningApiServer
  admin: ApiTarget
  viewer: ApiTarget
  /** No token at all. */
  anonymous: ApiTarget
}

/** Starts it with the given namespaces (Active) and any further server options (extra routes, timeouts); `t` tears it down. */
export async function startApiServerFixture(
  t: { teardown(fn: () => unknown): void },
  namespaces: string[] = ['default'],
  more: Pick<ApiServerOptions, 'extraRoutes' | 'timeouts'> = {},
): Promise<ApiServerFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-api-'))
  const store = await openLmdbStore({ path: join(dir, 'store') })
  for (const name of namespaces) {
    await store.create({ resource: 'namespaces', namespace: '', name }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name }, status: { phase: 'Active' } })
  }
  const tls = testTls()
  const server = await startApiServer({ store, logger: silentLogger(), clock: systemClock, tls, authenticate: async (token) => USERS[token], host: '127.0.0.1', port: 0, ...more })
  t.teardown(async () => {
    closeApiAgents()
    await server.close()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const anonymous = { server: `https://127.0.0.1:${server.port}`, ca: tls.ca }
  return { store, server, anonymous, admin: { ...anonymous, token: 'admin-token' }, viewer: { ...anonymous, token: 'viewer-token' } }
}
