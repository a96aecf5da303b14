// Opens the store `--store` names: LMDB in the data dir (the default), or an etcd cluster.

import { join } from 'node:path'
import type { Clock } from '../lib/clock.js'
import type { HubConfig } from '../lib/config.js'
import type { Logger } from '../lib/logger.js'
import { openEtcdStore } from './etcd-store.js'
import { openLmdbStore } from './lmdb-store.js'
import type { Store } from './store.js'

export async function openHubStore(config: HubConfig, logger: Logger, clock: Clock): Promise<Store> {
  if (config.store.kind === 'etcd') return openEtcdStore({ endpoints: config.store.endpoints, prefix: config.store.prefix, tls: config.store.tls, logger, clock })
  return openLmdbStore({ path: join(config.dataDir, 'store'), logger, clock, mapSizeBytes: config.storeMapSizeBytes })
}
