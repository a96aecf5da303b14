// A cluster CIDR of this test process's own, for the hubs it starts. An agent on the machine's
// Docker makes its node's pod network from the first /24 of the cluster CIDR; two test files
// running at once with the default 10.42.0.0/16 asked Docker for the same subnet, and the later
// one's pods ran on Docker's default bridge (its agent warns and carries on), so that test no
// longer tested the pod network. Each process claims one of 10.100.0.0/16 ... 10.199.0.0/16 with a
// file holding its pid in the temp dir; a claim whose process is gone is taken over.

import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const FIRST_OCTET = 100
const CHOICES = 100

let claimed: string | undefined

/** This process's cluster CIDR: the same for every hub it starts (a restarted hub keeps its range). */
export function testClusterCidr(): string {
  if (claimed) return claimed
  for (let i = 0; i < CHOICES; i++) {
    const octet = FIRST_OCTET + ((process.pid + i) % CHOICES)
    const file = join(tmpdir(), `bramble-test-cluster-cidr-${octet}`)
    if (claim(file)) {
      process.once('exit', () => rmSync(file, { force: true }))
      claimed = `10.${octet}.0.0/16`
      return claimed
    }
  }
  throw new Error(`every test cluster CIDR 10.${FIRST_OCTET}-${FIRST_OCTET + CHOICES - 1}.0.0/16 is claimed by a live process (files ${join(tmpdir(), 'bramble-test-cluster-cidr-*')})`)
}

function claim(file: string): boolean {
  if (create(file)) return true
  let owner: string
  try {
    owner = readFileSync(file, 'utf8')
  } catch {
    return create(file) // its owner just let it go
  }
  // Empty: its owner made it and has not written its pid yet.
  if (owner === '' || alive(Number(owner))) return false
  rmSync(file, { force: true })
  return create(file)
}

function create(file: string): boolean {
  try {
    writeFileSync(file, String(process.pid), { flag: 'wx' })
    return true
  } catch {
    return false
  }
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}
