// The client commands of the `bramble` binary: get, describe, apply, delete, scale, rollout,
// cordon, uncordon, drain, top. Each speaks to the hub over HTTPS only, as kubectl does; errors are
// thrown as the typed errors of errors.ts for main.ts to print and map to exit codes.

import type { Command } from 'commander'
import { runApply } from './apply-command.js'
import { withClient, type GlobalClientOptions } from './client-context.js'
import { runDelete } from './delete-command.js'
import { runDescribe } from './describe-command.js'
import { runLogs } from './logs-command.js'
import { runBackup } from './backup-command.js'
import { loadTargets, runImageCopy, runImageLoad } from './image-command.js'
import { outputFormatOf, runGet, type GetOptions } from './get-command.js'
import { parseResourceArgs } from './resource-paths.js'
import { replicasOf, runScale } from './scale-command.js'
import { gracePeriodOf, nodeNameOf, runCordon, runDrain } from './node-commands.js'
import { revisionOf, rolloutTarget, runRolloutHistory, runRolloutStatus, runRolloutUndo } from './rollout-command.js'
import { timeoutMsOf } from './timeout-flag.js'
import { runTopNodes, runTopPods, sortOf } from './top-command.js'

export { exitCodeOf } from './errors.js'

// exec and port-forward bring WebSocket and stream code that every other command would pay for at
// start-up (a third of a short command's CPU): they are loaded when used.
const runExec: typeof import('./exec-command.js').runExec = async (...args) => (await import('./exec-command.js')).runExec(...args)
const runPortForward: typeof import('./port-forward-command.js').runPortForward = async (...args) => (await import('./port-forward-command.js')).runPortForward(...args)

const collect = (value: string, previous: string[] = []): string[] => [...previous, value]

/** Client options of a command with those of the root program (`--kubeconfig`). */
function optionsOf(command: Command): GlobalClientOptions & Record<string, any> {
  return command.optsWithGlobals()
}

export function registerClientCommands(program: Command): void {
  program
    .command('get')
    .description('list objects, or show named ones, as a table, JSON, YAML or names')
    .argument('<TYPE...>', 'TYPE[,TYPE...] [NAME...] or TYPE/NAME...')
    .option('-o, --output <FORMAT>', 'json, yaml, wide or name')
    .option('-n, --namespace <NS>', 'the namespace (default: the kubeconfig context\'s, else "default")')
    .option('-A, --all-namespaces', 'list across all namespaces')
    .option('-l, --selector <SELECTOR>', 'label selector, e.g. app=web,tier!=db')
    .option('--field-selector <SELECTOR>', 'field selector, e.g. spec.nodeName=pi-1')
    .option('-w, --watch', 'after the list, print changes as they happen')
    .action(async (args: string[], _opts: unknown, command: Command) => {
      const o = optionsOf(command)
      const options: GetOptions = { output: o.output, allNamespaces: o.allNamespaces, selector: o.selector, fieldSelector: o.fieldSelector, watch: o.watch }
      // Usage errors first: a wrong type or format is reported even without a kubeconfig.
      outputFormatOf(options.output)
      parseResourceArgs(args)
      await withClient(o, (ctx) => runGet(ctx, args, options))
    })

  program
    .command('describe')
    .description('show an object in detail, with its events')
    .argument('<TYPE...>', 'TYPE [NAME...] or TYPE/NAME...')
    .option('-n, --namespace <NS>', 'the namespace')
    .option('-l, --selector <SELECTOR>', 'describe every object matching this label selector')
    .action(async (args: string[], _opts: unknown, command: Command) => {
      const o = optionsOf(command)
      await withClient(o, (ctx) => runDescribe(ctx, args, { selector: o.selector }))
    })

  program
    .command('apply')
    .description('create or update objects from manifests (client-side apply, as kubectl)')
    .requiredOption('-f, --filename <FILE>', 'a manifest file, a directory of them, or - for stdin (repeatable)', collect)
    .option('-n, --namespace <NS>', 'the namespace of manifests that name none')
    .action(async (_opts: unknown, command: Command) => {
      const o = optionsOf(command)
      await withClient(o, (ctx) => runApply(ctx, o.filename))
    })

  program
    .command('delete')
    .description('delete objects by name, by manifest, or by label selector')
    .argument('[TYPE...]', 'TYPE NAME..., TYPE/NAME..., or TYPE with -l / --all')
    .option('-f, --filename <FILE>', 'delete the objects of these manifests (repeatable)', collect)
    .option('-n, --namespace <NS>', 'the namespace')
    .option('-l, --selector <SELECTOR>', 'delete every object of TYPE matching this label selector')
    .option('--all', 'delete every object of TYPE in the namespace')
    .option('--ignore-not-found', 'treat objects that are already gone as deleted')
    .option('--cascade [MODE]', 'what becomes of owned objects: background (deleted after, the default), foreground (deleted first) or orphan (kept)')
    .option('--wait [BOOL]', 'wait (up to a minute) for objects that are only marked for deletion to be gone: the default; --wait=false returns at once')
    .action(async (args: string[], _opts: unknown, command: Command) => {
      const o = optionsOf(command)
      await withClient(o, (ctx) => runDelete(ctx, args, { filename: o.filename, selector: o.selector, all: o.all, ignoreNotFound: o.ignoreNotFound, cascade: o.cascade, wait: o.wait }))
    })

  program
    .command('logs')
    .description("print a pod's container output (fetched from its node through the hub)")
    .argument('<POD>', 'the pod, NAME or pod/NAME')
    .option('-c, --container <NAME>', 'the container (default: the only one)')
    .option('-f, --follow', 'keep printing new output')
    .option('--tail <N>', 'only the last N lines')
    .option('--timestamps', 'prefix each line with its time')
    .option('-n, --namespace <NS>', 'the namespace')
    .action(async (pod: string, _opts: unknown, command: Command) => {
      const o = optionsOf(command)
      await withClient(o, (ctx) => runLogs(ctx, pod, { container: o.container, follow: o.follow, tail: o.tail, timestamps: o.timestamps }))
    })

  program
    .command('exec')
    .description("run a command in a pod's container (through the hub and the pod's node); exits with the command's exit code")
    .argument('<POD>', 'the pod, NAME or pod/NAME')
    .argument('<COMMAND...>', 'the command and its arguments, after --')
    .option('-c, --container <NAME>', 'the container (default: the first)')
    .option('-i, --stdin', "pass this process's stdin to the command")
    .option('-t, --tty', 'give the command a terminal (with -i)')
    .option('-n, --namespace <NS>', 'the namespace')
    .action(async (pod: string, args: string[], _opts: unknown, command: Command) => {
      const o = optionsOf(command)
      process.exitCode = await withClient(o, (ctx) => runExec(ctx, pod, args, { container: o.container, stdin: o.stdin, tty: o.tty }, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }))
    })

  program
    .command('port-forward')
    .description("forward local ports to a pod's ports (through the hub and the pod's node) until interrupted")
    .argument('<POD>', 'the pod, NAME or pod/NAME')
    .argument('<PORTS...>', 'LOCAL:REMOTE, REMOTE (the same local port) or :REMOTE (a free local port)')
    .option('--address <ADDR>', 'the local address to listen on', '127.0.0.1')
    .option('-n, --namespace <NS>', 'the namespace')
    .action(async (pod: string, ports: string[], _opts: unknown, command: Command) => {
      const o = optionsOf(command)
      await withClient(o, async (ctx) => {
        const running = await runPortForward(ctx, pod, ports, { address: o.address })
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve)
          process.once('SIGTERM', resolve)
        })
        await running.close()
      })
    })

  program
    .command('scale')
    .description('set the replica count of a deployment or replica set')
    .argument('<TYPE...>', 'TYPE/NAME or TYPE NAME')
    .option('--replicas <N>', 'the new replica count (required)')
    .option('-n, --namespace <NS>', 'the namespace')
    .action(async (args: string[], _opts: unknown, command: Command) => {
      const o = optionsOf(command)
      replicasOf(o.replicas)
      await withClient(o, (ctx) => runScale(ctx, args, { replicas: o.replicas }))
    })

  program
    .command('backup')
    .description("write a consistent copy of the hub's store, CA and keys to FILE while it runs (admin token); `bramble restore` makes a new hub from it")
    .argument('<FILE>', 'the archive to write (a gzipped tar)')
    .action(async (file: string, _opts: unknown, command: Command) => {
      await withClient(optionsOf(command), (ctx) => runBackup(ctx, file))
    })

  registerRolloutCommands(program)
  registerNodeCommands(program)
  registerTopCommands(program)
  registerImageCommands(program)
}

function registerImageCommands(program: Command): void {
  const image = program.command('image').description('images for nodes without a registry, through the hub')
  image
    .command('load')
    .description('ship a `docker save` archive to nodes through the hub; each node loads it into its engine')
    .argument('<FILE>', 'the archive (docker save -o FILE IMAGE...)')
    .option('--node <NAME>', 'a node to load it on (repeatable)', collect)
    .option('--all', 'every Ready node')
    .action(async (file: string, _opts: unknown, command: Command) => {
      const o = optionsOf(command)
      loadTargets({ node: o.node, all: o.all })
      await withClient(o, (ctx) => runImageLoad(ctx, file, { node: o.node, all: o.all }))
    })
  image
    .command('copy')
    .description('copy an image from a node that has it to nodes that lack it, through the hub')
    .argument('<IMAGE>', 'the image, e.g. app:1')
    .requiredOption('--from <NODE>', 'a node that has the image')
    .requiredOption('--to <NODE>', 'a node to copy it to (repeatable)', collect)
    .action(async (name: string, _opts: unknown, command: Command) => {
      const o = optionsOf(command)
      await withClient(o, (ctx) => runImageCopy(ctx, name, { from: o.from, to: o.to }))
    })
}

function registerTopCommands(program: Command): void {
  const top = program.command('top').description("CPU and memory of nodes or pods, from the agents' reports (the metrics.k8s.io API)")
  top
    .command('nodes')
    .alias('node')
    .alias('no')
    .description('CPU, memory and temperature of every node (or one), with percentages of what is allocatable')
    .argument('[NAME]', 'one node')
    .option('-l, --selector <SELECTOR>', 'only nodes with these labels')
    .option('--sort-by <FIELD>', 'cpu or memory, largest first')
    .action(async (name: string | undefined, _opts: unknown, command: Command) => {
      const o = optionsOf(command)
      sortOf(o.sortBy)
      await withClient(o, (ctx) => runTopNodes(ctx, name, { selector: o.selector, sortBy: o.sortBy }))
    })
  top
    .command('pods')
    .alias('pod')
    .alias('po')
    .description('CPU and memory of the running pods in a namespace (or one pod)')
    .argument('[NAME]', 'one pod')
    .option('-n, --namespace <NS>', 'the namespace')
    .option('-A, --all-namespaces', 'pods of every namespace')
    .option('-l, --selector <SELECTOR>', 'only pods with these labels')
    .option('--containers', "one line per container")
    .option('--sort-by <FIELD>', 'cpu or memory, largest first')
    .action(async (name: string | undefined, _opts: unknown, command: Command) => {
      const o = optionsOf(command)
      sortOf(o.sortBy)
      await withClient(o, (ctx) => runTopPods(ctx, name, { selector: o.selector, sortBy: o.sortBy, allNamespaces: o.allNamespaces, containers: o.containers }))
    })
}

function registerRolloutCommands(program: Command): void {
  const rollout = program.command('rollout').description('follow, list and undo the rollouts of a deployment (status also of a daemonset)')
  rollout
    .command('status')
    .description('wait until the rollout is done, printing its progress as it changes')
    .argument('[TYPE...]', 'deployment/NAME or daemonset/NAME')
    .option('-n, --namespace <NS>', 'the namespace')
    .option('-w, --watch [BOOL]', 'keep watching until the rollout is done (--watch=false: print once)')
    .option('--timeout <DURATION>', 'give up after this long, e.g. 5m (0: never)')
    .option('--revision <N>', 'fail unless the rollout is of this revision')
    .action(async (typed: string[], _opts: unknown, command: Command) => {
      const o = optionsOf(command)
      // `-w deploy/web`: the optional value took the resource; give it back.
      const takenByWatch = typeof o.watch === 'string' && o.watch !== 'true' && o.watch !== 'false'
      const args = takenByWatch ? [o.watch, ...typed] : typed
      if (takenByWatch) o.watch = true
      // Usage errors first, even without a kubeconfig.
      rolloutTarget(args, 'status')
      timeoutMsOf(o.timeout)
      await withClient(o, (ctx) => runRolloutStatus(ctx, args, { timeout: o.timeout, watch: o.watch, revision: o.revision }))
    })
  rollout
    .command('history')
    .description("list a deployment's revisions, or show one revision's pod template")
    .argument('<TYPE...>', 'deployment/NAME')
    .option('-n, --namespace <NS>', 'the namespace')
    .option('--revision <N>', 'show the pod template of this revision')
    .action(async (args: string[], _opts: unknown, command: Command) => {
      const o = optionsOf(command)
      rolloutTarget(args, 'history')
      revisionOf(o.revision, '--revision')
      await withClient(o, (ctx) => runRolloutHistory(ctx, args, { revision: o.revision }))
    })
  rollout
    .command('undo')
    .description("roll a deployment back to its previous revision's pod template, or to a given one")
    .argument('<TYPE...>', 'deployment/NAME')
    .option('-n, --namespace <NS>', 'the namespace')
    .option('--to-revision <N>', 'the revision to go back to (default: the previous one)')
    .action(async (args: string[], _opts: unknown, command: Command) => {
      const o = optionsOf(command)
      rolloutTarget(args, 'undo')
      revisionOf(o.toRevision, '--to-revision')
      await withClient(o, (ctx) => runRolloutUndo(ctx, args, { toRevision: o.toRevision }))
    })
}

function registerNodeCommands(program: Command): void {
  for (const [verb, unschedulable] of [['cordon', true], ['uncordon', false]] as const) {
    program
      .command(verb)
      .description(unschedulable ? 'mark nodes unschedulable: new pods are not placed there' : 'mark nodes schedulable again')
      .argument('<NODE...>', 'NAME or node/NAME')
      .action(async (nodes: string[], _opts: unknown, command: Command) => {
        nodes.forEach(nodeNameOf)
        await withClient(optionsOf(command), (ctx) => runCordon(ctx, nodes, unschedulable))
      })
  }
  program
    .command('drain')
    .description('cordon a node, then evict its pods through the eviction API and wait until they are gone')
    .argument('<NODE>', 'NAME or node/NAME')
    .option('--ignore-daemonsets', 'leave DaemonSet pods in place instead of refusing to drain')
    .option('--delete-emptydir-data', 'evict pods with emptyDir volumes too (their data is lost)')
    .option('--force', 'evict pods that no controller will replace too')
    .option('--grace-period <SECONDS>', "seconds each pod gets to stop (-1: the pod's own)")
    .option('--timeout <DURATION>', 'give up after this long, e.g. 2m (0: never)')
    .action(async (node: string, _opts: unknown, command: Command) => {
      const o = optionsOf(command)
      nodeNameOf(node)
      gracePeriodOf(o.gracePeriod)
      timeoutMsOf(o.timeout)
      await withClient(o, (ctx) =>
        runDrain(ctx, node, { ignoreDaemonSets: o.ignoreDaemonsets, deleteEmptyDirData: o.deleteEmptydirData, force: o.force, gracePeriod: o.gracePeriod, timeout: o.timeout }),
      )
    })
}
