// A progress bar for long client work (rollouts, drains), drawn on stderr only when stderr is a
// terminal: redrawn in place with a carriage return, cleared before any other line is printed, so
// the command's own lines (kubectl's messages) read the same with or without it. Off a terminal
// (scripts, CI logs) it draws nothing.

import type { Output } from './client-context.js'

const WIDTH = 24

/** `[#########---------------]  3/8 label`: pure, for any terminal width above ~50 columns. */
export function renderBar(done: number, total: number, label: string, width = WIDTH): string {
  const whole = Math.max(0, total)
  const part = Math.min(Math.max(0, done), whole)
  const filled = whole === 0 ? width : Math.round((part / whole) * width)
  const count = `${String(part).padStart(String(whole).length)}/${whole}`
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${count} ${label}`
}

export class ProgressBar {
  private shown = ''

  constructor(private readonly io: Output) {}

  /** Draws (or redraws) the bar; a no-op off a terminal. */
  update(done: number, total: number, label: string): void {
    if (!this.io.errIsTTY) return
    const line = renderBar(done, total, label)
    if (line === this.shown) return
    this.io.err(`\r\x1b[2K${line}`)
    this.shown = line
  }

  /** Prints a line on stdout with the bar out of the way, then draws it again below. */
  out(text: string): void {
    this.around(() => this.io.out(text))
  }

  /** The same on stderr. */
  err(text: string): void {
    this.around(() => this.io.err(text))
  }

  private around(print: () => void): void {
    const bar = this.shown
    this.clear()
    print()
    if (bar) {
      this.io.err(bar)
      this.shown = bar
    }
  }

  /** Removes the bar, leaving the cursor at the start of an empty line. */
  clear(): void {
    if (!this.shown) return
    this.io.err('\r\x1b[2K')
    this.shown = ''
  }
}
