// `bramble backup FILE`: asks the hub for a consistent copy of its store and keys (admin token)
// and writes it to FILE, owner-only, whole or not at all.

import { createWriteStream, existsSync, renameSync, rmSync, statSync } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import type { ClientContext } from './client-context.js'
import { UsageError } from './errors.js'

export async function runBackup(ctx: ClientContext, file: string): Promise<void> {
  if (!file) throw new UsageError('backup takes the file to write, e.g. bramble backup hub-backup.tar.gz')
  if (existsSync(file)) throw new UsageError(`${file} exists already; name a new file`)
  const res = await ctx.client.stream('/bramble/v1/backup', { accept: 'application/gzip' })
  const partial = `${file}.partial`
  try {
    await pipeline(res, createWriteStream(partial, { mode: 0o600, flags: 'wx' }))
    renameSync(partial, file)
  } catch (err) {
    rmSync(partial, { force: true })
    throw err
  }
  const mb = (statSync(file).size / 1e6).toFixed(1)
  ctx.io.err(`backup of revision ${res.headers['x-bramble-revision']} written to ${file} (${mb} MB). It holds the cluster CA and secrets keys: keep it as safe as the hub.\n`)
}
