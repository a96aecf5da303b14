// Each running pod's CPU and memory, read from its containers' cgroup files with every heartbeat:
// a few small reads per container instead of `docker stats`, which streams and costs far more on
// a Pi. cgroup v2 (Raspberry Pi OS bookworm, Ubuntu 22.04 on) gives cpu.stat's usage_usec and
// memory.current; cgroup v1 (older systems) cpuacct.usage and memory.usage_in_bytes. Memory is
// the working set, as Kubernetes reports it: usage less the inactive page cache.
//
// CPU is a rate: the usage since the previous reading over the time between; a container seen
// for the first time is measured since it started.
//
// The files are read synchronously: cgroupfs lives in memory and never waits on a disk, and a
// read through the thread pool cost the agent's thread several times the read itself (thirty of
// them every heartbeat with ten pods).

import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ContainerUsage, PodUsage } from '../api/protocol.js'
import type { Clock } from '../lib/clock.js'
import { LABELS, type ContainerRuntime, type RunningContainer } from './container-runtime.js'

/** Containers reported per heartbeat at most: the heartbeat must stay inside its 64 KiB. */
export const MAX_REPORTED_CONTAINERS = 400

export interface PodUsageOptions {
  runtime: ContainerRuntime
  clusterId: string
  clock: Clock
  /** Where cgroups are mounted (default /sys/fs/cgroup). */
  cgroupRoot?: string
}

/** A container's cgroup files, once found. */
interface CgroupFiles {
  version: 1 | 2
  cpuDir: string
  memoryDir: string
}

interface CpuReading {
  usageNs: number
  atMs: number
}

export class CgroupPodUsage {
  private readonly root: string
  private version: 1 | 2 | undefined
  private readonly files = new Map<string, CgroupFiles | null>()
  private readonly lastCpu = new Map<string, CpuReading>()

  constructor(private readonly o: PodUsageOptions) {
    this.root = o.cgroupRoot ?? '/sys/fs/cgroup'
  }

  /**
   * The running pods' usage now; containers whose cgroup cannot be read are left out. One list of
   * the running containers per heartbeat; a container is inspected only when first seen, for the
   * time it started.
   */
  async read(): Promise<PodUsage[]> {
    const running = (await this.o.runtime.listRunning({ [LABELS.cluster]: this.o.clusterId, [LABELS.role]: 'app' })).slice(0, MAX_REPORTED_CONTAINERS)
    const pods = new Map<string, PodUsage>()
    const seen = new Set<string>()
    for (const c of running) {
      seen.add(c.id)
      const files = this.cgroupOf(c.id)
      if (!files) continue
      let usage: ContainerUsage
      try {
        usage = this.containerUsage(c, files, this.lastCpu.has(c.id) ? undefined : await this.startedMs(c.id))
      } catch {
        continue // gone between the list and the read
      }
      const namespace = c.labels[LABELS.podNamespace] ?? 'default'
      const name = c.labels[LABELS.podName] ?? ''
      const key = `${namespace}/${name}`
      if (!pods.has(key)) pods.set(key, { namespace, name, containers: [] })
      pods.get(key)!.containers.push(usage)
    }
    // Containers gone since the last reading are forgotten.
    for (const id of [...this.lastCpu.keys()]) if (!seen.has(id)) this.lastCpu.delete(id)
    for (const id of [...this.files.keys()]) if (!seen.has(id)) this.files.delete(id)
    return [...pods.values()]
  }

  /** When the container started (ms since the epoch), if the engine says; throws when it is gone. */
  private async startedMs(id: string): Promise<number | undefined> {
    const { startedAt } = (await this.o.runtime.inspect(id)).state
    return startedAt ? Date.parse(startedAt) : undefined
  }

  /** `startedMs`: for a container not read before, whose first rate runs from its start. */
  private containerUsage(c: RunningContainer, files: CgroupFiles, startedMs: number | undefined): ContainerUsage {
    const atMs = this.o.clock.now()
    const usageNs = this.cpuUsageNs(files)
    const memoryBytes = this.workingSet(files)
    const previous = this.lastCpu.get(c.id) ?? { usageNs: 0, atMs: startedMs ?? atMs }
    this.lastCpu.set(c.id, { usageNs, atMs })
    return { name: c.labels[LABELS.containerName] ?? c.name, cpuCores: cpuRate(previous, { usageNs, atMs }), memoryBytes }
  }

  private cpuUsageNs(files: CgroupFiles): number {
    if (files.version === 2) return parseCpuStatUsec(readFileSync(join(files.cpuDir, 'cpu.stat'), 'utf8')) * 1000
    return Number(readFileSync(join(files.cpuDir, 'cpuacct.usage'), 'utf8').trim())
  }

  private workingSet(files: CgroupFiles): number {
    const usage = readFileSync(join(files.memoryDir, files.version === 2 ? 'memory.current' : 'memory.usage_in_bytes'), 'utf8')
    const stat = readFileSync(join(files.memoryDir, 'memory.stat'), 'utf8')
    return workingSetBytes(Number(usage.trim()), stat, files.version)
  }

  /** Where Docker put the container's cgroup: the systemd driver's scope or the cgroupfs driver's directory. */
  private cgroupOf(id: string): CgroupFiles | undefined {
    if (this.files.has(id)) return this.files.get(id) ?? undefined
    const version = (this.version ??= existsSync(join(this.root, 'cgroup.controllers')) ? 2 : 1)
    const leaves = [`system.slice/docker-${id}.scope`, `docker/${id}`]
    let found: CgroupFiles | undefined
    if (version === 2) {
      for (const leaf of leaves) if (!found && existsSync(join(this.root, leaf, 'cpu.stat'))) found = { version, cpuDir: join(this.root, leaf), memoryDir: join(this.root, leaf) }
    } else {
      let cpuDir: string | undefined
      let memoryDir: string | undefined
      for (const leaf of leaves) {
        for (const controller of ['cpuacct', 'cpu,cpuacct']) if (!cpuDir && existsSync(join(this.root, controller, leaf, 'cpuacct.usage'))) cpuDir = join(this.root, controller, leaf)
        if (!memoryDir && existsSync(join(this.root, 'memory', leaf, 'memory.stat'))) memoryDir = join(this.root, 'memory', leaf)
      }
      if (cpuDir && memoryDir) found = { version, cpuDir, memoryDir }
    }
    this.files.set(id, found ?? null)
    return found
  }
}

/** cgroup v2 `cpu.stat`'s usage_usec. */
export function parseCpuStatUsec(text: string): number {
  const m = /^usage_usec (\d+)$/m.exec(text)
  if (!m) throw new Error('cpu.stat has no usage_usec line')
  return Number(m[1])
}

/** Usage less inactive file pages (`inactive_file` in v2, `total_inactive_file` in v1), never below 0. */
export function workingSetBytes(usageBytes: number, memoryStat: string, version: 1 | 2): number {
  const m = new RegExp(`^${version === 2 ? 'inactive_file' : 'total_inactive_file'} (\\d+)$`, 'm').exec(memoryStat)
  const inactive = m ? Number(m[1]) : 0
  return Math.max(0, usageBytes - (inactive < usageBytes ? inactive : 0))
}

/** Cores used between two readings of cumulative CPU nanoseconds. */
export function cpuRate(before: CpuReading, after: CpuReading): number {
  const elapsedNs = (after.atMs - before.atMs) * 1e6
  if (!(elapsedNs > 0) || after.usageNs < before.usageNs) return 0
  return (after.usageNs - before.usageNs) / elapsedNs
}
