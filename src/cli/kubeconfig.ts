// Which kubeconfig a client command uses, and what it says: the server, the CA to pin, the token
// and the default namespace of its current context. Same resolution order as kubectl.

import { existsSync, readFileSync } from 'node:fs'
import { delimiter, dirname, isAbsolute, resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { defaultDataDir } from '../lib/data-dir.js'
import { KubeconfigError } from './errors.js'

export interface ClientConfig {
  /** The file it came from. */
  path: string
  /** `https://host:port`, without a trailing slash: the first of `servers`. */
  server: string
  /**
   * Every hub the cluster's `server` names: one, or highly available hubs as a comma-separated
   * list (`https://a:6443,https://b:6443`, a Bramble extension), tried in turn when one cannot be
   * reached. Absent: `server` alone.
   */
  servers?: string[]
  /** PEM of the CA that signed the hub's certificate; undefined means the system's CAs. */
  ca?: string
  token?: string
  /** The current context's namespace, else `default`. */
  namespace: string
  insecureSkipTlsVerify: boolean
}

const NO_KUBECONFIG = 'no kubeconfig found: pass --kubeconfig, set KUBECONFIG, or run `bramble up` first'

/**
 * The kubeconfig path: `--kubeconfig`, else the first existing file of `KUBECONFIG` (a
 * path-delimiter list), else `<default data dir>/kubeconfig.yaml`. Throws KubeconfigError when the
 * chosen file does not exist.
 */
export function resolveKubeconfigPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) {
    if (!existsSync(flag)) throw new KubeconfigError(`the kubeconfig ${flag} given by --kubeconfig does not exist`)
    return flag
  }
  if (env.KUBECONFIG) {
    const found = env.KUBECONFIG.split(delimiter).filter(Boolean).find((p) => existsSync(p))
    if (found) return found
  }
  const fallback = resolve(defaultDataDir(env), 'kubeconfig.yaml')
  if (existsSync(fallback)) return fallback
  throw new KubeconfigError(NO_KUBECONFIG)
}

type Named<K extends string> = { name?: string } & { [key in K]?: Record<string, unknown> }

/** Reads the kubeconfig at `path` and extracts its current context (or `context` when given). */
export function loadClientConfig(path: string, context?: string): ClientConfig {
  let doc: any
  try {
    doc = parseYaml(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new KubeconfigError(`cannot read the kubeconfig ${path}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`, { cause: err })
  }
  return clientConfigOf(doc, path, context)
}

/** The client settings of a parsed kubeconfig document; relative file references resolve against the file's folder. */
export function clientConfigOf(doc: any, path: string, contextName?: string): ClientConfig {
  if (typeof doc !== 'object' || doc === null) throw new KubeconfigError(`the kubeconfig ${path} is not a kubeconfig document`)
  const contexts: Named<'context'>[] = Array.isArray(doc.contexts) ? doc.contexts : []
  const clusters: Named<'cluster'>[] = Array.isArray(doc.clusters) ? doc.clusters : []
  const users: Named<'user'>[] = Array.isArray(doc.users) ? doc.users : []
  const wanted = contextName ?? doc['current-context']
  const ctxEntry = wanted ? contexts.find((c) => c.name === wanted) : contexts.length === 1 ? contexts[0] : undefined
  if (wanted && !ctxEntry) throw new KubeconfigError(`the kubeconfig ${path} has no context named "${wanted}"`)
  const ctx = (ctxEntry?.context ?? {}) as { cluster?: string; user?: string; namespace?: string }

  const clusterEntry = ctx.cluster ? clusters.find((c) => c.name === ctx.cluster) : clusters.length === 1 ? clusters[0] : undefined
  const cluster = (clusterEntry?.cluster ?? undefined) as Record<string, any> | undefined
  if (!cluster || typeof cluster.server !== 'string') throw new KubeconfigError(`the kubeconfig ${path} names no cluster server for its current context`)
  const userEntry = ctx.user ? users.find((u) => u.name === ctx.user) : users.length === 1 ? users[0] : undefined
  const user = (userEntry?.user ?? {}) as Record<string, any>

  const base = dirname(path)
  const readRef = (file: string, what: string): string => {
    const full = isAbsolute(file) ? file : resolve(base, file)
    try {
      return readFileSync(full, 'utf8')
    } catch (err) {
      throw new KubeconfigError(`cannot read the ${what} ${full} named in the kubeconfig ${path}`, { cause: err })
    }
  }

  const servers = cluster.server
    .split(',')
    .map((server: string) => server.trim().replace(/\/+$/, ''))
    .filter((server: string) => server !== '')
  for (const server of servers) {
    if (!/^https?:\/\/[^/]+$/.test(server)) throw new KubeconfigError(`the kubeconfig ${path} has a cluster server "${server}" that is not https://HOST[:PORT] (several hubs: comma-separated)`)
  }
  if (servers.length === 0) throw new KubeconfigError(`the kubeconfig ${path} names no cluster server for its current context`)

  let ca: string | undefined
  if (typeof cluster['certificate-authority-data'] === 'string') ca = Buffer.from(cluster['certificate-authority-data'], 'base64').toString('utf8')
  else if (typeof cluster['certificate-authority'] === 'string') ca = readRef(cluster['certificate-authority'], 'certificate authority')

  let token: string | undefined
  if (typeof user.token === 'string') token = user.token
  else if (typeof user.tokenFile === 'string') token = readRef(user.tokenFile, 'token file').trim()

  return {
    path,
    server: servers[0]!,
    servers,
    ca,
    token,
    namespace: typeof ctx.namespace === 'string' && ctx.namespace ? ctx.namespace : 'default',
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
  }
}
