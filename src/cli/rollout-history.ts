// A Deployment's revisions as kubectl reads them from the ReplicaSets it controls: the history
// table, one revision's pod template, and the rollback (`rollout undo`) patch.

import type { KubeObject } from '../api/types.js'
import { describePodTemplate } from './describe-format.js'
import { CommandError } from './errors.js'
import { REVISION_ANNOTATION } from './rollout-status.js'

export const CHANGE_CAUSE_ANNOTATION = 'kubernetes.io/change-cause'
const HASH_LABEL = 'pod-template-hash'
/** Deployment annotations a rollback keeps from the Deployment rather than taking from the ReplicaSet (kubectl's list). */
const ANNOTATIONS_KEPT = new Set([
  'kubectl.kubernetes.io/last-applied-configuration',
  REVISION_ANNOTATION,
  'deployment.kubernetes.io/revision-history',
  'deployment.kubernetes.io/desired-replicas',
  'deployment.kubernetes.io/max-replicas',
  'deprecated.deployment.rollback.to',
])

export interface Revision {
  revision: number
  replicaSet: KubeObject
}

/** The revisions of the ReplicaSets `d` controls, oldest first; ReplicaSets without a revision are left out. */
export function revisionsOf(d: KubeObject, replicaSets: readonly KubeObject[]): Revision[] {
  return replicaSets
    .filter((rs) => rs.metadata.namespace === d.metadata.namespace && (rs.metadata.ownerReferences ?? []).some((r) => r.controller && r.uid === d.metadata.uid))
    .map((rs) => ({ revision: Number(rs.metadata.annotations?.[REVISION_ANNOTATION]), replicaSet: rs }))
    .filter((r) => Number.isInteger(r.revision) && r.revision > 0)
    .sort((a, b) => a.revision - b.revision)
}

/** `REVISION  CHANGE-CAUSE` rows, aligned as kubectl's tabwriter does (two spaces of padding). */
export function historyTable(revisions: readonly Revision[]): string {
  const rows = [['REVISION', 'CHANGE-CAUSE'], ...revisions.map((r) => [String(r.revision), r.replicaSet.metadata.annotations?.[CHANGE_CAUSE_ANNOTATION] || '<none>'])]
  const width = Math.max(...rows.map((r) => r[0].length)) + 2
  return rows.map(([rev, cause]) => `${rev.padEnd(width)}${cause}\n`).join('')
}

/** The pod template of one revision, as `rollout history --revision=N` prints it. */
export function revisionTemplate(revisions: readonly Revision[], revision: number): string {
  const found = revisions.find((r) => r.revision === revision)
  if (!found) throw new CommandError(`unable to find the specified revision ${revision} in the history; \`rollout history\` lists the revisions there are`)
  const template = structuredClone(found.replicaSet.spec?.template ?? {})
  const cause = found.replicaSet.metadata.annotations?.[CHANGE_CAUSE_ANNOTATION]
  if (cause) template.metadata = { ...template.metadata, annotations: { ...template.metadata?.annotations, [CHANGE_CAUSE_ANNOTATION]: cause } }
  return describePodTemplate(template)
}

/** The revision `rollout undo` goes back to: `toRevision`, or (0) the one before the latest. */
export function rollbackRevision(d: KubeObject, revisions: readonly Revision[], toRevision: number): Revision {
  if (toRevision > 0) {
    const found = revisions.find((r) => r.revision === toRevision)
    if (!found) throw new CommandError(`unable to find specified revision ${toRevision} in history of deployment "${d.metadata.name}"; \`rollout history\` lists the revisions there are`)
    return found
  }
  if (revisions.length < 2) throw new CommandError(`no rollout history found for deployment "${d.metadata.name}": there is no previous revision to go back to`)
  return revisions[revisions.length - 2]
}

export type Rollback = { kind: 'skip'; message: string } | { kind: 'patch'; patch: unknown[] }

/**
 * What kubectl's DeploymentRollbacker does: the Deployment's template becomes the revision's
 * (without the pod-template-hash label), and its annotations become the ReplicaSet's, except for
 * the revision and the others kubectl keeps from the Deployment. A JSON patch, as kubectl sends.
 */
export function rollbackOf(d: KubeObject, target: Revision): Rollback {
  if (d.spec?.paused) throw new CommandError(`you cannot rollback a paused deployment; resume it first (set spec.paused to false) and try again`)
  const template = structuredClone(target.replicaSet.spec?.template ?? {})
  if (template.metadata?.labels) delete template.metadata.labels[HASH_LABEL]
  if (canonical(template) === canonical(withoutHash(d.spec?.template))) {
    return { kind: 'skip', message: `skipped rollback (current template already matches revision ${target.revision})` }
  }
  const annotations: Record<string, string> = {}
  for (const [k, v] of Object.entries(d.metadata.annotations ?? {})) if (ANNOTATIONS_KEPT.has(k)) annotations[k] = v
  for (const [k, v] of Object.entries(target.replicaSet.metadata.annotations ?? {})) if (!ANNOTATIONS_KEPT.has(k)) annotations[k] = v
  return {
    kind: 'patch',
    patch: [
      { op: 'replace', path: '/spec/template', value: template },
      // `add` replaces an existing member and also works when the Deployment has no annotations yet.
      { op: 'add', path: '/metadata/annotations', value: annotations },
    ],
  }
}

function withoutHash(template: any): any {
  const copy = structuredClone(template ?? {})
  if (copy.metadata?.labels) delete copy.metadata.labels[HASH_LABEL]
  return copy
}

/** JSON with sorted keys and empty values left out, so equal templates compare equal. */
function canonical(value: unknown): string {
  const norm = (v: any): any => {
    if (Array.isArray(v)) return v.map(norm)
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {}
      for (const k of Object.keys(v).sort()) {
        const n = norm(v[k])
        if (n === undefined || n === null || n === '' || (typeof n === 'object' && !Array.isArray(n) && Object.keys(n).length === 0)) continue
        out[k] = n
      }
      return out
    }
    return v
  }
  return JSON.stringify(norm(value))
}
