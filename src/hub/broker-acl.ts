// Who may do what on the MQTT broker: pure functions shared by the embedded broker's hooks and
// the external Mosquitto's generated ACL file, so both enforce one rule set.
//
// A node's MQTT username is its node name (a DNS-1123 label). That is what lets Mosquitto's
// pattern ACLs substitute `%u` straight into `bramble/v1/nodes/%u/...`. The hub's own user has a
// name no node can have (a dot is not allowed in a DNS-1123 label, and a colon would break
// Mosquitto's password file), so it can never be confused with a node.

import { CLUSTER_ROOT, NODES_ROOT, isValidNodeName } from '../api/protocol.js'

export const HUB_USERNAME = 'bramble.hub'

export type Principal = { kind: 'hub' } | { kind: 'node'; node: string }

export function principalOf(username: string | undefined): Principal | undefined {
  if (username === HUB_USERNAME) return { kind: 'hub' }
  if (username !== undefined && isValidNodeName(username)) return { kind: 'node', node: username }
  return undefined
}

export function describePrincipal(p: Principal): string {
  return p.kind === 'hub' ? 'hub' : `node ${p.node}`
}

/** Topic prefixes (each standing for `prefix/#`) a node may publish to. */
export function nodePublishPrefixes(node: string): string[] {
  return [`${NODES_ROOT}/${node}/up`]
}

/** Topic prefixes (each standing for `prefix/#`) a node may subscribe to and receive from. */
export function nodeReadPrefixes(node: string): string[] {
  return [`${NODES_ROOT}/${node}/down`, CLUSTER_ROOT]
}

function hasWildcard(topic: string): boolean {
  return topic.includes('+') || topic.includes('#')
}

/** A concrete topic (no wildcards) sits at `prefix` or below it. */
function topicUnder(topic: string, prefix: string): boolean {
  return topic === prefix || topic.startsWith(prefix + '/')
}

/**
 * Every topic that `filter` can match lies at `prefix` or below it: the filter's first levels
 * spell the prefix literally (a `+` or `#` there would reach sideways or upwards), and anything
 * after them is a well-formed filter tail.
 */
export function filterWithin(filter: string, prefix: string): boolean {
  const f = filter.split('/')
  const p = prefix.split('/')
  if (f.length < p.length) return false
  for (let i = 0; i < p.length; i++) if (f[i] !== p[i]) return false
  const tail = f.slice(p.length)
  return tail.every((level, i) => (level === '#' ? i === tail.length - 1 : level === '+' || !hasWildcard(level)))
}

export function mayPublish(principal: Principal, topic: string): boolean {
  if (topic.length === 0 || hasWildcard(topic)) return false
  if (principal.kind === 'hub') return true
  return nodePublishPrefixes(principal.node).some((prefix) => topic.startsWith(prefix + '/') && topic.length > prefix.length + 1)
}

export function maySubscribe(principal: Principal, filter: string): boolean {
  if (filter.length === 0) return false
  if (principal.kind === 'hub') return true
  return nodeReadPrefixes(principal.node).some((prefix) => filterWithin(filter, prefix))
}

/** Whether a message on `topic` may be delivered to `principal` (defence in depth at delivery). */
export function mayReceive(principal: Principal, topic: string): boolean {
  if (principal.kind === 'hub') return true
  return nodeReadPrefixes(principal.node).some((prefix) => topicUnder(topic, prefix))
}

/**
 * The client id a principal must connect with. Binding it to the username stops one node from
 * taking over another's persistent session (and the subscriptions and queued messages in it) or
 * kicking it off by reusing its client id. The hub may open several connections, each with a
 * client id that starts with its username.
 */
export function clientIdAllowed(principal: Principal, clientId: string): boolean {
  if (principal.kind === 'node') return clientId === principal.node
  return clientId === HUB_USERNAME || clientId.startsWith(HUB_USERNAME + ':')
}
