// The node's devices of the classes Bramble advertises (src/api/devices.ts): character devices at
// the top of the device directory (/dev unless the agent is told otherwise), by class, in a stable
// order. Read with every node status (a stick plugged in shows up) and before a pod is given some.
// Read synchronously: /dev is devtmpfs, in memory, and a listing through the thread pool cost the
// agent's thread more than the listing itself, with every heartbeat.

import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { compareDeviceNames, deviceClassOf } from '../api/devices.js'

/** Device paths per class: `{ serial: ['/dev/ttyACM0', '/dev/ttyUSB0'] }`; classes with none are absent. */
export type HostDevices = Record<string, string[]>

export async function scanDevices(dir: string): Promise<HostDevices> {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw err
  }
  const found: HostDevices = {}
  // Only device-class names are sorted: /dev holds hundreds of others, and this runs every heartbeat.
  for (const name of names.filter((n) => deviceClassOf(n) !== undefined).sort(compareDeviceNames)) {
    const cls = deviceClassOf(name)!
    // A symlink to a device counts once, at the name it has here; a regular file is not a device.
    if (isCharacterDevice(join(dir, name))) (found[cls] ??= []).push(join(dir, name))
  }
  return found
}

function isCharacterDevice(path: string): boolean {
  try {
    return statSync(path).isCharacterDevice()
  } catch {
    return false
  }
}
