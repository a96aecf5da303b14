// `bramble logs POD [-c CONTAINER] [-f] [--tail N]`: a container's output, fetched by the hub
// from the pod's node, as `kubectl logs` does.

import type { ClientContext } from './client-context.js'
import { UsageError } from './errors.js'

export interface LogsOptions {
  container?: string
  follow?: boolean
  tail?: string
  timestamps?: boolean
}

export async function runLogs(ctx: ClientContext, target: string, options: LogsOptions): Promise<void> {
  const name = target.startsWith('pod/') ? target.slice(4) : target.startsWith('pods/') ? target.slice(5) : target
  if (!name || name.includes('/')) throw new UsageError(`logs takes a pod name (or pod/NAME), got "${target}"`)
  let tailLines: string | undefined
  if (options.tail !== undefined && options.tail !== '-1') {
    if (!/^\d+$/.test(options.tail)) throw new UsageError(`--tail must be a number of lines, got "${options.tail}"`)
    tailLines = options.tail
  }
  const path = `/api/v1/namespaces/${encodeURIComponent(ctx.namespace)}/pods/${encodeURIComponent(name)}/log`
  const res = await ctx.client.stream(path, {
    accept: 'text/plain',
    query: { container: options.container, follow: options.follow ? 'true' : undefined, tailLines, timestamps: options.timestamps ? 'true' : undefined },
  })
  res.setEncoding('utf8')
  for await (const chunk of res) ctx.io.out(chunk as string)
}
