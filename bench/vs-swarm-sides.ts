// bench/vs-swarm's two sides behind one interface: Docker Swarm through `docker service`, Bramble
// through `bramble apply` / `scale` / `delete` and its API, both on the same engine; and the
// helpers both use.

import { execFile } from 'node:child_process'
import type Docker from 'dockerode'
import { apiRequest } from '../test/helpers/api-client.js'
import { runCli } from '../test/helpers/e2e.js'
import type { AgentProcess, NetnsCluster } from '../test/helpers/netns-cluster.js'
import type { NetnsHost } from '../test/helpers/netns-host.js'
import type { VsSwarmOptions } from './vs-swarm.js'

/** A shell that exits 0 on SIGTERM at once (`wait` returns on a trapped signal; `sleep` would not). */
export const COMMAND = ['sh', '-c', "trap 'exit 0' TERM; while true; do sleep 1 & wait $!; done"]
const POLL_MS = 50

/** What one side does; Swarm's and Bramble's implement it with their own commands. */
export interface Orchestrator {
  name: string
  /** Creates the group `name` with `replicas` replicas of `image`. */
  create(name: string, replicas: number, image: string): Promise<void>
  scale(name: string, replicas: number): Promise<void>
  updateImage(name: string, replicas: number, image: string): Promise<void>
  /** Replicas the orchestrator says run, of `image` when given. */
  running(name: string, image?: string): Promise<number>
  /** The group's containers the engine runs, of `image` when given. */
  containers(name: string, image?: string): Promise<Docker.ContainerInfo[]>
  /** Removes the group and resolves once none of its containers is left. */
  remove(name: string): Promise<void>
  /** True for a container of the group `name`, from its labels. */
  owns(name: string, labels: Record<string, string>): boolean
}

export function swarmSide(host: NetnsHost, o: VsSwarmOptions): Orchestrator {
  const docker = (...args: string[]) => command('docker', ['-H', host.dockerHost, ...args])
  const serviceLabel = (name: string) => `com.docker.swarm.service.name=${name}`
  const side: Orchestrator = {
    name: 'swarm',
    async create(name, replicas, image) {
      await docker('service', 'create', '--detach', '--quiet', '--name', name, '--replicas', String(replicas), '--stop-grace-period', `${o.graceSeconds}s`,
        '--update-parallelism', String(o.parallelism), '--update-order', 'stop-first', '--no-resolve-image', image, ...COMMAND)
    },
    async scale(name, replicas) {
      await docker('service', 'scale', '--detach', `${name}=${replicas}`)
    },
    async updateImage(name, _replicas, image) {
      await docker('service', 'update', '--detach', '--quiet', '--no-resolve-image', '--image', image, name)
    },
    async running(name, image) {
      const tasks = await host.docker.listTasks({ filters: { service: [name], 'desired-state': ['running'] } })
      return tasks.filter((t: any) => t.Status?.State === 'running' && (!image || t.Spec?.ContainerSpec?.Image === image)).length
    },
    async containers(name, image) {
      const list = await host.docker.listContainers({ filters: { label: [serviceLabel(name)], status: ['running'] } })
      return list.filter((c) => !image || c.Image === image)
    },
    owns: (name, labels) => labels['com.docker.swarm.service.name'] === name,
    async remove(name) {
      await docker('service', 'rm', name)
      await waitFor(`the containers of service ${name} to go`, async () => (await host.docker.listContainers({ all: true, filters: { label: [serviceLabel(name)] } })).length === 0, o.stepTimeoutSeconds)
    },
  }
  return side
}

export function brambleSide(cluster: NetnsCluster, agent: AgentProcess, o: VsSwarmOptions): Orchestrator {
  const bramble = async (args: string[], stdin?: string) => {
    const r = await runCli(args, { kubeconfig: cluster.hub.kubeconfig, stdin })
    if (r.code !== 0) throw new Error(`bramble ${args.join(' ')} exited with ${r.code}: ${r.stderr.trim()}`)
  }
  const deployment = (name: string, replicas: number, image: string) => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: o.parallelism } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: o.graceSeconds,
          containers: [{ name: 'main', image, imagePullPolicy: 'IfNotPresent', command: COMMAND }],
        },
      },
    },
  })
  const pods = async (name: string): Promise<any[]> => {
    const res = await apiRequest(cluster.hub, 'GET', `/api/v1/namespaces/default/pods?labelSelector=${encodeURIComponent(`app=${name}`)}`)
    if (res.status !== 200) throw new Error(`listing the pods of ${name}: ${res.status} ${res.text}`)
    return res.json.items
  }
  const appContainers = (all: boolean) =>
    agent.host.docker.listContainers({ all, filters: { label: ['io.bramble.pod.namespace=default', 'io.bramble.container.role=app'], ...(all ? {} : { status: ['running'] }) } })
  const ofGroup = (name: string) => (c: Docker.ContainerInfo) => (c.Labels['io.bramble.pod.name'] ?? '').startsWith(`${name}-`)
  return {
    name: 'bramble',
    create: (name, replicas, image) => bramble(['apply', '-f', '-'], JSON.stringify(deployment(name, replicas, image))),
    scale: (name, replicas) => bramble(['scale', `deployment/${name}`, `--replicas=${replicas}`]),
    updateImage: (name, replicas, image) => bramble(['apply', '-f', '-'], JSON.stringify(deployment(name, replicas, image))),
    async running(name, image) {
      return (await pods(name)).filter((p) => !p.metadata.deletionTimestamp && p.status?.phase === 'Running' && (!image || p.spec.containers[0].image === image)).length
    },
    async containers(name, image) {
      return (await appContainers(false)).filter((c) => ofGroup(name)(c) && (!image || c.Image === image))
    },
    owns: (name, labels) => ofGroup(name)({ Labels: labels } as Docker.ContainerInfo),
    async remove(name) {
      await bramble(['delete', 'deployment', name])
      await waitFor(`the pods of deployment ${name} to go`, async () => (await pods(name)).length === 0, o.stepTimeoutSeconds)
      const podContainers = async () =>
        (await agent.host.docker.listContainers({ all: true, filters: { label: ['io.bramble.pod.namespace=default'] } })).filter((c) => (c.Labels['io.bramble.pod.name'] ?? '').startsWith(`${name}-`))
      await waitFor(`the containers of deployment ${name} to go`, async () => (await podContainers()).length === 0, o.stepTimeoutSeconds)
    },
  }
}

export async function waitFor(what: string, done: () => Promise<boolean>, timeoutSeconds: number): Promise<void> {
  const deadline = performance.now() + timeoutSeconds * 1000
  while (!(await done())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutSeconds} s waiting for ${what}`)
    await new Promise((r) => setTimeout(r, POLL_MS))
  }
}

export function command(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 120_000, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')} failed: ${stderr.trim() || err.message}`, { cause: err }))
      else resolve(stdout)
    })
  })
}
