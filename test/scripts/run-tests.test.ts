// The test runner behind `npm test` and CI (scripts/run-tests.mjs), run on small test files through
// the real tap: its last line is `N passed, N failed`, it exits non-zero on any failure, it repeats
// each failure's path and diagnostic before that line, and a subtest made after its file's root test
// had ended (which tap drops while counting the file as passed) counts as a failure.

import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'
import { REPO_ROOT } from '../helpers/hub-process.js'

const TAP = pathToFileURL(createRequire(join(REPO_ROOT, 'package.json')).resolve('tap')).href
const scratch = mkdtempSync(join(tmpdir(), 'bramble-run-tests-'))
t.teardown(() => rmSync(scratch, { recursive: true, force: true }))

/** Runs the runner, without its build, on one test file of `body`. */
function runTests(name: string, body: string) {
  const file = join(scratch, `${name}.test.mjs`)
  writeFileSync(file, `import t from ${JSON.stringify(TAP)}\n${body}\n`)
  // Without this run's tap settings, which would make the inner tap a child reporting to this one.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('TAP') && !key.startsWith('_TAPJS')))
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'run-tests.mjs'), '--no-build', file], { cwd: REPO_ROOT, env, encoding: 'utf8', timeout: 120_000 })
  const lines = r.stdout.trimEnd().split('\n')
  return { code: r.status, last: lines.at(-1), stdout: r.stdout, file }
}

t.test('all passing: exit 0 and the summary line last', async (t) => {
  const r = runTests('passing', "t.test('a', async (t) => { t.pass('one'); t.pass('two') })")
  t.equal(r.code, 0, `exits 0${r.code ? `:\n${r.stdout}` : ''}`)
  t.equal(r.last, '2 passed, 0 failed')
  t.notMatch(r.stdout, /# what failed/)
})

t.test('the count is tap\'s own, not one printed by a test', async (t) => {
  const r = runTests('printing', "t.test('a', async (t) => { console.log('# { total: 7, pass: 3, fail: 4 }'); t.pass('one') })")
  t.equal(r.code, 0, `exits 0${r.code ? `:\n${r.stdout}` : ''}`)
  t.equal(r.last, '1 passed, 0 failed')
})

t.test('a failed assertion deep in subtests: exit 1, and its path and diagnostic are repeated before the summary', async (t) => {
  const r = runTests('failing', [
    "t.test('outer', async (t) => {",
    "  t.pass('fine')",
    "  await t.test('inner', async (t) => { t.equal(1, 2, 'one is two') })",
    '})',
  ].join('\n'))
  t.equal(r.code, 1)
  t.equal(r.last, '1 passed, 1 failed')
  const report = r.stdout.slice(r.stdout.lastIndexOf('# what failed'))
  t.match(report, new RegExp(`^failed: \\S*failing\\.test\\.mjs > outer > inner > one is two$`, 'm'), 'the whole path, once (not its parents)')
  t.equal(report.match(/^failed:/gm)?.length, 1)
  t.match(report, /^ {2}---$[\s\S]*lineNumber: 4[\s\S]*^ {2}\.\.\.$/m, 'with tap\'s diagnostic, naming the line')
})

t.test('a subtest made after the root test ended counts as a failure, naming the file', async (t) => {
  // With a teardown on the root, tap ends the root when it sits idle for two timer ticks.
  const r = runTests('late', [
    't.teardown(() => {})',
    "await t.test('first', async (t) => { t.pass('ran') })",
    'await new Promise((resolve) => setTimeout(resolve, 50))',
    "await t.test('second', async (t) => { t.pass('never runs') })",
  ].join('\n'))
  t.equal(r.code, 1)
  t.equal(r.last, '1 passed, 1 failed', 'tap alone would say the file passed')
  t.match(r.stdout, new RegExp(`^failed: ${r.file.replace(/[.]/g, '\\.')} made a subtest after its root test had ended`, 'm'))
})
