#!/usr/bin/env node
// The `bramble` binary: the one place that wires hub, agent and client commands together.
// Heavy modules (LMDB, the API server, forge) load only inside the command that needs them, so a
// client `get` starts quickly.
//
// Exit codes (DESIGN.md): 0 success, 1 an error the server (or the hub's start) reported, 2 a usage error.

import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Command, CommanderError, Option } from 'commander'
import { ConfigError } from './lib/config-errors.js'
import { MIGRATE_STORE_FLAGS, resolveMigrateStoreFlags } from './lib/store-url.js'
import { AGENT_FLAGS, CHECK_FLAGS, DATA_DIR_FLAGS, HUB_FLAGS, resolveAgentFlags, resolveFlags, resolveHubConfig, TOKEN_CREATE_FLAGS, TOKEN_FLAGS, type AgentFlags, type FlagSchema, type RawFlags, type TokenStoreConfig } from './lib/config.js'

const EXIT_OK = 0
const EXIT_ERROR = 1
const EXIT_USAGE = 2

/** Set once a server command ran: when it returns, nothing left in the loop is worth waiting for. */
let serverRan = false

/** `up` takes the hub's flags plus these of the agent's (the rest are shared or implied). */
const UP_AGENT_FLAGS = { nodeName: AGENT_FLAGS.nodeName, dockerHost: AGENT_FLAGS.dockerHost, reserveCpuMilli: AGENT_FLAGS.reserveCpuMilli, reserveMemoryBytes: AGENT_FLAGS.reserveMemoryBytes, podMtu: AGENT_FLAGS.podMtu, clusterDns: AGENT_FLAGS.clusterDns, metricsAddress: AGENT_FLAGS.metricsAddress, deviceDir: AGENT_FLAGS.deviceDir }
/** A token `up` makes for its own agent lives only as long as the first join needs. */
const UP_JOIN_TOKEN_TTL_MS = 10 * 60_000

function brambleVersion(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dirname(dir) !== dir; dir = dirname(dir)) {
    const path = join(dir, 'package.json')
    if (existsSync(path)) return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version
  }
  return '0.0.0'
}

/** Commander's `error: unknown option '--x'` as one sentence a person can act on. */
function usageSentence(message: string): string {
  const text = message.trim().replace(/^error:\s*/i, '').replace(/\s*\n\s*/g, ' ')
  return `bramble: ${text}${/[.?!)]$/.test(text) ? '' : '.'} Run 'bramble --help' for usage.\n`
}

function addFlags<C>(command: Command, schema: FlagSchema<C>): Command {
  for (const spec of Object.values(schema) as FlagSchema<C>[keyof C][]) {
    command.addOption(new Option(`${spec.flag} <${spec.valueName}>`, `${spec.description} (default: ${spec.defaultText})`))
  }
  return command
}

/** The commands that run a server; client commands are not loaded for them (a lighter agent). */
const SERVER_COMMANDS = new Set(['hub', 'up', 'agent'])

async function buildProgram(argv: string[]): Promise<Command> {
  const program = new Command('bramble')
    .description('A light, Kubernetes-shaped orchestrator for clusters of small ARM boards.')
    .version(brambleVersion(), '--version', 'print the version')
    .option('--kubeconfig <FILE>', "kubeconfig for client commands (default: $KUBECONFIG, then the data dir's kubeconfig.yaml)")
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(usageSentence(str)) })
    .showSuggestionAfterError(true)

  addFlags(program.command('hub').description('run the hub: the API server and the cluster store'), HUB_FLAGS).action((opts: RawFlags) => runHub('hub', opts))
  addFlags(addFlags(program.command('up').description('run a one-node cluster: the hub and a local agent'), HUB_FLAGS), UP_AGENT_FLAGS).action((opts: RawFlags) => runHub('up', opts))
  addFlags(program.command('agent').description('run a node agent: join the hub once, then run the pods it assigns'), AGENT_FLAGS).action((opts: RawFlags) => runAgent(opts))
  addTokenCommands(program)
  addFlags(program.command('check').description('preflight: certificates, Docker, cgroups, WireGuard, arch, clock, disk; exits 1 when a check fails'), CHECK_FLAGS).action(async (opts: RawFlags) => {
    const { checkCommand } = await import('./cli/check-command.js')
    process.exitCode = await checkCommand(resolveFlags(CHECK_FLAGS, opts))
  })
  addSecretsCommands(program)
  addFlags(program.command('restore').description("make a new hub's data dir from a `bramble backup` archive (same CA: agents reconnect without joining again)").argument('<FILE>', 'the archive'), DATA_DIR_FLAGS).action(async (file: string, opts: RawFlags) => {
    const { dataDir } = resolveFlags(DATA_DIR_FLAGS, opts)
    const done = await (await import('./hub/backup.js')).restoreBackup(file, dataDir)
    process.stderr.write(`bramble: restored ${file} into ${dataDir}: store at revision ${done.revision}, ${done.nodes} nodes. Start the hub with --data-dir ${dataDir}.\n`)
  })
  addFlags(program.command('migrate-store').description("copy a stopped hub's LMDB store into an empty etcd prefix; then start the hub with --store and the same data dir"), MIGRATE_STORE_FLAGS).action(async (opts: RawFlags) => {
    const { from, to } = resolveMigrateStoreFlags(opts)
    const done = await (await import('./hub/store-migration.js')).migrateLmdbToEtcd(from, to)
    process.stderr.write(`bramble: copied ${done.objects} objects from ${from} (revision ${done.fromRevision}) into etcd, now at revision ${done.toRevision}. Start the hub with --data-dir ${from} --store ${opts.to}.\n`)
  })
  if (!SERVER_COMMANDS.has(argv[2] ?? '')) (await import('./cli/index.js')).registerClientCommands(program)
  return program
}

function addSecretsCommands(program: Command): void {
  const secrets = program.command('secrets').description('Secrets at rest (works on a data dir, with its hub and agent stopped)')
  const rotateKey = secrets.command('rotate-key').description("make a new secrets key, re-encrypt every stored Secret with it, then drop the old key (the hub's store and the agent's replica, whichever DIR holds)")
  addFlags(rotateKey, DATA_DIR_FLAGS).action(async (opts: RawFlags) => {
    const { dataDir } = resolveFlags(DATA_DIR_FLAGS, opts)
    const hubStore = existsSync(join(dataDir, 'store'))
    const replica = join(dataDir, 'agent', 'replica')
    if (!hubStore && !existsSync(replica)) throw new Error(`${dataDir} holds neither a hub store nor an agent replica; name a data dir with --data-dir`)
    const report = (what: string, done: { newKeyId: string; droppedKeyIds: string[]; rewritten: number }) =>
      process.stderr.write(`bramble: ${what} secrets key rotated to ${done.newKeyId} (dropped ${done.droppedKeyIds.join(', ') || 'none'}); ${done.rewritten} stored values re-encrypted.\n`)
    if (hubStore) report('hub', await (await import('./hub/secret-key-rotation.js')).rotateSecretsKey(dataDir))
    if (existsSync(replica)) report('agent', await (await import('./agent/replica.js')).rotateReplicaKey(replica))
  })
}

function addTokenCommands(program: Command): void {
  const token = program.command('token').description("join tokens for agents (works on the hub's data dir, or on the store hubs share)")
  addFlags(token.command('create').description('make a join token and print it alone on stdout'), TOKEN_CREATE_FLAGS)
    .option('--description <TEXT>', 'a note kept with the token')
    .action(async (opts: RawFlags & { description?: string }) => {
      const config = resolveFlags(TOKEN_CREATE_FLAGS, opts)
      await withTokens(config, async (tokens, caHash) => {
        const made = tokens.createJoinToken({ caHash, ttlMs: config.joinTokenTtlMs, description: opts.description })
        await made.saved
        process.stdout.write(`${made.token}\n`)
      })
    })
  addFlags(token.command('list').description('list join tokens (without their secrets)'), TOKEN_FLAGS).action(async (opts: RawFlags) => {
    await withTokens(resolveFlags(TOKEN_FLAGS, opts), async (tokens) => {
      const rows = tokens.listJoinTokens().map((i) => [i.id, i.revoked ? 'revoked' : i.expired ? 'expired' : 'valid', i.expiresAt, i.description ?? ''])
      const widths = [6, 7, 24].map((w, col) => Math.max(w, ...rows.map((r) => r[col].length)))
      for (const r of [['ID', 'STATE', 'EXPIRES', 'DESCRIPTION'], ...rows]) process.stdout.write(`${r.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c)).join('   ').trimEnd()}\n`)
    })
  })
  addFlags(token.command('revoke').argument('<ID>', 'the id of the token (the part before the dot)').description('revoke a join token'), TOKEN_FLAGS).action(
    async (id: string, opts: RawFlags) => {
      await withTokens(resolveFlags(TOKEN_FLAGS, opts), async (tokens) => {
        await tokens.revokeJoinToken(id)
        process.stderr.write(`bramble: join token ${id} revoked.\n`)
      })
    },
  )
}

/**
 * Runs `use` on the tokens DIR's hub reads: DIR/tokens.json, or the records of the shared store
 * named by --store or, without it, the one DIR's hub last ran on (DIR/shared-store). The CA hash
 * for new tokens is DIR's CA: hubs sharing a store share their CA.
 */
async function withTokens(config: TokenStoreConfig, use: (tokens: import('./hub/tokens.js').HubTokens, caHash: string) => Promise<void>): Promise<void> {
  const [{ TokenStore }, { caHash }, { systemClock }, { sharedStoreOf }, { withEtcdTls }, { readFileSync: read, existsSync: exists }] = await Promise.all([
    import('./hub/tokens.js'),
    import('./hub/pki.js'),
    import('./lib/clock.js'),
    import('./hub/shared-records.js'),
    import('./lib/store-url.js'),
    import('node:fs'),
  ])
  const { dataDir } = config
  const caPath = join(dataDir, 'ca.crt')
  if (!exists(caPath)) throw new Error(`${dataDir} holds no hub CA; start the hub there first (bramble hub --data-dir ${dataDir}) or name its data dir with --data-dir.`)
  const hash = caHash(read(caPath, 'utf8'))
  const named = config.store ?? sharedStoreOf(dataDir) ?? { kind: 'lmdb' as const }
  const location = withEtcdTls(named, { ca: config.storeCa, cert: config.storeCert, key: config.storeKey }, { url: '--store', ca: '--store-ca', cert: '--store-cert', key: '--store-key' })
  if (location.kind === 'lmdb') return use(TokenStore.open(dataDir, systemClock), hash)
  const [{ openEtcdStore }, { SharedTokenStore }] = await Promise.all([import('./hub/etcd-store.js'), import('./hub/shared-tokens.js')])
  const store = await openEtcdStore({ endpoints: location.endpoints, prefix: location.prefix, tls: location.tls, clock: systemClock })
  try {
    const tokens = await SharedTokenStore.open(store, systemClock)
    try {
      await use(tokens, hash)
    } finally {
      tokens.close()
    }
  } finally {
    await store.close()
  }
}

async function runHub(mode: 'hub' | 'up', flags: RawFlags): Promise<void> {
  const config = resolveHubConfig(flags)
  const agentFlags = mode === 'up' ? resolveAgentFlags({ ...flags, hub: undefined, token: undefined }) : undefined
  const [{ startHub }, { createLogger }, { systemClock }] = await Promise.all([import('./hub/hub.js'), import('./lib/logger.js'), import('./lib/clock.js')])
  const logger = createLogger({ level: config.logLevel })
  const hub = await startHub(config, { logger, clock: systemClock, brambleVersion: brambleVersion() })
  serverRan = true
  // Signals are handled from here on, also while the local agent is still starting.
  let agentStarting: Promise<{ close(): Promise<void> } | undefined> = Promise.resolve(undefined)
  const stopped = untilSignal(logger, async () => {
    await (await agentStarting)?.close()
    await hub.close()
  })
  if (agentFlags) {
    // The local agent joins its own hub once (a short-lived token), then runs from its identity.
    const identity = join(config.dataDir, 'agent', 'identity.json')
    const token = existsSync(identity) ? '' : hub.tokens.createJoinToken({ caHash: hub.caHash, ttlMs: UP_JOIN_TOKEN_TTL_MS, description: 'bramble up: the local agent' }).token
    const address = new URL(hub.url).host
    agentStarting = startAgentProcess({ ...agentFlags, dataDir: config.dataDir, hub: address, token, heartbeatIntervalMs: config.heartbeatIntervalMs }, logger).catch((err) => {
      process.stderr.write(`bramble: the local agent could not start (${(err as Error).message}); the hub keeps running without it.\n`)
      return undefined
    })
  }
  await stopped
}

async function runAgent(flags: RawFlags): Promise<void> {
  const config = resolveAgentFlags(flags)
  const { createLogger } = await import('./lib/logger.js')
  const logger = createLogger({ level: config.logLevel })
  const agent = await startAgentProcess(config, logger)
  serverRan = true
  await untilSignal(logger, () => agent.close())
}

/** Starts the agent with the real adapters: Docker, the host's facts, the system clock. */
async function startAgentProcess(flags: AgentFlags, logger: import('./lib/logger.js').Logger) {
  const [{ startAgent }, { DockerRuntime }, { SystemHostInfo }, { systemClock }, { WireGuardLink }, { DockerBridgeNetworks }, { IptablesFirewall }] = await Promise.all([
    import('./agent/agent.js'),
    import('./agent/docker-runtime.js'),
    import('./agent/host-info.js'),
    import('./lib/clock.js'),
    import('./agent/wireguard-link.js'),
    import('./agent/docker-networks.js'),
    import('./agent/host-firewall.js'),
  ])
  const [{ commandIptables }, { commandNodeAddresses }] = await Promise.all([import('./agent/service-proxy.js'), import('./agent/dns-server.js')])
  const runtime = new DockerRuntime({ host: flags.dockerHost })
  const wireguard = new WireGuardLink()
  await runtime.docker.ping().catch((err: Error) => {
    throw new Error(`cannot reach Docker at ${flags.dockerHost}: ${err.message}; start dockerd or pass --docker-host`, { cause: err })
  })
  // DiskPressure watches the data dir's filesystem and the one Docker writes containers to.
  const dockerRoot = await runtime.docker.info().then((info: { DockerRootDir?: string }) => info.DockerRootDir, () => undefined)
  return startAgent(
    {
      dataDir: flags.dataDir,
      hub: flags.hub || undefined,
      token: flags.token || undefined,
      nodeName: flags.nodeName,
      dockerHost: flags.dockerHost,
      reserve: { cpuMillis: flags.reserveCpuMilli, memoryBytes: flags.reserveMemoryBytes },
      heartbeatIntervalMs: flags.heartbeatIntervalMs,
      ...(flags.podMtu ? { podNetwork: { mtu: flags.podMtu } } : {}),
      ...(flags.secretsDir ? { pods: { secretsDir: flags.secretsDir } } : {}),
      ...(flags.wireguardInterface
        ? {
            mesh: {
              interfaceName: flags.wireguardInterface,
              listenPort: flags.wireguardPort,
              keepaliveSeconds: flags.wireguardKeepaliveSeconds,
              ...(flags.advertiseAddress ? { advertiseAddress: flags.advertiseAddress } : {}),
            },
          }
        : {}),
      // Services: the proxy rules and the pods' DNS server (--cluster-dns none: no DNS).
      services: { dnsAddress: flags.clusterDns },
      ...(flags.metricsAddress ? { metrics: flags.metricsAddress } : {}),
      deviceDir: flags.deviceDir,
      imageGc: { highPercent: flags.imageGcHighPercent, lowPercent: flags.imageGcLowPercent },
    },
    {
      runtime,
      hostInfo: new SystemHostInfo({ rootPath: flags.dataDir, ...(dockerRoot ? { imageFsPath: dockerRoot } : {}) }),
      clock: systemClock,
      logger,
      wireguard,
      // Pods get addresses from the node's pod subnet on a bridge network of its own.
      podNetwork: { networks: new DockerBridgeNetworks(runtime.docker), firewall: new IptablesFirewall(), linkMtu: (address) => wireguard.linkMtu(address) },
      iptables: commandIptables(),
      nodeAddresses: commandNodeAddresses(),
    },
  )
}

/** Runs until SIGTERM or SIGINT, then stops cleanly; a second signal exits at once. */
function untilSignal(logger: import('./lib/logger.js').Logger, stopAll: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    let stopping = false
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting without a clean shutdown')
        process.exit(EXIT_ERROR)
      }
      stopping = true
      logger.info({ signal }, 'shutting down')
      stopAll().then(resolve, (err) => {
        logger.error({ err }, 'shutdown failed')
        process.exitCode = EXIT_ERROR
        resolve()
      })
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
  })
}

/** One sentence for an error out of a command, and the exit code it maps to. */
function describeFailure(err: unknown): { message?: string; exitCode: number } {
  if (err instanceof CommanderError) return { exitCode: err.exitCode === 0 ? EXIT_OK : EXIT_USAGE } // commander printed it
  if (err instanceof ConfigError) return { message: `bramble: ${err.message}.`, exitCode: EXIT_USAGE }
  const e = err as NodeJS.ErrnoException & { exitCode?: unknown; address?: string; port?: number }
  if (e?.code === 'EADDRINUSE') return { message: `bramble: ${e.address ?? ''}:${e.port ?? ''} is already in use; stop what listens there or pick another --api-port.`, exitCode: EXIT_ERROR }
  if (e?.code === 'EADDRNOTAVAIL') return { message: `bramble: ${e.address ?? 'the listen address'} is not an address of this machine; check --listen.`, exitCode: EXIT_ERROR }
  const exitCode = typeof e?.exitCode === 'number' ? e.exitCode : EXIT_ERROR
  return { message: `bramble: ${e?.message ?? String(err)}`, exitCode }
}

async function main(argv: string[]): Promise<void> {
  try {
    await (await buildProgram(argv)).parseAsync(argv)
  } catch (err) {
    const { message, exitCode } = describeFailure(err)
    if (message) process.stderr.write(message.endsWith('\n') ? message : `${message}\n`)
    process.exitCode = exitCode
    return
  }
  if (serverRan) process.exit(process.exitCode ?? EXIT_OK)
}

await main(process.argv)
