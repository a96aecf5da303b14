// Where Bramble keeps its state when no --data-dir is given.

import { homedir } from 'node:os'
import { join } from 'node:path'

/** `/var/lib/bramble` for root (a system install), `~/.bramble` for anyone else. */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.() ?? -1): string {
  if (env.BRAMBLE_DATA_DIR) return env.BRAMBLE_DATA_DIR
  return uid === 0 ? '/var/lib/bramble' : join(homedir(), '.bramble')
}
