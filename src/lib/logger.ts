// Structured logs for machines (pino). Components take a Logger through their constructor and
// bind `{component, key}` with child().

import { pino, type Logger as PinoLogger } from 'pino'

export type Logger = PinoLogger

export function createLogger(options: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  return pino({ level: options.level ?? 'info', base: undefined }, (options.destination ?? process.stderr) as any)
}

/** A logger that drops everything: for tests and for commands that must keep stderr clean. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
