// Starting the hub: data dir, PKI, tokens, store, built-in namespaces, API server, then the
// kubeconfig (written only once the API listens, so a script waiting for the file can use it).

import { chmodSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { KubeObject } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import type { HubConfig } from '../lib/config.js'
import type { Logger } from '../lib/logger.js'
import { startApiServer } from './api-server.js'
import { StoreExistsError } from './errors.js'
import { kubeconfigPath, readKubeconfigToken, serverUrl, writeKubeconfig } from './kubeconfig.js'
import { openLmdbStore } from './lmdb-store.js'
import { ensurePki } from './pki.js'
import type { Store } from './store.js'
import { ensureBootstrapTokens, TokenStore } from './tokens.js'

export interface HubDeps {
  logger: Logger
  clock: Clock
  /** Shown in /version. */
  brambleVersion?: string
}

export interface RunningHub {
  apiPort: number
  /** `https://<advertise>:<port>` */
  url: string
  kubeconfigPath: string
  /** sha256 hex of the CA's DER, as join tokens carry it. */
  caHash: string
  tokens: TokenStore
  store: Store
  /** Stops the API server, then closes the store. Safe to call twice. */
  close(): Promise<void>
}

export const BUILT_IN_NAMESPACES = ['default', 'kube-system', 'kube-public'] as const

export async function startHub(config: HubConfig, deps: HubDeps): Promise<RunningHub> {
  const { logger, clock } = deps
  const log = logger.child({ component: 'hub' })
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 })
  chmodSync(config.dataDir, 0o700)

  const pki = ensurePki({ dataDir: config.dataDir, advertise: config.advertise, listen: config.listen, clock, logger })
  const tokens = TokenStore.open(config.dataDir, clock)
  const adminToken = chooseAdminToken(config.dataDir, tokens, pki.caHash, log)

  const store = await openLmdbStore({ path: join(config.dataDir, 'store'), logger, clock, mapSizeBytes: config.storeMapSizeBytes })
  let api
  try {
    await ensureNamespaces(store)
    api = await startApiServer({
      store,
      logger,
      clock,
      tls: { key: pki.serverKeyPem, cert: pki.serverCertPem },
      authenticate: tokens.authenticate,
      host: config.listen,
      port: config.apiPort,
      brambleVersion: deps.brambleVersion,
    })
  } catch (err) {
    await store.close()
    throw err
  }

  const path = kubeconfigPath(config.dataDir)
  writeKubeconfig(path, { advertise: config.advertise, port: api.port, caCertPem: pki.caCertPem, token: adminToken })
  const url = serverUrl(config.advertise, api.port)
  log.info({ url, kubeconfig: path, listen: config.listen }, 'hub ready')

  let closing: Promise<void> | undefined
  return {
    apiPort: api.port,
    url,
    kubeconfigPath: path,
    caHash: pki.caHash,
    tokens,
    store,
    close() {
      closing ??= (async () => {
        try {
          await api.close()
        } finally {
          await store.close()
        }
        log.info('hub stopped')
      })()
      return closing
    },
  }
}

/**
 * The admin token the kubeconfig carries: a fresh one on a first start, else the one in the
 * existing kubeconfig while it still authenticates as admin. A lost kubeconfig gets a new admin
 * token (the old ones stay valid: copies of the old file keep working).
 */
function chooseAdminToken(dataDir: string, tokens: TokenStore, caHash: string, log: Logger): string {
  const bootstrap = ensureBootstrapTokens(tokens, caHash)
  if (bootstrap) {
    log.info({ joinTokenFile: join(dataDir, 'join-token') }, 'first start: created admin, read-only and join tokens')
    return bootstrap.admin
  }
  const existing = readKubeconfigToken(kubeconfigPath(dataDir))
  if (existing && tokens.userFor(existing)?.role === 'admin') return existing
  log.warn({ kubeconfig: kubeconfigPath(dataDir) }, 'kubeconfig missing or its token unknown: issued a new admin token')
  return tokens.issueUserToken('admin', 'admin')
}

function namespaceObject(name: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels: { 'kubernetes.io/metadata.name': name } },
    spec: { finalizers: ['kubernetes'] },
    status: { phase: 'Active' },
  } as KubeObject
}

async function ensureNamespaces(store: Store): Promise<void> {
  for (const name of BUILT_IN_NAMESPACES) {
    const key = { resource: 'namespaces', namespace: '', name }
    if (await store.get(key)) continue
    try {
      await store.create(key, namespaceObject(name))
    } catch (err) {
      if (!(err instanceof StoreExistsError)) throw err
    }
  }
}
