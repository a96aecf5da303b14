// The node's identity: the one saved by an earlier join, or a new one from joining the hub with a
// token (and the node name a join asks for when none is given). Given several hubs, the join goes
// to the first that answers: one that cannot be reached, or does not lead, passes it to the next.

import os from 'node:os'
import type { JoinResponse } from '../api/join.js'
import type { Logger } from '../lib/logger.js'
import { brambleVersion, type AgentConfig } from './agent-config.js'
import { AgentIdentityMissingError, JoinFailedError } from './errors.js'
import type { HostInfo } from './host-info.js'
import { hubAddresses, identityPath, joinHub, loadIdentity, saveIdentity } from './join-client.js'

/** The node's identity: from an earlier join, or by joining now with the token. */
export async function loadOrJoin(config: AgentConfig, hostInfo: HostInfo, logger: Logger, secretsPublicKey?: string): Promise<JoinResponse> {
  const saved = loadIdentity(config.dataDir)
  if (saved) {
    if (config.nodeName && config.nodeName !== saved.nodeName) {
      logger.warn({ component: 'agent', saved: saved.nodeName, asked: config.nodeName }, 'this data dir has joined as another node name; keeping the joined one')
    }
    return saved
  }
  if (!config.hub || !config.token) throw new AgentIdentityMissingError(identityPath(config.dataDir))
  const facts = await hostInfo.facts()
  const hubs = hubAddresses(config.hub)
  for (const [index, hub] of hubs.entries()) {
    try {
      const identity = await joinHub({
        hub,
        token: config.token,
        nodeName: config.nodeName ?? defaultNodeName(),
        facts: { arch: facts.architecture, os: facts.operatingSystem, hostname: facts.hostname },
        logger,
        version: brambleVersion(),
        ...(secretsPublicKey ? { secretsPublicKey } : {}),
      })
      saveIdentity(config.dataDir, identity)
      return identity
    } catch (err) {
      // A refusal (a bad token, a CA mismatch) is the cluster's answer: no other hub says otherwise.
      if (!(err instanceof JoinFailedError) || index === hubs.length - 1) throw err
      logger.warn({ component: 'agent', hub, next: hubs[index + 1], err: err.message }, 'could not join through this hub; trying the next')
    }
  }
  throw new AgentIdentityMissingError(identityPath(config.dataDir))
}

/** The host name as a DNS-1123 label. */
export function defaultNodeName(hostname = os.hostname()): string {
  return hostname.toLowerCase().split('.')[0]!.replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 63) || 'node'
}
