// The client commands of the `bramble` binary: get, describe, apply, delete, scale. Each speaks to
// the hub over HTTPS only, as kubectl does; errors are thrown as the typed errors of errors.ts for
// main.ts to print and map to exit codes.

import type { Command } from 'commander'
import { runApply } from './apply-command.js'
import { withClient, type GlobalClientOptions } from './client-context.js'
import { runDelete } from './delete-command.js'
import { runDescribe } from './describe-command.js'
import { runLogs } from './logs-command.js'
import { outputFormatOf, runGet, type GetOptions } from './get-command.js'
import { parseResourceArgs } from './resource-paths.js'
import { replicasOf, runScale } from './scale-command.js'

export { exitCodeOf } from './errors.js'

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
    .action(async (args: string[], _opts: unknown, command: Command) => {
      const o = optionsOf(command)
      await withClient(o, (ctx) => runDelete(ctx, args, { filename: o.filename, selector: o.selector, all: o.all, ignoreNotFound: o.ignoreNotFound }))
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
}
