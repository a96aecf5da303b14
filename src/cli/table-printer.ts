// Prints the meta.k8s.io/v1 Table the hub returns for `get`: upper-case headers, columns aligned
// with three spaces between them as kubectl's tabwriter does, wide-only columns with `-o wide`.

export interface TableColumnDefinition {
  name: string
  type?: string
  format?: string
  priority?: number
}

export interface TableRow {
  cells: unknown[]
  object?: { metadata?: { name?: string; namespace?: string } }
}

export interface Table {
  kind: 'Table'
  apiVersion: string
  metadata?: { resourceVersion?: string }
  columnDefinitions: TableColumnDefinition[]
  rows: TableRow[]
}

export interface TableOptions {
  /** Show priority > 0 columns (`-o wide`). */
  wide?: boolean
  /** Lead with a NAMESPACE column (`-A`), read from each row's object metadata. */
  withNamespace?: boolean
  /** Prefix names with `deployment.apps/` (when several types are listed at once). */
  namePrefix?: string
}

const GAP = '   '

export function isTable(value: unknown): value is Table {
  return typeof value === 'object' && value !== null && (value as Table).kind === 'Table' && Array.isArray((value as Table).columnDefinitions)
}

/** The header and row cells to print, as strings, in column order. */
export function tableCells(table: Table, options: TableOptions = {}): { header: string[]; rows: string[][] } {
  const shown = table.columnDefinitions.map((c, i) => ({ c, i })).filter(({ c }) => options.wide || !c.priority)
  const nameAt = shown.findIndex(({ c }) => c.format === 'name' || c.name.toLowerCase() === 'name')
  const header = shown.map(({ c }) => c.name.toUpperCase())
  const rows = (table.rows ?? []).map((row) => {
    const cells = shown.map(({ i }) => cellText(row.cells?.[i]))
    if (options.namePrefix && nameAt >= 0) cells[nameAt] = `${options.namePrefix}/${cells[nameAt]}`
    if (options.withNamespace) cells.unshift(row.object?.metadata?.namespace ?? '')
    return cells
  })
  if (options.withNamespace) header.unshift('NAMESPACE')
  return { header, rows }
}

/** A cell as kubectl prints it: `<none>` for a missing value, lists joined by commas. */
export function cellText(value: unknown): string {
  if (value === null || value === undefined) return '<none>'
  if (Array.isArray(value)) return value.map(cellText).join(',')
  if (typeof value === 'object') return JSON.stringify(value)
  return String(value)
}

/** Column widths that fit every line given, never narrower than `min`. */
export function columnWidths(lines: readonly string[][], min: readonly number[] = []): number[] {
  const widths = [...min]
  for (const line of lines) line.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)))
  return widths
}

/** One aligned line; the last column is not padded, so no line ends in spaces. */
export function alignLine(cells: readonly string[], widths: readonly number[]): string {
  return cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? cell.length))).join(GAP)
}

/** The whole table as text, header first, each line ending in a newline; empty when there are no rows. */
export function formatTable(table: Table, options: TableOptions = {}): string {
  const { header, rows } = tableCells(table, options)
  if (rows.length === 0) return ''
  const widths = columnWidths([header, ...rows])
  return [header, ...rows].map((cells) => alignLine(cells, widths) + '\n').join('')
}
