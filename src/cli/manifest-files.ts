// Reading `-f FILE|DIR|-` as kubectl does: a directory contributes its *.yaml, *.yml and *.json
// files (not recursively), `-` reads stdin.

import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { parseManifests } from '../api/codec.js'
import type { KubeObject } from '../api/types.js'
import { UsageError } from './errors.js'

export interface ManifestSource {
  /** The file name, or `-` for stdin. */
  source: string
  text: string
}

const MANIFEST_FILE = /\.(ya?ml|json)$/i

/** The files named by `-f` flags, directories expanded, in the order given (a directory's files sorted). */
export async function readManifestSources(paths: readonly string[], stdin: () => Promise<string> = readStdin): Promise<ManifestSource[]> {
  if (paths.length === 0) throw new UsageError('name the manifests with -f FILE, -f DIR or -f - for stdin')
  const out: ManifestSource[] = []
  for (const path of paths) {
    if (path === '-') {
      out.push({ source: '-', text: await stdin() })
      continue
    }
    let isDir: boolean
    try {
      isDir = statSync(path).isDirectory()
    } catch {
      throw new UsageError(`the path "${path}" does not exist`)
    }
    if (!isDir) {
      out.push({ source: path, text: readFileSync(path, 'utf8') })
      continue
    }
    const files = readdirSync(path)
      .filter((f) => MANIFEST_FILE.test(f))
      .sort()
      .map((f) => join(path, f))
      .filter((f) => statSync(f).isFile())
    if (files.length === 0) throw new UsageError(`the directory "${path}" holds no .yaml, .yml or .json files`)
    for (const f of files) out.push({ source: f, text: readFileSync(f, 'utf8') })
  }
  return out
}

export interface SourcedObject {
  source: string
  object: KubeObject
}

/** Every object of the sources; a source that does not parse is reported to `onError` and skipped. */
export function objectsOf(sources: readonly ManifestSource[], onError: (source: string, err: Error) => void): SourcedObject[] {
  const out: SourcedObject[] = []
  for (const s of sources) {
    try {
      for (const object of parseManifests(s.text, s.source)) out.push({ source: s.source, object })
    } catch (err) {
      onError(s.source, err instanceof Error ? err : new Error(String(err)))
    }
  }
  return out
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}
