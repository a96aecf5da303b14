// When a pod has finished for good, as the kubelet judges it: the hub says so (its phase is
// Succeeded or Failed), or its containers have reached an end their restart policy does not restart
// (Never: every app container exited, or an init container failed; OnFailure: every app container
// exited 0). A finished pod is never run again, not even after an agent restart or a reboot; its
// containers stay, exited, for their logs and exit codes, until the pod is deleted. Pure.

import type { KubeObject } from '../api/types.js'
import { LABELS, type ContainerInfo } from './container-runtime.js'

export type FinishedPhase = 'Succeeded' | 'Failed'

/** The phase the hub has written for the pod, when it is a final one. */
export function hubFinishedPhase(pod: KubeObject): FinishedPhase | undefined {
  const phase = pod.status?.phase
  return phase === 'Succeeded' || phase === 'Failed' ? phase : undefined
}

/** The pod's final phase, or undefined while it may still run. `containers` are this pod's. */
export function finishedPhase(pod: KubeObject, containers: ContainerInfo[]): FinishedPhase | undefined {
  const fromHub = hubFinishedPhase(pod)
  if (fromHub) return fromHub
  const policy: string = pod.spec?.restartPolicy ?? 'Always'
  if (policy === 'Always') return undefined
  const latest = latestByName(containers)
  if (policy === 'Never') {
    for (const spec of pod.spec?.initContainers ?? []) {
      const c = latest.get(spec.name)
      if (c && hasEnded(c) && c.state.exitCode !== 0) return 'Failed'
    }
  }
  const apps: any[] = pod.spec?.containers ?? []
  if (apps.length === 0) return undefined
  const ends = apps.map((spec) => latest.get(spec.name))
  if (ends.some((c) => !c || !hasEnded(c))) return undefined
  if (ends.every((c) => c!.state.exitCode === 0)) return 'Succeeded'
  return policy === 'Never' ? 'Failed' : undefined
}

/** The container ran and stopped (`dead`: stopped, and the engine failed to remove it). */
export function hasEnded(c: ContainerInfo): boolean {
  return c.state.status === 'exited' || c.state.status === 'dead'
}

/** Whether the restart policy restarts a container that exited with `exitCode`. */
export function restartsAfter(policy: string, exitCode: number): boolean {
  return policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0)
}

function latestByName(containers: ContainerInfo[]): Map<string, ContainerInfo> {
  const latest = new Map<string, ContainerInfo>()
  for (const c of containers) {
    if (c.labels[LABELS.role] === 'sandbox') continue
    const name = c.labels[LABELS.containerName] ?? ''
    const held = latest.get(name)
    if (!held || attempt(c) > attempt(held)) latest.set(name, c)
  }
  return latest
}

function attempt(c: ContainerInfo): number {
  return Number(c.labels[LABELS.attempt] ?? 0) || 0
}
