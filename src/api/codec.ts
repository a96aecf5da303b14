// Manifests in and out: multi-document YAML or JSON in (as kubectl reads `-f`), kubectl-like YAML out.

import { parseAllDocuments, stringify } from 'yaml'
import { ManifestParseError } from './errors.js'
import type { KubeObject } from './types.js'

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * Parses a manifest file: one or more YAML documents, or JSON. Empty documents are skipped, and a
 * `List` (any `*List` kind with `items`) is expanded into its items. Throws ManifestParseError
 * naming the source, the document (from 0) and the line.
 */
export function parseManifests(text: string, source = '<input>'): KubeObject[] {
  const trimmed = text.trimStart()
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return fromDocuments([JSON.parse(text)], source)
    } catch (err) {
      if (err instanceof ManifestParseError) throw err
      // Not strict JSON: YAML reads JSON-like text too, and reports a line when it fails.
    }
  }
  const values: unknown[] = []
  const docs = parseAllDocuments(text, { merge: true, prettyErrors: true })
  const list = Array.isArray(docs) ? docs : [docs]
  list.forEach((doc, i) => {
    const problem = doc.errors[0]
    if (problem) throw new ManifestParseError(source, i, problem.linePos?.[0]?.line, problem.message.split('\n')[0], { cause: problem })
    try {
      values.push(doc.toJS({ maxAliasCount: 100 }))
    } catch (err) {
      throw new ManifestParseError(source, i, undefined, err instanceof Error ? err.message : String(err), { cause: err })
    }
  })
  return fromDocuments(values, source, list.map((d) => (d.contents ? lineOf(text, d.contents.range?.[0]) : undefined)))
}

function lineOf(text: string, offset: number | undefined): number | undefined {
  if (offset === undefined) return undefined
  let line = 1
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++
  return line
}

function fromDocuments(values: unknown[], source: string, lines: (number | undefined)[] = []): KubeObject[] {
  const out: KubeObject[] = []
  values.forEach((value, i) => {
    if (value === null || value === undefined) return
    if (Array.isArray(value)) {
      // A JSON array of objects, as some tools write.
      value.forEach((item) => out.push(...fromDocuments([item], source)))
      return
    }
    if (!isObject(value)) throw new ManifestParseError(source, i, lines[i], `expected an object with apiVersion and kind, found ${typeof value === 'string' ? 'a string' : typeof value}`)
    if (Object.keys(value).length === 0) return
    if (typeof value.kind === 'string' && value.kind.endsWith('List') && Array.isArray(value.items)) {
      value.items.forEach((item, j) => {
        if (!isObject(item)) throw new ManifestParseError(source, i, lines[i], `items[${j}] of the ${value.kind} is not an object`)
        out.push(item as KubeObject)
      })
      return
    }
    out.push(value as KubeObject)
  })
  return out
}

/** YAML as kubectl writes it: 2-space indent, list items flush with their key, no line folding. */
export function toYaml(obj: unknown): string {
  return stringify(obj, { indent: 2, indentSeq: false, lineWidth: 0, minContentWidth: 0, aliasDuplicateObjects: false })
}

/** Several objects as one multi-document YAML stream. */
export function toYamlDocuments(objs: readonly unknown[]): string {
  return objs.map(toYaml).join('---\n')
}
