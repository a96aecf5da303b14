#!/usr/bin/env node
// Builds (unless the first argument is --no-build), then runs the whole suite with tap (or the
// files and tap options given), and ends with the plain summary line `N passed, N failed` (CI
// reads it), also when the build fails (then it is the one failure). Before that line it repeats
// each failure (the test's path and tap's diagnostic), since a CI log is often read from its end.
// A subtest that a test file made after its root test had ended (tap reports it as an error but
// drops the subtest and still counts the file as passed) is counted as a failure. Exits non-zero
// when anything failed or tap itself failed.
import { spawn, spawnSync } from 'node:child_process'
import { TapFailures } from './tap-failures.mjs'

const args = process.argv.slice(2)
if (args[0] === '--no-build') args.shift()
else if (spawnSync('npm', ['run', 'build'], { stdio: 'inherit' }).status !== 0) {
  console.log('0 passed, 1 failed (the build failed: npm run build)')
  process.exit(1)
}

const failures = new TapFailures()
const child = spawn('npx', ['tap', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
let tail = ''
/** Passes `from` on to `to`, handing each whole line to `onLine`. */
function readLines(from, to, onLine) {
  let partial = ''
  from.on('data', (chunk) => {
    to.write(chunk)
    const lines = (partial + chunk.toString()).split('\n')
    partial = lines.pop()
    for (const line of lines) onLine(line)
  })
  from.on('end', () => partial && onLine(partial))
}
child.stdout.on('data', (chunk) => (tail = (tail + chunk.toString()).slice(-4096)))
readLines(child.stdout, process.stdout, (line) => failures.line(line))
// tap writes a late subtest's error to standard error.
readLines(child.stderr, process.stderr, (line) => failures.lateSubtestLine(line))
child.on('close', (code) => {
  // tap's own count is the last such line at the start of a line (a test's output may hold others).
  const m = [...tail.matchAll(/^# \{ total: (\d+)(?:, pass: (\d+))?(?:, fail: (\d+))?(?:, skip: (\d+))?(?:, todo: (\d+))? \}$/gm)].at(-1)
  const passed = Number(m?.[2] ?? 0)
  const failed = Number(m?.[3] ?? 0) + failures.lateSubtests.length
  const skipped = Number(m?.[4] ?? 0)
  const report = failures.report()
  if (report.length) console.log(['', '# what failed', ...report].join('\n'))
  // A crash before the summary still counts as a failure.
  const reportedFailed = m ? failed : Math.max(1, failed)
  console.log(`${passed} passed, ${reportedFailed} failed${skipped ? `, ${skipped} skipped` : ''}`)
  process.exit(code === 0 && reportedFailed === 0 ? 0 : 1)
})
