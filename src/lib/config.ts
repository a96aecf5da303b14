// The one configuration schema: every flag of `bramble hub` and `bramble up`, its default, its unit
// and its validation. main registers the flags from here; nothing else reads process.env.
//
// This module is the entry others import from: the machinery is in flag-schema.ts, the hub's flags in
// hub-flags.ts, the agent's in agent-flags.ts, the shared ones in common-flags.ts. Here live the
// small schemas of the data-dir commands and the kubeconfig lookup of the client commands.

import { resolve as resolvePath, join } from 'node:path'
import { parseDurationMs } from './config-values.js'
import { dataDirFlag } from './common-flags.js'
import { defaultDataDir } from './data-dir.js'
import type { FlagSchema, FlagSpec } from './flag-schema.js'
import { AGENT_FLAGS } from './agent-flags.js'
import { etcdTlsFlag, parseStoreUrl, type StoreLocation } from './store-url.js'

export { FlagReason, hostnameAsNodeName, parseByteSize, parseDurationMs, parseMilliCpu } from './config-values.js'
export { LOG_LEVELS, type LogLevel } from './common-flags.js'
export { optionAttribute, resolveFlags, type FlagSchema, type FlagSpec, type RawFlags } from './flag-schema.js'
export { HUB_FLAGS, isAllInterfaces, resolveHubConfig, type HubConfig } from './hub-flags.js'
export { AGENT_FLAGS, resolveAgentFlags, type AgentFlags } from './agent-flags.js'

export interface TokenCreateConfig extends TokenStoreConfig {
  /** How long a new join token stays valid. */
  joinTokenTtlMs: number
}

export interface TokenStoreConfig {
  dataDir: string
  /** Where the tokens are: undefined means where DIR's hub keeps them (its shared store, else DIR). */
  store: StoreLocation | undefined
  /** TLS files for `--store etcds://...`, as `bramble hub` takes them. */
  storeCa: string | undefined
  storeCert: string | undefined
  storeKey: string | undefined
}

/** `bramble token --store`: the store of hubs that share one, as `bramble hub --store` names it. */
function tokenStoreFlag<C extends TokenStoreConfig>(): FlagSpec<C, 'store'> {
  return {
    flag: '--store',
    valueName: 'URL',
    description: "the hubs' shared store (etcd://HOST[:PORT][,...][/PREFIX/], as given to bramble hub), or lmdb for DIR's own tokens file",
    parse: (raw) => parseStoreUrl(raw),
    defaultValue: () => undefined,
    defaultText: "the store DIR's hub last ran on",
  }
}

/** `bramble token --store-ca` and the like: the hub's etcd TLS flags. */
function tokenTlsFlag<C extends TokenStoreConfig, K extends 'storeCa' | 'storeCert' | 'storeKey'>(flag: string, what: string): FlagSpec<C, K> {
  return etcdTlsFlag(flag, what) as FlagSpec<C, K>
}

function tokenStoreFlags<C extends TokenStoreConfig>(): Pick<FlagSchema<C>, 'dataDir' | 'store' | 'storeCa' | 'storeCert' | 'storeKey'> {
  return {
    dataDir: dataDirFlag() as FlagSpec<C, 'dataDir'>,
    store: tokenStoreFlag<C>(),
    storeCa: tokenTlsFlag<C, 'storeCa'>('--store-ca', "with --store etcds://: the CA that signed etcd's serving certificates"),
    storeCert: tokenTlsFlag<C, 'storeCert'>('--store-cert', 'with --store etcds://: a client certificate for etcd'),
    storeKey: tokenTlsFlag<C, 'storeKey'>('--store-key', "with --store etcds://: the client certificate's key"),
  }
}

/** `bramble token list` and `revoke`. */
export const TOKEN_FLAGS: FlagSchema<TokenStoreConfig> = tokenStoreFlags()

/** Commands that only need the data dir (`secrets rotate-key`). */
export const DATA_DIR_FLAGS: FlagSchema<{ dataDir: string }> = { dataDir: dataDirFlag() }

/** `bramble check`: the data dir whose certificates and hub it looks at, and the Docker it asks. */
export const CHECK_FLAGS: FlagSchema<{ dataDir: string; dockerHost: string }> = { dataDir: dataDirFlag(), dockerHost: AGENT_FLAGS.dockerHost }

/** `bramble token create`: works on the hub's data dir directly, or on the hubs' shared store. */
export const TOKEN_CREATE_FLAGS: FlagSchema<TokenCreateConfig> = {
  ...tokenStoreFlags<TokenCreateConfig>(),
  joinTokenTtlMs: {
    flag: '--ttl',
    valueName: 'DURATION',
    description: 'how long the join token stays valid (30m, 24h, 7d)',
    parse: (raw) => parseDurationMs(raw),
    defaultValue: () => 24 * 3_600_000,
    defaultText: '24h',
  },
}

/** The kubeconfig a client command uses: `--kubeconfig`, else `KUBECONFIG` (its first entry), else the data dir's. */
export function resolveKubeconfigPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag !== undefined && flag !== '') return resolvePath(flag)
  const fromEnv = env.KUBECONFIG?.split(':').find((p) => p !== '')
  if (fromEnv) return resolvePath(fromEnv)
  return join(resolvePath(defaultDataDir(env)), 'kubeconfig.yaml')
}
