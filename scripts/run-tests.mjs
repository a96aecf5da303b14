#!/usr/bin/env node
// Runs the whole suite with tap and ends with the plain summary line `N passed, N failed`
// (CI reads it). Exits non-zero when anything failed or tap itself failed.
import { spawn } from 'node:child_process'

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
