// `bramble get`: tables the hub prints server-side (as kubectl asks for them), or the objects
// themselves as JSON, YAML or names; `-w` keeps printing as things change.

import { toYaml } from '../api/codec.js'
import type { KindInfo } from '../api/kinds.js'
import { apiVersionOf } from '../api/kinds.js'
import type { KubeObject } from '../api/types.js'
import { finishBatch, type ClientContext } from './client-context.js'
import { ServerError, UsageError } from './errors.js'
import { sortEventRows, sortEvents } from './event-order.js'
import { parseResourceArgs, qualifiedName, resourcePath, type ResourceTarget } from './resource-paths.js'
import { alignLine, columnWidths, formatTable, isTable, tableCells, type Table, type TableOptions } from './table-printer.js'

export const TABLE_ACCEPT = 'application/json;as=Table;v=v1;g=meta.k8s.io, application/json'

export type OutputFormat = 'table' | 'wide' | 'json' | 'yaml' | 'name'

export interface GetOptions {
  output?: string
  allNamespaces?: boolean
  selector?: string
  fieldSelector?: string
  watch?: boolean
}

export function outputFormatOf(output: string | undefined): OutputFormat {
  if (output === undefined || output === '') return 'table'
  if (output === 'wide' || output === 'json' || output === 'yaml' || output === 'name') return output
  throw new UsageError(`unsupported output format "${output}"; use one of json, yaml, wide, name`)
}

export async function runGet(ctx: ClientContext, args: string[], options: GetOptions): Promise<void> {
  const format = outputFormatOf(options.output)
  const targets = parseResourceArgs(args)
  if (options.allNamespaces && targets.some((t) => t.names.length > 0)) throw new UsageError('a resource cannot be retrieved by name across all namespaces; drop -A or the names')
  if (options.watch && targets.length > 1) throw new UsageError('watch one resource type at a time')
  const namespaceOf = (info: KindInfo) => (info.namespaced && !options.allNamespaces ? ctx.namespace : undefined)
  const query = { labelSelector: options.selector || undefined, fieldSelector: options.fieldSelector || undefined }
  const failures: ServerError[] = []

  if (format === 'table' || format === 'wide') {
    let printed = 0
    const tables: { target: ResourceTarget; table: Table }[] = []
    for (const target of targets) {
      const table = await fetchTable(ctx, target, namespaceOf(target.info), query, failures)
      tables.push({ target, table })
      const text = formatTable(table, tableOptions(target.info, format, options, targets.length > 1))
      if (text) ctx.io.out((printed++ > 0 ? '\n' : '') + text)
    }
    if (printed === 0 && failures.length === 0 && !options.watch) ctx.io.err(noResources(targets, ctx.namespace, options))
    if (options.watch) {
      const { target, table } = tables[0]
      await watchTable(ctx, target, namespaceOf(target.info), query, table, tableOptions(target.info, format, options, false))
    }
  } else {
    const objects: KubeObject[] = []
    for (const target of targets) objects.push(...(await fetchObjects(ctx, target, namespaceOf(target.info), query, failures)))
    const single = targets.length === 1 && targets[0].names.length === 1 && objects.length === 1
    if (objects.length > 0 || format !== 'name') printObjects(ctx, format, single ? objects[0] : listOf(objects))
    if (objects.length === 0 && failures.length === 0 && format === 'name' && !options.watch) ctx.io.err(noResources(targets, ctx.namespace, options))
    if (options.watch) {
      const target = targets[0]
      const path = resourcePath(target.info, namespaceOf(target.info))
      const resourceVersion = objects.reduce((rv, o) => (Number(o.metadata.resourceVersion) > Number(rv) ? String(o.metadata.resourceVersion) : rv), '0')
      for await (const event of ctx.client.watch(path, { query: { ...watchQuery(target, query), resourceVersion } })) {
        if (event.type === 'ERROR') throw new ServerError(event.object?.message ?? 'the watch ended with an error', event.object?.code ?? 500, event.object?.reason ?? '')
        if (event.type === 'BOOKMARK') continue
        printObjects(ctx, format, event.object as KubeObject)
      }
    }
  }
  finishBatch(ctx.io, failures, targets.reduce((n, t) => n + Math.max(1, t.names.length), 0), 'found')
}

function tableOptions(info: KindInfo, format: OutputFormat, options: GetOptions, several: boolean): TableOptions {
  return { wide: format === 'wide', withNamespace: Boolean(options.allNamespaces && info.namespaced), namePrefix: several ? qualifiedName(info) : undefined }
}

function noResources(targets: ResourceTarget[], namespace: string, options: GetOptions): string {
  const namespaced = targets.some((t) => t.info.namespaced)
  return namespaced && !options.allNamespaces ? `No resources found in ${namespace} namespace.\n` : 'No resources found\n'
}

type Query = Record<string, string | undefined>

async function fetchTable(ctx: ClientContext, target: ResourceTarget, namespace: string | undefined, query: Query, failures: ServerError[]): Promise<Table> {
  const events = target.info.kind === 'Event'
  const fetchOne = async (name?: string): Promise<Table | undefined> => {
    try {
      // Events are sorted by when they were last seen, which needs their whole objects in the rows.
      const listQuery = events ? { ...query, includeObject: 'Object' } : query
      const res = await ctx.client.request('GET', resourcePath(target.info, namespace, name), { accept: TABLE_ACCEPT, query: name === undefined ? listQuery : {} })
      const table: Table = isTable(res.json) ? res.json : tableFromObjects(name === undefined ? (res.json?.items ?? []) : [res.json])
      return events ? { ...table, rows: sortEventRows(table.rows) } : table
    } catch (err) {
      if (!(err instanceof ServerError) || target.names.length === 0) throw err
      failures.push(err)
      return undefined
    }
  }
  if (target.names.length === 0) return (await fetchOne())!
  const parts = (await Promise.all(target.names.map((n) => fetchOne(n)))).filter((t): t is Table => t !== undefined)
  if (parts.length === 0) return { kind: 'Table', apiVersion: 'meta.k8s.io/v1', columnDefinitions: [], rows: [] }
  return { ...parts[0], rows: parts.flatMap((p) => p.rows) }
}

/** Without a Table from the server, kubectl prints NAME and AGE only; so does this. */
export function tableFromObjects(objects: KubeObject[], now = Date.now()): Table {
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    columnDefinitions: [
      { name: 'Name', type: 'string', format: 'name', priority: 0 },
      { name: 'Age', type: 'string', format: '', priority: 0 },
    ],
    rows: objects.map((o) => ({ cells: [o.metadata?.name, ageOf(o.metadata?.creationTimestamp, now)], object: o })),
  }
}

function ageOf(timestamp: string | undefined, now: number): string {
  const t = timestamp ? Date.parse(timestamp) : NaN
  if (Number.isNaN(t)) return '<unknown>'
  const s = Math.max(0, Math.floor((now - t) / 1000))
  if (s < 120) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m`
  if (s < 172800) return `${Math.floor(s / 3600)}h`
  return `${Math.floor(s / 86400)}d`
}

async function fetchObjects(ctx: ClientContext, target: ResourceTarget, namespace: string | undefined, query: Query, failures: ServerError[]): Promise<KubeObject[]> {
  const withType = (o: KubeObject): KubeObject => ({ ...o, apiVersion: o.apiVersion ?? apiVersionOf(target.info), kind: o.kind ?? target.info.kind })
  if (target.names.length === 0) {
    const res = await ctx.client.request('GET', resourcePath(target.info, namespace), { query })
    const items = ((res.json?.items ?? []) as KubeObject[]).map(withType)
    return target.info.kind === 'Event' ? sortEvents(items) : items
  }
  const out: KubeObject[] = []
  for (const name of target.names) {
    try {
      out.push(withType((await ctx.client.request('GET', resourcePath(target.info, namespace, name))).json))
    } catch (err) {
      if (!(err instanceof ServerError)) throw err
      failures.push(err)
    }
  }
  return out
}

function listOf(items: KubeObject[]): unknown {
  return { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' }, items }
}

function printObjects(ctx: ClientContext, format: OutputFormat, value: any): void {
  if (format === 'json') ctx.io.out(JSON.stringify(value, null, 4) + '\n')
  else if (format === 'yaml') ctx.io.out(toYaml(value))
  else {
    const items: KubeObject[] = value?.kind === 'List' ? value.items : [value]
    for (const o of items) ctx.io.out(`${nameOf(o)}\n`)
  }
}

/** `deployment.apps/web`, as `-o name` prints it. */
export function nameOf(o: KubeObject): string {
  const [group] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['']
  return `${o.kind.toLowerCase()}${group ? `.${group}` : ''}/${o.metadata.name}`
}

function watchQuery(target: ResourceTarget, query: Query): Query {
  if (target.names.length === 0) return query
  return { ...query, fieldSelector: [query.fieldSelector, `metadata.name=${target.names[0]}`].filter(Boolean).join(',') }
}

async function watchTable(ctx: ClientContext, target: ResourceTarget, namespace: string | undefined, query: Query, initial: Table, options: TableOptions): Promise<void> {
  const first = tableCells(initial, options)
  let widths = columnWidths([first.header, ...first.rows])
  let headerShown = first.rows.length > 0
  let columns = initial.columnDefinitions
  const path = resourcePath(target.info, namespace)
  const resourceVersion = initial.metadata?.resourceVersion
  for await (const event of ctx.client.watch(path, { accept: TABLE_ACCEPT, query: { ...watchQuery(target, query), resourceVersion } })) {
    if (event.type === 'BOOKMARK') continue
    if (event.type === 'ERROR') throw new ServerError(event.object?.message ?? 'the watch ended with an error', event.object?.code ?? 500, event.object?.reason ?? '')
    let table = isTable(event.object) ? event.object : tableFromObjects([event.object as KubeObject])
    // Kubernetes sends the column definitions with the first Table event only.
    if (table.columnDefinitions.length === 0) table = { ...table, columnDefinitions: columns }
    else columns = table.columnDefinitions
    const { header, rows } = tableCells(table, options)
    widths = columnWidths([header, ...rows], widths)
    if (!headerShown) {
      ctx.io.out(alignLine(header, widths) + '\n')
      headerShown = true
    }
    for (const row of rows) ctx.io.out(alignLine(row, widths) + '\n')
  }
}
