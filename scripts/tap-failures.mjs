// What failed in tap's output, read a line at a time, for the test runner to repeat at the end.

/** The most lines of one failure's diagnostic repeated at the end. */
const DIAGNOSTIC_LINES = 40
const LATE_SUBTEST = 'Error: cannot create subtest after parent test ends'

/** Reads tap's output a line at a time and keeps what failed. */
export class TapFailures {
  /** Subtest names by depth (four spaces per level), for the line being read. */
  path = []
  /** Failed tests: their path, and their diagnostic's lines once read. */
  found = []
  /** The failure whose diagnostic is being read, with its indent. */
  reading = undefined
  /** Set after a late subtest's error until its file name is read. */
  lateSubtest = false
  /** The files that made a subtest after their root test had ended. */
  lateSubtests = []

  /** A line of tap's standard output. */
  line(line) {
    if (this.reading) {
      const { failure, indent } = this.reading
      if (line.startsWith(`${indent}  `)) {
        if (failure.diagnostic.length < DIAGNOSTIC_LINES) failure.diagnostic.push(line.slice(indent.length + 2))
        if (line.trim() === '...') this.reading = undefined
        return
      }
      this.reading = undefined
    }
    const subtest = /^((?: {4})*)# Subtest: (.*)$/.exec(line)
    if (subtest) {
      const depth = subtest[1].length / 4
      this.path.length = depth
      this.path[depth] = subtest[2]
      return
    }
    const failed = /^((?: {4})*)not ok \d+ - (.*?)(?: # (?:time=|SKIP|TODO).*)?$/.exec(line)
    if (failed) {
      const depth = failed[1].length / 4
      const failure = { path: [...this.path.slice(0, depth), failed[2]], diagnostic: [] }
      this.found.push(failure)
      this.reading = { failure, indent: failed[1] }
    }
  }

  /** A line of tap's standard error: a late subtest's error names its file a few lines on. */
  lateSubtestLine(line) {
    if (line.startsWith(LATE_SUBTEST)) this.lateSubtest = true
    const file = this.lateSubtest && /^\s+fileName: (.*)$/.exec(line)
    if (file) {
      this.lateSubtests.push(file[1])
      this.lateSubtest = false
    }
  }

  /** The failures that are not only the parents of another failure, each with its diagnostic. */
  report() {
    const key = (path) => path.join('\u0000')
    const parents = new Set(this.found.flatMap((f) => f.path.slice(1).map((_, i) => key(f.path.slice(0, i + 1)))))
    const leaves = this.found.filter((f) => !parents.has(key(f.path)))
    const lines = leaves.flatMap((f) => [`failed: ${f.path.join(' > ')}`, ...f.diagnostic.map((l) => `  ${l}`)])
    return [...lines, ...this.lateSubtests.map((file) => `failed: ${file} made a subtest after its root test had ended (it did not run)`)]
  }
}
