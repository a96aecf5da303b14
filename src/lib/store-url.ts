// Where the hub keeps cluster state, as `--store` names it: LMDB in the data dir (the default), or
// an etcd cluster, `etcd://HOST[:PORT][,HOST[:PORT]...][/PREFIX/]`; and the flags of
// `bramble migrate-store`, which moves a hub's state from the one to the other.

import { isIP } from 'node:net'
import { resolve as resolvePath } from 'node:path'
import { ConfigError } from './config-errors.js'
import { FlagReason, isDnsName } from './config-values.js'
import type { FlagSchema } from './flag-schema.js'

export type EtcdLocation = { kind: 'etcd'; endpoints: string[]; prefix: string }
export type StoreLocation = { kind: 'lmdb' } | EtcdLocation

export const DEFAULT_ETCD_PORT = 2379
export const DEFAULT_STORE_PREFIX = '/bramble/'

const FORM = 'etcd://HOST[:PORT][,HOST[:PORT]...][/PREFIX/] or lmdb'

/** Throws FlagReason saying what is wrong with `raw`. */
export function parseStoreUrl(raw: string): StoreLocation {
  if (raw === 'lmdb') return { kind: 'lmdb' }
  const match = /^etcd:\/\/([^/]*)(\/.*)?$/.exec(raw)
  if (!match) throw new FlagReason(`must be ${FORM}, got "${raw}"`)
  const hosts = match[1]!
  if (hosts === '') throw new FlagReason(`must name at least one etcd member (${FORM}), got "${raw}"`)
  const endpoints = hosts.split(',').map((member) => endpoint(member, raw))
  const path = match[2] ?? DEFAULT_STORE_PREFIX
  if (!/^\/[A-Za-z0-9._\-/]*$/.test(path) || path.includes('//')) {
    throw new FlagReason(`has a key prefix "${path}" that is not a plain path (letters, digits, . _ - and single slashes), in "${raw}"`)
  }
  const prefix = path === '/' ? DEFAULT_STORE_PREFIX : path.endsWith('/') ? path : `${path}/`
  return { kind: 'etcd', endpoints, prefix }
}

/** `host[:port]` (an IPv6 address in brackets) → `http://host:port`. */
function endpoint(member: string, raw: string): string {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d+))?$/.exec(member)
  if (!match) throw new FlagReason(`has a member "${member}" that is not HOST[:PORT], in "${raw}"`)
  const host = match[1]!
  const bare = host.startsWith('[') ? host.slice(1, -1) : host
  if (host.startsWith('[') ? isIP(bare) !== 6 : isIP(bare) === 0 && !isDnsName(bare)) {
    throw new FlagReason(`has a member host "${host}" that is neither an IP address nor a DNS name, in "${raw}"`)
  }
  const port = match[2] === undefined ? DEFAULT_ETCD_PORT : Number(match[2])
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new FlagReason(`has a member port ${match[2]} outside 1-65535, in "${raw}"`)
  return `http://${host}:${port}`
}

/** The URL that names a location again (logs, errors). */
export function storeUrl(location: StoreLocation): string {
  if (location.kind === 'lmdb') return 'lmdb'
  return `etcd://${location.endpoints.map((e) => e.replace(/^http:\/\//, '')).join(',')}${location.prefix}`
}

export interface MigrateStoreFlags {
  /** The stopped hub's data dir. */
  from: string
  to: EtcdLocation
}

export const MIGRATE_STORE_FLAGS: FlagSchema<MigrateStoreFlags> = {
  from: {
    flag: '--from',
    valueName: 'DIR',
    description: "the stopped hub's data dir (its LMDB store is copied)",
    parse: (raw) => {
      if (raw.trim() === '') throw new FlagReason('must name a directory, got ""')
      return resolvePath(raw)
    },
    defaultValue: () => {
      throw new ConfigError('--from', "is required: name the stopped hub's data dir")
    },
    defaultText: 'required',
  },
  to: {
    flag: '--to',
    valueName: 'URL',
    description: 'the etcd cluster and an empty key prefix to copy into: etcd://HOST[:PORT][,HOST[:PORT]...][/PREFIX/]',
    parse: (raw) => {
      const location = parseStoreUrl(raw)
      if (location.kind !== 'etcd') throw new FlagReason(`must be an etcd:// URL, got "${raw}"`)
      return location
    },
    defaultValue: () => {
      throw new ConfigError('--to', 'is required: name the etcd cluster, etcd://HOST[:PORT][,HOST[:PORT]...][/PREFIX/]')
    },
    defaultText: 'required',
  },
}
