// A real multi-node cluster for end-to-end tests: `bramble hub` in the root namespace, listening
// and advertised on the run's bridge address, and one `bramble agent` per network-namespace host
// (see netns-host.ts), each running its pods on the dockerd of its own namespace.

import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import type Docker from 'dockerode'
import { apiRequest, closeApiAgents } from './api-client.js'
import { runCli, until } from './e2e.js'
import { BRAMBLE_BIN, startHubProcess, type HubProcess } from './hub-process.js'
import { NetnsLab, type NetnsHost } from './netns-host.js'

export interface AgentProcess {
  node: string
  host: NetnsHost
  child: ChildProcess
  output(): string
  /** Sends a signal and waits for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>
}

export class NetnsCluster {
  /** Every agent process started, restarts included, in start order. */
  readonly agents: AgentProcess[] = []
  private hubOutput = ''
  private constructor(
    readonly lab: NetnsLab,
    readonly hub: HubProcess,
    private readonly joinToken: string,
  ) {
    const keep = (d: Buffer) => (this.hubOutput = (this.hubOutput + d).slice(-20_000))
    hub.child.stdout!.on('data', keep)
    hub.child.stderr!.on('data', keep)
  }

  /** The bridge, the hub on it (default settings; info logs, kept for failure messages) and no agents yet. `prefix`: see NetnsLab.create. */
  static async start(options: { prefix?: string } = {}): Promise<NetnsCluster> {
    const lab = await NetnsLab.create(options)
    try {
      // The data dir inside the run's folder: a hub left by a crashed test is stopped with the run.
      const hub = await startHubProcess({ dataDir: join(lab.dir, 'hub'), args: ['--listen', lab.hubAddress, '--advertise', lab.hubAddress, '--log-level', 'info'] })
      // One join token for every agent: `token create` processes running at once can lose each other's tokens.
      const token = await runCli(['token', 'create', '--data-dir', hub.dataDir])
      if (token.code !== 0) {
        await hub.stop()
        throw new Error(`bramble token create failed: ${token.stderr}`)
      }
      return new NetnsCluster(lab, hub, token.stdout.trim())
    } catch (err) {
      await lab.cleanup()
      throw err
    }
  }

  /** A new namespace host whose agent joins as `node` with the cluster's join token; resolves once the Node is Ready. */
  async addNode(node: string, options: { dockerIptables?: boolean } = {}): Promise<AgentProcess> {
    const host = await this.lab.addHost(options)
    return this.startAgent(host, node, this.joinToken)
  }

  /** The agent of a host again, from its stored identity (after it was stopped or killed). */
  restartAgent(agent: AgentProcess): Promise<AgentProcess> {
    return this.startAgent(agent.host, agent.node)
  }

  private async startAgent(host: NetnsHost, node: string, token?: string): Promise<AgentProcess> {
    const hubAddress = `${this.lab.hubAddress}:${new URL(this.hub.server).port}`
    const args = [process.execPath, BRAMBLE_BIN, 'agent', '--data-dir', join(host.dir, 'agent'), '--hub', hubAddress, ...(token ? ['--token', token] : []),
      '--node-name', node, '--docker-host', host.dockerHost, '--log-level', 'info',
      // wireguard-go's sockets are shared by every namespace: each host's interface needs its own name.
      '--wireguard-interface', wireguardInterfaceOf(host), '--advertise-address', host.address]
    // nsenter execs node in place: the child's pid is the agent's, so a signal reaches the agent itself.
    const child = spawn('nsenter', host.nsenter(args), { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout!.on('data', (d) => (output = (output + d).slice(-20_000)))
    child.stderr!.on('data', (d) => (output = (output + d).slice(-20_000)))
    const exited = new Promise<void>((res) => child.once('exit', () => res()))
    const agent: AgentProcess = {
      node,
      host,
      child,
      output: () => output,
      async stop(signal = 'SIGTERM') {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal)
        await exited
      },
    }
    this.agents.push(agent)
    try {
      await until(`Node ${node} Ready`, async () => {
        if (child.exitCode !== null) throw new Error(`agent ${node} exited with ${child.exitCode}: ${output}`)
        return nodeReady(await this.get(`/api/v1/nodes/${node}`))
      }, 60_000)
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await this.diagnostics()}`, { cause: err })
    }
    return agent
  }

  /** The agent process last started for `node`. */
  agent(node: string): AgentProcess {
    const found = this.agents.filter((a) => a.node === node).pop()
    if (!found) throw new Error(`no agent was started for node ${node}`)
    return found
  }

  /** The app containers (not sandboxes) of pods in namespace default running on a node, read from that node's own dockerd. */
  appContainers(node: string): Promise<Docker.ContainerInfo[]> {
    return this.agent(node).host.docker.listContainers({ filters: { label: ['io.bramble.pod.namespace=default', 'io.bramble.container.role=app'] } })
  }

  /** GET a path of the API; the object or list, or undefined when the API says 404. */
  async get(path: string): Promise<any> {
    const res = await apiRequest(this.hub, 'GET', path)
    if (res.status === 404) return undefined
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${res.text}`)
    return res.json
  }

  /** `bramble --kubeconfig <hub's> ...args`, failing with its stderr when it exits non-zero. */
  async bramble(...args: string[]): Promise<string> {
    const r = await runCli(args, { kubeconfig: this.hub.kubeconfig })
    if (r.code !== 0) throw new Error(`bramble ${args.join(' ')} exited with ${r.code}: ${r.stderr}`)
    return r.stdout
  }

  /** What helps read a failure: each Node's Ready condition and the last lines the hub and agents logged. */
  async diagnostics(): Promise<string> {
    const nodes = (await this.get('/api/v1/nodes').catch(() => undefined))?.items ?? []
    const ready = nodes.map((n: any) => {
      const c = n.status?.conditions?.find((c: any) => c.type === 'Ready')
      return `${n.metadata.name} Ready=${c?.status} ${c?.reason ?? ''}`
    })
    const tail = (text: string) => text.trim().split('\n').slice(-15).join('\n')
    return [`nodes: ${ready.join('; ')}`, `hub log:\n${tail(this.hubOutput)}`, ...this.agents.map((a) => `agent ${a.node} log:\n${tail(a.output())}`)].join('\n')
  }

  /** Stops agents, hub and every namespace host; safe to call after a failure. */
  async cleanup(): Promise<void> {
    for (const a of this.agents) await a.stop('SIGKILL')
    await this.hub.stop()
    closeApiAgents()
    await this.lab.cleanup()
    await this.hub.cleanup()
  }
}

/** The WireGuard interface of a host's agent: named after its namespace (`bmN-i`), so unique on the machine. */
export function wireguardInterfaceOf(host: NetnsHost): string {
  return `wg-${host.netns}`
}

export function nodeReady(node: any): boolean {
  return !!node?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')
}

export function podReady(pod: any): boolean {
  return !pod.metadata.deletionTimestamp && pod.status?.phase === 'Running' && !!pod.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')
}
