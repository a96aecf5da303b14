// The hub's requests to this node: container logs, exec/attach/port-forward streams, image load and
// save. One handler per kind, and the dispatch of a request to the one its method names.

import type { JoinResponse } from '../api/join.js'
import type { RpcReply, RpcRequest } from '../api/protocol.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import type { ContainerRuntime } from './container-runtime.js'
import { DockerRuntime } from './docker-runtime.js'
import type { ImageEngine } from './image-engine.js'
import { ImageRpc } from './image-rpc.js'
import { hubAddresses, hubUrl } from './join-client.js'
import { LogsRpc } from './logs-rpc.js'
import { PodStreamsRpc } from './pod-streams-rpc.js'

export interface AgentRpcOptions {
  runtime: ContainerRuntime
  images: ImageEngine
  /** Image loads fetch the image from the hub's API with the node's own credentials. */
  identity: JoinResponse
  /** `--hub`'s addresses (HOST[:PORT], comma-separated), tried after the joined hub when it cannot be reached. */
  hubs?: string
  clock: Clock
  logger: Logger
  logsFollowMaxMs: number
  /** Publishes a reply on the current session; resolves at once while there is none. */
  reply: (replyTopic: string, reply: RpcReply) => Promise<void>
  /** After an image load: pods waiting for the image can start, and the node's image list changed. */
  onImageLoaded: () => void
}

export class AgentRpc {
  private readonly logs: LogsRpc
  private readonly streams: PodStreamsRpc
  private readonly images: ImageRpc

  constructor(o: AgentRpcOptions) {
    const { runtime, identity, clock, logger, reply } = o
    this.logs = new LogsRpc({ runtime, clusterId: identity.clusterId, clock, logger, followMaxMs: o.logsFollowMaxMs, reply })
    this.streams = new PodStreamsRpc({
      runtime,
      ...(runtime instanceof DockerRuntime ? { docker: runtime.docker } : {}),
      clusterId: identity.clusterId,
      clock,
      logger,
      reply,
    })
    this.images = new ImageRpc({
      images: o.images,
      hub: () => ({ apiServers: apiServersOf(identity.apiServer, o.hubs ?? ''), ca: identity.ca, username: identity.mqtt.username, password: identity.mqtt.password }),
      logger,
      reply,
      onLoaded: o.onImageLoaded,
    })
  }

  /** Runs a request whose reply topic was already checked to be this node's. */
  handle(req: RpcRequest): void {
    if (req.method === 'image-load' || req.method === 'image-save') void this.images.handle(req)
    else void (req.method === 'logs' ? this.logs.handle(req) : this.streams.handle(req))
  }

  /** Ends every open log follow and stream (the agent is stopping). */
  closeAll(): void {
    this.logs.closeAll()
    this.streams.closeAll()
  }
}

/** The joined hub's API first, then every other `--hub` address. */
function apiServersOf(joined: string, hubs: string): string[] {
  const others = hubAddresses(hubs).map((hub) => hubUrl(hub).origin)
  return [...new Set([new URL(joined).origin, ...others])]
}
