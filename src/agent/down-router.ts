// What comes down from the hub, checked before anything acts on it: a message on a topic that is
// not this node's, one that does not decode, or an rpc whose reply would go to another node's
// topic is dropped and logged; desired state and rpc requests go to their handlers.

import { decodeDown, isReplyTopicFor } from '../api/protocol-decode.js'
import { parseTopic, type DesiredMessage, type RpcRequest } from '../api/protocol.js'
import type { Logger } from '../lib/logger.js'

export interface DownHandlers {
  desired: (msg: DesiredMessage) => void
  rpc: (req: RpcRequest) => void
}

export function downRouter(node: string, log: Logger, handlers: DownHandlers): (topic: string, payload: Buffer) => void {
  return (topic, payload) => {
    const parsed = parseTopic(topic)
    if (!parsed || parsed.node !== node || parsed.direction !== 'down') {
      log.warn({ topic }, "dropped a message on a topic that is not this node's")
      return
    }
    const decoded = decodeDown(parsed.name, payload)
    if (!decoded.ok) {
      log.warn({ topic, reason: decoded.reason }, 'dropped an invalid message from the hub')
      return
    }
    if (parsed.name === 'desired') return handlers.desired(decoded.message as DesiredMessage)
    const req = decoded.message as RpcRequest
    if (!isReplyTopicFor(node, req.replyTopic)) {
      log.warn({ topic, replyTopic: req.replyTopic }, "dropped an rpc request whose reply topic is not this node's")
      return
    }
    handlers.rpc(req)
  }
}
