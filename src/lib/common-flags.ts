// The flags more than one command takes: --data-dir, --log-level and --heartbeat-interval, each
// built for whichever config type holds it.

import { resolve as resolvePath } from 'node:path'
import { FlagReason, parseDurationMs } from './config-values.js'
import { defaultDataDir } from './data-dir.js'
import type { FlagSpec } from './flag-schema.js'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/** `--data-dir`, shared by every command that works on a data dir. */
export function dataDirFlag<C extends { dataDir: string }>(): FlagSpec<C, 'dataDir'> {
  return {
    flag: '--data-dir',
    valueName: 'DIR',
    description: 'where the hub keeps its CA, tokens, store and kubeconfig',
    env: 'BRAMBLE_DATA_DIR',
    parse: (raw) => {
      if (raw.trim() === '') throw new FlagReason('must name a directory, got ""')
      return resolvePath(raw) as C['dataDir']
    },
    defaultValue: (_, env) => resolvePath(defaultDataDir(env)) as C['dataDir'],
    defaultText: '/var/lib/bramble as root, else ~/.bramble',
  }
}

export function logLevelFlag<C extends { logLevel: LogLevel }>(): FlagSpec<C, 'logLevel'> {
  return {
    flag: '--log-level',
    valueName: 'LEVEL',
    description: `log level: ${LOG_LEVELS.join(', ')}`,
    env: 'BRAMBLE_LOG_LEVEL',
    parse: (raw) => {
      if (!(LOG_LEVELS as readonly string[]).includes(raw)) throw new FlagReason(`must be one of ${LOG_LEVELS.join(', ')}, got "${raw}"`)
      return raw as C['logLevel']
    },
    defaultValue: () => 'info' as C['logLevel'],
    defaultText: 'info',
  }
}

export function heartbeatFlag<C extends { heartbeatIntervalMs: number }>(): FlagSpec<C, 'heartbeatIntervalMs'> {
  return {
    flag: '--heartbeat-interval',
    valueName: 'DURATION',
    description: 'how often agents send a heartbeat (5s)',
    parse: (raw) => parseDurationMs(raw) as C['heartbeatIntervalMs'],
    defaultValue: () => 5000 as C['heartbeatIntervalMs'],
    defaultText: '5s',
  }
}
