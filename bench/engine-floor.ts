// The engine alone: how long one dockerd takes to create and start containers when nothing
// orchestrates them but a loop of Engine API calls. bench/vs-swarm measures it in the same run as
// its pairs: an orchestrator that starts N replicas cannot be faster than the engine starting N
// containers, so the floor says how low a ratio to Swarm can go at all on this engine.

import type Docker from 'dockerode'

/**
 * What one replica is on the engine: a bare container (on Docker's default bridge), one without
 * any network (`none`: no bridge port, address or iptables rules to set up, the least the engine
 * does to start a container), or a pod's two (a sandbox, and a container in its network namespace).
 */
export type FloorUnit = 'container' | 'unnetworked' | 'pod'

export interface FloorOptions {
  image: string
  command: string[]
  /** Names start with it; every container made is removed before the call returns. */
  namePrefix: string
  /** A label every container made carries (key=value), so a step's event filter can leave them out. */
  label: [string, string]
  /** Units started at once (the agent's default is 10 pod workers). */
  concurrency: number
}

/** Seconds from the first create call to the last unit started, `concurrency` units at a time. */
export async function engineFloorSeconds(docker: Docker, unit: FloorUnit, count: number, o: FloorOptions): Promise<number> {
  const made: Docker.Container[] = []
  const create = async (name: string, networkMode?: string) => {
    const c = await docker.createContainer({ name, Image: o.image, Cmd: o.command, Labels: { [o.label[0]]: o.label[1] }, HostConfig: networkMode ? { NetworkMode: networkMode } : {} })
    made.push(c)
    await c.start()
    return c
  }
  const startUnit = async (i: number) => {
    const name = `${o.namePrefix}-${i}`
    const first = await create(name, unit === 'unnetworked' ? 'none' : undefined)
    if (unit === 'pod') await create(`${name}-app`, `container:${first.id}`)
  }
  let next = 0
  const worker = async () => {
    while (next < count) await startUnit(next++)
  }
  const start = performance.now()
  try {
    await Promise.all(Array.from({ length: Math.min(o.concurrency, count) }, worker))
    return (performance.now() - start) / 1000
  } finally {
    await Promise.all(made.map((c) => c.remove({ force: true }).catch(() => {})))
  }
}
