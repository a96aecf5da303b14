// Registry credentials for a pull, from the pod's imagePullSecrets (pure): Secrets of type
// kubernetes.io/dockerconfigjson (`{"auths": {registry: {...}}}`) and kubernetes.io/dockercfg
// (the older `{registry: {...}}`), matched to the image's registry as the kubelet matches them.

import type { KubeObject } from '../api/types.js'

/** What Docker's pull takes as its X-Registry-Auth. */
export interface RegistryAuth {
  username?: string
  password?: string
  /** A registry token instead of a username and password. */
  identitytoken?: string
  serveraddress: string
}

const DOCKER_HUB = 'docker.io'
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'])

/** The registry host of an image reference: `127.0.0.1:5000/app:1` → `127.0.0.1:5000`; `busybox` → `docker.io`. */
export function registryOf(image: string): string {
  const slash = image.indexOf('/')
  if (slash < 0) return DOCKER_HUB
  const first = image.slice(0, slash)
  // Docker's rule: the first component names a registry when it has a dot or a port, or is localhost.
  if (first.includes('.') || first.includes(':') || first === 'localhost') return DOCKER_HUB_ALIASES.has(first) ? DOCKER_HUB : first
  return DOCKER_HUB
}

/** A docker config key (`https://127.0.0.1:5000/v1/`, `127.0.0.1:5000`) as a registry host. */
function registryOfKey(key: string): string {
  const host = key.replace(/^[a-z]+:\/\//i, '').split('/')[0].toLowerCase()
  return DOCKER_HUB_ALIASES.has(host) ? DOCKER_HUB : host
}

/** The entries of a pull Secret, keyed by registry key; empty for other Secret types or unreadable data. */
function entriesOf(secret: KubeObject): Record<string, any> {
  const data = (secret as any).data ?? {}
  const read = (key: string): any => {
    if (typeof data[key] !== 'string') return undefined
    try {
      return JSON.parse(Buffer.from(data[key], 'base64').toString('utf8'))
    } catch {
      return undefined
    }
  }
  const type = (secret as any).type
  if (type === 'kubernetes.io/dockerconfigjson') {
    const auths = read('.dockerconfigjson')?.auths
    return auths && typeof auths === 'object' ? auths : {}
  }
  if (type === 'kubernetes.io/dockercfg') {
    const cfg = read('.dockercfg')
    return cfg && typeof cfg === 'object' ? cfg : {}
  }
  return {}
}

/**
 * Credentials for pulling `image`, from the first of `pod.spec.imagePullSecrets` (present in
 * `secrets`, by name) with an entry for the image's registry; undefined when none has one (the
 * pull then goes without, as the kubelet's does).
 */
export function registryAuthFor(image: string, pod: KubeObject, secrets: Record<string, KubeObject>): RegistryAuth | undefined {
  const registry = registryOf(image).toLowerCase()
  const refs: unknown[] = Array.isArray(pod.spec?.imagePullSecrets) ? pod.spec.imagePullSecrets : []
  for (const ref of refs) {
    const secret = secrets[String((ref as any)?.name ?? '')]
    if (!secret) continue
    for (const [key, entry] of Object.entries(entriesOf(secret))) {
      if (registryOfKey(key) !== registry || !entry || typeof entry !== 'object') continue
      const auth = credentialsOf(entry)
      if (auth) return { ...auth, serveraddress: registry === DOCKER_HUB ? 'https://index.docker.io/v1/' : registry }
    }
  }
  return undefined
}

/** username/password, or `auth` (base64 of `user:password`), or an identity token. */
function credentialsOf(entry: Record<string, unknown>): Omit<RegistryAuth, 'serveraddress'> | undefined {
  if (typeof entry.identitytoken === 'string' && entry.identitytoken) return { identitytoken: entry.identitytoken }
  if (typeof entry.username === 'string' && typeof entry.password === 'string') return { username: entry.username, password: entry.password }
  if (typeof entry.auth === 'string') {
    const text = Buffer.from(entry.auth, 'base64').toString('utf8')
    const colon = text.indexOf(':')
    if (colon > 0) return { username: text.slice(0, colon), password: text.slice(colon + 1) }
  }
  return undefined
}
