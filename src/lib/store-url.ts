// Where the hub keeps cluster state, as `--store` names it: LMDB in the data dir (the default), or
// an etcd cluster, `etcd://HOST[:PORT][,HOST[:PORT]...][/PREFIX/]`, or `etcds://...` for one that
// speaks TLS (with --store-ca, and --store-cert/--store-key where etcd asks for client
// certificates, as `--client-cert-auth` makes it); and the flags of `bramble migrate-store`, which
// moves a hub's state from the one to the other.

import { existsSync } from 'node:fs'
import { isIP } from 'node:net'
import { resolve as resolvePath } from 'node:path'
import { ConfigError } from './config-errors.js'
import { FlagReason, isDnsName } from './config-values.js'
import { resolveFlags, type FlagSchema, type RawFlags } from './flag-schema.js'

/** Files for TLS to etcd: the CA that signed its serving certificates, a client certificate and key. */
export interface EtcdTlsFiles {
  ca?: string
  cert?: string
  key?: string
}

/** `tls` is there exactly when the URL was `etcds://` (the endpoints are then https). */
export type EtcdLocation = { kind: 'etcd'; endpoints: string[]; prefix: string; tls?: EtcdTlsFiles }
export type StoreLocation = { kind: 'lmdb' } | EtcdLocation

export const DEFAULT_ETCD_PORT = 2379
export const DEFAULT_STORE_PREFIX = '/bramble/'

const FORM = 'etcd://HOST[:PORT][,HOST[:PORT]...][/PREFIX/] (etcds:// for TLS) or lmdb'

/** Throws FlagReason saying what is wrong with `raw`. */
export function parseStoreUrl(raw: string): StoreLocation {
  if (raw === 'lmdb') return { kind: 'lmdb' }
  const match = /^(etcds?):\/\/([^/]*)(\/.*)?$/.exec(raw)
  if (!match) throw new FlagReason(`must be ${FORM}, got "${raw}"`)
  const tls = match[1] === 'etcds'
  const hosts = match[2]!
  if (hosts === '') throw new FlagReason(`must name at least one etcd member (${FORM}), got "${raw}"`)
  const endpoints = hosts.split(',').map((member) => endpoint(member, raw, tls ? 'https' : 'http'))
  const path = match[3] ?? DEFAULT_STORE_PREFIX
  if (!/^\/[A-Za-z0-9._\-/]*$/.test(path) || path.includes('//')) {
    throw new FlagReason(`has a key prefix "${path}" that is not a plain path (letters, digits, . _ - and single slashes), in "${raw}"`)
  }
  const prefix = path === '/' ? DEFAULT_STORE_PREFIX : path.endsWith('/') ? path : `${path}/`
  return tls ? { kind: 'etcd', endpoints, prefix, tls: {} } : { kind: 'etcd', endpoints, prefix }
}

/** `host[:port]` (an IPv6 address in brackets) → `http://host:port` (or https). */
function endpoint(member: string, raw: string, scheme: 'http' | 'https'): string {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d+))?$/.exec(member)
  if (!match) throw new FlagReason(`has a member "${member}" that is not HOST[:PORT], in "${raw}"`)
  const host = match[1]!
  const bare = host.startsWith('[') ? host.slice(1, -1) : host
  if (host.startsWith('[') ? isIP(bare) !== 6 : isIP(bare) === 0 && !isDnsName(bare)) {
    throw new FlagReason(`has a member host "${host}" that is neither an IP address nor a DNS name, in "${raw}"`)
  }
  const port = match[2] === undefined ? DEFAULT_ETCD_PORT : Number(match[2])
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new FlagReason(`has a member port ${match[2]} outside 1-65535, in "${raw}"`)
  return `${scheme}://${host}:${port}`
}

/** The URL that names a location again (logs, errors). */
export function storeUrl(location: StoreLocation): string {
  if (location.kind === 'lmdb') return 'lmdb'
  return `${location.tls ? 'etcds' : 'etcd'}://${location.endpoints.map((e) => e.replace(/^https?:\/\//, '')).join(',')}${location.prefix}`
}

/** The TLS flags, named as the command that takes them names them. */
export interface EtcdTlsFlagNames {
  url: string
  ca: string
  cert: string
  key: string
}

/**
 * Puts the TLS files given by flags into an etcd location. Refuses files for a store that is not
 * `etcds://` (they would be silently unused) and a certificate without its key or the reverse.
 */
export function withEtcdTls(location: StoreLocation, files: EtcdTlsFiles, names: EtcdTlsFlagNames): StoreLocation {
  const given = (Object.keys(files) as Array<keyof EtcdTlsFiles>).filter((k) => files[k] !== undefined)
  if (given.length === 0) return location
  if (location.kind !== 'etcd' || !location.tls) {
    throw new ConfigError(names[given[0]!], `is for an etcd cluster that speaks TLS: give ${names.url} etcds://HOST[:PORT]...`)
  }
  if ((files.cert === undefined) !== (files.key === undefined)) {
    const missing = files.cert === undefined ? names.cert : names.key
    throw new ConfigError(missing, `is required with ${files.cert === undefined ? names.key : names.cert}: a client certificate needs its key`)
  }
  return { ...location, tls: Object.fromEntries(given.map((k) => [k, files[k]])) }
}

/** A readable file's path, made absolute (the hub may change directory; errors name it). */
export function parseTlsFile(raw: string): string {
  if (raw.trim() === '') throw new FlagReason('must name a file, got ""')
  const path = resolvePath(raw)
  if (!existsSync(path)) throw new FlagReason(`names ${path}, which does not exist`)
  return path
}

/** The three TLS flags of a command that reaches etcd, for FlagSchema entries. */
export function etcdTlsFlag(flag: string, what: string) {
  return {
    flag,
    valueName: 'FILE',
    description: what,
    parse: parseTlsFile,
    defaultValue: (): string | undefined => undefined,
    defaultText: 'none',
  }
}

export interface MigrateStoreFlags {
  /** The stopped hub's data dir. */
  from: string
  to: EtcdLocation
  storeCa: string | undefined
  storeCert: string | undefined
  storeKey: string | undefined
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
  storeCa: etcdTlsFlag('--store-ca', "with --to etcds://: the CA that signed etcd's serving certificates (else the system's CAs)"),
  storeCert: etcdTlsFlag('--store-cert', 'with --to etcds://: a client certificate for etcd'),
  storeKey: etcdTlsFlag('--store-key', "with --to etcds://: the client certificate's key"),
}

/** Resolves `bramble migrate-store`'s flags: the etcd location with its TLS files. */
export function resolveMigrateStoreFlags(raw: RawFlags, env: NodeJS.ProcessEnv = process.env): { from: string; to: EtcdLocation } {
  const flags = resolveFlags(MIGRATE_STORE_FLAGS, raw, env)
  const to = withEtcdTls(flags.to, { ca: flags.storeCa, cert: flags.storeCert, key: flags.storeKey }, { url: '--to', ca: '--store-ca', cert: '--store-cert', key: '--store-key' })
  return { from: flags.from, to: to as EtcdLocation }
}
