// DIR/kubeconfig.yaml: how kubectl and the bramble CLI reach this hub as admin.

import { existsSync, readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { join } from 'node:path'
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml'
import { writeFileAtomic } from '../lib/atomic-file.js'

export const KUBECONFIG_FILE = 'kubeconfig.yaml'
export const CLUSTER_NAME = 'bramble'

export interface KubeconfigOptions {
  /** Host or IP clients dial. */
  advertise: string
  port: number
  caCertPem: string
  /** The admin bearer token. */
  token: string
  userName?: string
}

export function kubeconfigPath(dataDir: string): string {
  return join(dataDir, KUBECONFIG_FILE)
}

/** `https://host:port`, with IPv6 addresses in brackets. */
export function serverUrl(advertise: string, port: number): string {
  return `https://${isIP(advertise) === 6 ? `[${advertise}]` : advertise}:${port}`
}

export function kubeconfigYaml(options: KubeconfigOptions): string {
  const user = options.userName ?? 'admin'
  return stringifyYaml({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: CLUSTER_NAME,
        cluster: {
          server: serverUrl(options.advertise, options.port),
          'certificate-authority-data': Buffer.from(options.caCertPem, 'utf8').toString('base64'),
        },
      },
    ],
    users: [{ name: user, user: { token: options.token } }],
    contexts: [{ name: CLUSTER_NAME, context: { cluster: CLUSTER_NAME, user } }],
    'current-context': CLUSTER_NAME,
    preferences: {},
  })
}

/** Writes the kubeconfig atomically with mode 0600 (it holds the admin token). */
export function writeKubeconfig(path: string, options: KubeconfigOptions): void {
  writeFileAtomic(path, kubeconfigYaml(options), 0o600)
}

/** The token of the current context's user in a kubeconfig, if the file exists and has one. */
export function readKubeconfigToken(path: string): string | undefined {
  if (!existsSync(path)) return undefined
  try {
    const doc = parseYaml(readFileSync(path, 'utf8'))
    const context = doc?.contexts?.find((c: any) => c?.name === doc['current-context'])
    const user = doc?.users?.find((u: any) => u?.name === context?.context?.user)
    const token = user?.user?.token
    return typeof token === 'string' && token !== '' ? token : undefined
  } catch {
    return undefined
  }
}
