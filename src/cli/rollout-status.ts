// What `rollout status` says about a Deployment, DaemonSet or StatefulSet, with kubectl's messages and rules:
// a rollout counts only once the controller has observed the latest generation.

import type { KubeObject } from '../api/types.js'
import { CommandError } from './errors.js'

export interface RolloutState {
  /** The line to print, ending in a newline. */
  message: string
  done: boolean
  /** How far the current step is, for a progress bar. */
  progress?: { done: number; total: number; label: string }
}

export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision'

/**
 * kubectl's DeploymentStatusViewer. `revision` (when above 0) must be the Deployment's current
 * one. A Progressing condition with reason ProgressDeadlineExceeded ends the wait with an error.
 */
export function deploymentRolloutState(d: KubeObject, revision = 0): RolloutState {
  const name = d.metadata.name
  if (revision > 0) {
    const current = Number(d.metadata.annotations?.[REVISION_ANNOTATION])
    if (!Number.isInteger(current)) throw new CommandError(`cannot get the revision of deployment "${name}": it has no ${REVISION_ANNOTATION} annotation yet`)
    if (current !== revision) throw new CommandError(`desired revision (${revision}) is different from the running revision (${current})`)
  }
  const generation = d.metadata.generation ?? 0
  const status = d.status ?? {}
  if (generation > (status.observedGeneration ?? 0)) return waiting('Waiting for deployment spec update to be observed...\n')
  const progressing = (status.conditions ?? []).find((c: any) => c.type === 'Progressing')
  if (progressing?.reason === 'ProgressDeadlineExceeded') throw new CommandError(`deployment "${name}" exceeded its progress deadline`)
  const replicas = d.spec?.replicas
  const updated = status.updatedReplicas ?? 0
  if (typeof replicas === 'number' && updated < replicas) {
    return waiting(`Waiting for deployment "${name}" rollout to finish: ${updated} out of ${replicas} new replicas have been updated...\n`, updated, replicas, 'new replicas updated')
  }
  if ((status.replicas ?? 0) > updated) {
    return waiting(`Waiting for deployment "${name}" rollout to finish: ${(status.replicas ?? 0) - updated} old replicas are pending termination...\n`, updated, status.replicas ?? 0, 'replicas new, old ones terminating')
  }
  if ((status.availableReplicas ?? 0) < updated) {
    return waiting(`Waiting for deployment "${name}" rollout to finish: ${status.availableReplicas ?? 0} of ${updated} updated replicas are available...\n`, status.availableReplicas ?? 0, updated, 'updated replicas available')
  }
  return { message: `deployment "${name}" successfully rolled out\n`, done: true }
}

/** kubectl's DaemonSetStatusViewer (DaemonSets keep no revisions here, so none is checked). */
export function daemonSetRolloutState(ds: KubeObject): RolloutState {
  const name = ds.metadata.name
  const strategy = ds.spec?.updateStrategy?.type ?? 'RollingUpdate'
  if (strategy !== 'RollingUpdate') throw new CommandError(`rollout status is only available for RollingUpdate strategy type; daemon set "${name}" uses ${strategy}`)
  const status = ds.status ?? {}
  if ((ds.metadata.generation ?? 0) > (status.observedGeneration ?? 0)) return waiting('Waiting for daemon set spec update to be observed...\n')
  const desired = status.desiredNumberScheduled ?? 0
  const updated = status.updatedNumberScheduled ?? 0
  if (updated < desired) return waiting(`Waiting for daemon set "${name}" rollout to finish: ${updated} out of ${desired} new pods have been updated...\n`, updated, desired, 'new pods updated')
  const available = status.numberAvailable ?? 0
  if (available < desired) return waiting(`Waiting for daemon set "${name}" rollout to finish: ${available} of ${desired} updated pods are available...\n`, available, desired, 'updated pods available')
  return { message: `daemon set "${name}" successfully rolled out\n`, done: true }
}

/** kubectl's StatefulSetStatusViewer. */
export function statefulSetRolloutState(sts: KubeObject): RolloutState {
  const name = sts.metadata.name
  const strategy = sts.spec?.updateStrategy?.type ?? 'RollingUpdate'
  if (strategy !== 'RollingUpdate') throw new CommandError(`rollout status is only available for RollingUpdate strategy type; statefulset "${name}" uses ${strategy}`)
  const status = sts.status ?? {}
  if ((status.observedGeneration ?? 0) === 0 || (sts.metadata.generation ?? 0) > status.observedGeneration) return waiting('Waiting for statefulset spec update to be observed...\n')
  const replicas = sts.spec?.replicas ?? 1
  const ready = status.readyReplicas ?? 0
  if (ready < replicas) return waiting(`Waiting for ${replicas - ready} pods to be ready...\n`, ready, replicas, 'pods ready')
  // As kubectl: a rollingUpdate block (partition defaults to 0, so there always is one) makes it a partitioned roll out.
  const rolling = sts.spec?.updateStrategy?.rollingUpdate
  if (rolling) {
    const updated = status.updatedReplicas ?? 0
    const partition = typeof rolling.partition === 'number' ? rolling.partition : undefined
    if (partition !== undefined && updated < replicas - partition) {
      return waiting(`Waiting for partitioned roll out to finish: ${updated} out of ${replicas - partition} new pods have been updated...\n`, updated, replicas - partition, 'new pods updated')
    }
    return { message: `partitioned roll out complete: ${updated} new pods have been updated...\n`, done: true }
  }
  if (status.updateRevision !== status.currentRevision) {
    const updated = status.updatedReplicas ?? 0
    return waiting(`waiting for statefulset rolling update to complete ${updated} pods at revision ${status.updateRevision}...\n`, updated, replicas, 'pods updated')
  }
  return { message: `statefulset rolling update complete ${status.currentReplicas ?? 0} pods at revision ${status.currentRevision}...\n`, done: true }
}

function waiting(message: string, done?: number, total?: number, label = ''): RolloutState {
  return { message, done: false, ...(done === undefined || total === undefined ? {} : { progress: { done, total, label } }) }
}
