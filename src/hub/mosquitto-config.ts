// Authentication and authorization files for an external Mosquitto 2.0 (`--mqtt-url`): a
// password file in mosquitto_passwd format and a pattern ACL file that states broker-acl.ts's
// rules in Mosquitto's words. Node usernames are node names, so `%u` in a pattern is the node.
//
// What Mosquitto cannot state: that a node's client id must be its name. Mosquitto re-checks read
// ACLs on delivery (including messages queued for a durable session), so reusing another node's
// client id reveals nothing, but it does disconnect that node; the embedded broker refuses it.

import { readFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { CLUSTER_ROOT, NODES_ROOT } from '../api/protocol.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { HUB_USERNAME } from './broker-acl.js'
import { writeFileAtomic, type NodeCredentials, type PasswordEntry } from './node-credentials.js'

export const MOSQUITTO_PASSWORD_FILE = 'mosquitto-passwd'
export const MOSQUITTO_ACL_FILE = 'mosquitto-acl'

/** `user:hash` lines, as mosquitto_passwd writes them. */
export function mosquittoPasswordFile(entries: PasswordEntry[]): string {
  for (const { username } of entries) {
    if (!/^[^:\s]+$/.test(username)) throw new TypeError(`"${username}" cannot be a Mosquitto password-file user`)
  }
  return entries.map((e) => `${e.username}:${e.mosquittoHash}\n`).join('')
}

/** The pattern ACL: each node its own `up/` to write, its own `down/` and the cluster to read. */
export function mosquittoAclFile(): string {
  return [
    '# Written by bramble hub; changes are overwritten. A node\'s username is its node name.',
    `pattern write ${NODES_ROOT}/%u/up/#`,
    `pattern read ${NODES_ROOT}/%u/down/#`,
    `pattern read ${CLUSTER_ROOT}/#`,
    '',
    `user ${HUB_USERNAME}`,
    'topic readwrite #',
    '',
  ].join('\n')
}

export interface MosquittoListenerOptions {
  port: number
  host: string
  passwordFile: string
  aclFile: string
  tls?: { cafile: string; certfile: string; keyfile: string }
}

/** A mosquitto.conf fragment for a listener that enforces Bramble's files. */
export function mosquittoListenerConfig(o: MosquittoListenerOptions): string {
  return [
    'per_listener_settings false',
    'allow_anonymous false',
    // Mosquitto drops QoS 1 messages past 1,000 queued for one client: the hub's connection falls
    // that far behind a fleet's rollout, and a dropped pod status is not sent again. Bounded, higher.
    'max_queued_messages 1000000',
    `password_file ${o.passwordFile}`,
    `acl_file ${o.aclFile}`,
    `listener ${o.port} ${o.host}`,
    'protocol mqtt',
    ...(o.tls ? [`cafile ${o.tls.cafile}`, `certfile ${o.tls.certfile}`, `keyfile ${o.tls.keyfile}`, 'tls_version tlsv1.2'] : []),
    '',
  ].join('\n')
}

/**
 * Writes both files into `dir` (atomically, owner-only by default: give Mosquitto's user read
 * access with `mode` or a group if it runs as another user). Call it again whenever credentials
 * change (NodeCredentials.onChange); Mosquitto reads both files again on SIGHUP.
 */
export async function writeMosquittoAuthFiles(
  dir: string,
  credentials: NodeCredentials,
  options: { mode?: number } = {},
): Promise<{ passwordFile: string; aclFile: string }> {
  const passwordFile = join(dir, MOSQUITTO_PASSWORD_FILE)
  const aclFile = join(dir, MOSQUITTO_ACL_FILE)
  const mode = options.mode ?? 0o600
  // A hub started with --mqtt-url for the first time has no such folder yet.
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await writeFileAtomic(passwordFile, mosquittoPasswordFile(credentials.passwordEntries()), mode)
  await writeFileAtomic(aclFile, mosquittoAclFile(), mode)
  return { passwordFile, aclFile }
}

/** How long after the last reload one more is sent, for a reload Mosquitto may have missed. */
export const MOSQUITTO_SETTLE_RELOAD_MS = 2_000

/**
 * Makes Mosquitto read its password and ACL files again (SIGHUP to the pid in its pid file), and
 * once more when reloads pause. Mosquitto clears its reload flag after reloading, so a SIGHUP that
 * comes while it still reads the files of the last one is lost: in a burst of 10,000 joins the
 * last 5 nodes' credentials stayed unknown to it until another SIGHUP came (bench/fleet, where a
 * SIGHUP by hand let them in at once).
 */
export class MosquittoReloader {
  private settle: { cancel(): void } | undefined

  constructor(
    private readonly pidFile: string,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly settleMs = MOSQUITTO_SETTLE_RELOAD_MS,
  ) {}

  reload(): void {
    this.signal()
    this.settle?.cancel()
    this.settle = this.clock.setTimeout(() => this.signal(), this.settleMs)
  }

  close(): void {
    this.settle?.cancel()
  }

  private signal(): void {
    try {
      const pid = Number(readFileSync(this.pidFile, 'utf8').trim())
      if (!Number.isInteger(pid) || pid <= 1) throw new Error(`${this.pidFile} holds no process id`)
      process.kill(pid, 'SIGHUP')
    } catch (err) {
      this.log.error({ err, pidFile: this.pidFile }, 'could not make Mosquitto reload its password and ACL files; reload it by hand (SIGHUP)')
    }
  }
}
