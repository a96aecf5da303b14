#!/usr/bin/env node
// Builds, then runs the whole suite with tap, and ends with the plain summary line
// `N passed, N failed` (CI reads it), also when the build fails (then it is the one failure).
// Exits non-zero when anything failed or tap itself failed.
import { spawn, spawnSync } from 'node:child_process'

const build = spawnSync('npm', ['run', 'build'], { stdio: 'inherit' })
if (build.status !== 0) {
  console.log('0 passed, 1 failed (the build failed: npm run build)')
  process.exit(1)
}

const child = spawn('npx', ['tap', ...process.argv.slice(2)], { stdio: ['ignore', 'pipe', 'inherit'] })
let tail = ''
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk)
  tail = (tail + chunk.toString()).slice(-4096)
})
child.on('close', (code) => {
  const m = /# \{ total: (\d+)(?:, pass: (\d+))?(?:, fail: (\d+))?(?:, skip: (\d+))?(?:, todo: (\d+))? \}/.exec(tail)
  const passed = Number(m?.[2] ?? 0)
  const failed = Number(m?.[3] ?? 0)
  const skipped = Number(m?.[4] ?? 0)
  // A crash before the summary still counts as a failure.
  const reportedFailed = m ? failed : Math.max(1, failed)
  console.log(`${passed} passed, ${reportedFailed} failed${skipped ? `, ${skipped} skipped` : ''}`)
  process.exit(code === 0 && reportedFailed === 0 ? 0 : 1)
})
