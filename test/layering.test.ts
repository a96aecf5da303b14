// DESIGN.md's layering, checked by reading every import in src/: who may depend on whom.

import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const SRC = join(ROOT, 'src')

type Area = 'api' | 'sched' | 'mesh' | 'hub' | 'agent' | 'cli' | 'lib' | 'main'

/** The areas each area may import from (besides itself). main.ts may import anything. */
const ALLOWED: Record<Exclude<Area, 'main'>, Area[]> = {
  api: [],
  lib: [],
  sched: ['api', 'lib'],
  mesh: ['api', 'lib'],
  hub: ['api', 'sched', 'mesh', 'lib'],
  agent: ['api', 'mesh', 'lib'],
  cli: ['api', 'lib'],
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sourceFiles(path)
    return /\.(ts|mts|js|mjs)$/.test(name) && !name.endsWith('.d.ts') ? [path] : []
  })
}

/** Every module specifier: static imports, `export ... from`, side-effect imports and dynamic import(). */
export function importsOf(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1')
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[\w*{}\s,$]*?\s+from\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ]
  return patterns.flatMap((re) => [...code.matchAll(re)].map((m) => m[1]))
}

function areaOf(file: string): Area | undefined {
  const rel = relative(SRC, file)
  if (rel.startsWith('..')) return undefined
  if (rel === 'main.ts') return 'main'
  const top = rel.split(sep)[0]
  return (['api', 'sched', 'mesh', 'hub', 'agent', 'cli', 'lib'] as const).find((a) => a === top)
}

t.test('the import reader sees every form of import', async (t) => {
  const sample = [
    "import { a } from './x.js'",
    "import type { B } from '../api/types.js'",
    "export { c } from './c.js'",
    "export * from './d.js'",
    "import './side-effect.js'",
    "const m = await import('../hub/hub.js')",
    "import {\n  e,\n  f,\n} from './multi.js'",
    "// import { no } from './commented.js'",
  ].join('\n')
  t.same(importsOf(sample).sort(), ['../api/types.js', '../hub/hub.js', './c.js', './d.js', './multi.js', './side-effect.js', './x.js'].sort())
})

t.test('every area imports only what DESIGN.md allows', async (t) => {
  const files = sourceFiles(SRC)
  t.ok(files.length > 0, 'found sources')
  const violations: string[] = []
  for (const file of files) {
    const from = areaOf(file)
    if (!from || from === 'main') continue
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) continue // packages and node: builtins
      const target = resolve(dirname(file), spec)
      const to = areaOf(target)
      if (to === undefined) {
        violations.push(`${relative(ROOT, file)} imports ${spec}, outside src/`)
      } else if (to !== from && !ALLOWED[from].includes(to)) {
        violations.push(`${relative(ROOT, file)} (${from}) imports ${spec} (${to})`)
      }
    }
  }
  t.same(violations, [], 'no layering violations')
})

t.test('only src/main.ts imports src/main.ts (nothing does)', async (t) => {
  const offenders = sourceFiles(SRC).filter((file) => importsOf(readFileSync(file, 'utf8')).some((spec) => spec.startsWith('.') && resolve(dirname(file), spec).replace(/\.js$/, '.ts') === join(SRC, 'main.ts')))
  t.same(offenders, [])
})
