// Connects tests to the Docker engine at DOCKER_HOST or /var/run/docker.sock; tests that need one
// skip with a clear message when none answers.

import Docker from 'dockerode'
import { randomBytes } from 'node:crypto'
import { dockerConnection } from '../../src/agent/docker-runtime.js'
import { IptablesFirewall } from '../../src/agent/host-firewall.js'
import { ServiceProxy, commandIptables } from '../../src/agent/service-proxy.js'
import { silentLogger } from '../../src/lib/logger.js'

export function dockerClient(): Docker {
  return new Docker(dockerConnection(process.env.DOCKER_HOST))
}

/** undefined when an engine answers, else why not (for `t.skip` / `{ skip }`). */
export async function dockerUnavailable(docker = dockerClient()): Promise<string | undefined> {
  try {
    await docker.ping()
    return undefined
  } catch (e) {
    return `no Docker engine answers at ${process.env.DOCKER_HOST ?? '/var/run/docker.sock'} (${(e as Error).message}); start dockerd to run this test`
  }
}

export async function dockerAvailable(docker = dockerClient()): Promise<boolean> {
  return (await dockerUnavailable(docker)) === undefined
}

/** A cluster id of its own for each test run, so runs never touch each other's containers. */
export function testClusterId(): string {
  return `test-${randomBytes(4).toString('hex')}`
}

/** Removes every container (and volume, and pod network with its iptables rules) of a test cluster. */
export async function removeClusterContainers(docker: Docker, clusterId: string): Promise<void> {
  const filters = { label: [`io.bramble.cluster=${clusterId}`] }
  for (const c of await docker.listContainers({ all: true, filters })) {
    await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {})
  }
  const { Volumes } = await docker.listVolumes({ filters })
  for (const v of Volumes ?? []) await docker.getVolume(v.Name).remove().catch(() => {})
  for (const n of await docker.listNetworks({ filters })) await docker.getNetwork(n.Id).remove().catch(() => {})
  await removeClusterRules(clusterId)
}

/** Deletes the pod network's and the service proxy's iptables rules of a test cluster in this network namespace. */
export async function removeClusterRules(clusterId: string): Promise<void> {
  const firewall = new IptablesFirewall()
  for (const [table, chain] of [['filter', 'DOCKER-USER'], ['nat', 'POSTROUTING']] as const) {
    const rules = await firewall.list(table, chain, `bramble:${clusterId}:`).catch(() => [])
    for (const rule of rules) await firewall.delete(rule).catch(() => {})
  }
  // The service proxy's chains and jumps carry a tag of the cluster id (proxy-rules.ts).
  await new ServiceProxy({ iptables: commandIptables(), clusterId, logger: silentLogger() }).remove().catch(() => {})
}
