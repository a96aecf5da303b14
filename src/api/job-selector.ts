// Kubernetes' Job create rule: unless `manualSelector` is set, the API server gives a new Job a
// selector on its own uid and puts the matching labels on its pod template, so the Job's pods are
// found by label (`kubectl logs job/NAME`, `kubectl describe job`) and never mistaken for the pods
// of an earlier Job with the same name.

import type { KubeObject } from './types.js'

export const JOB_NAME_LABEL = 'batch.kubernetes.io/job-name'
export const CONTROLLER_UID_LABEL = 'batch.kubernetes.io/controller-uid'

/** The labels a Job's pods carry: the current names and the legacy ones older clients still read. */
export function jobPodLabels(name: string, uid: string): Record<string, string> {
  return { [CONTROLLER_UID_LABEL]: uid, [JOB_NAME_LABEL]: name, 'controller-uid': uid, 'job-name': name }
}

/** A copy of the Job with the generated selector and template labels, when it has no selector of its own. */
export function withGeneratedJobSelector(job: KubeObject, uid: string): KubeObject {
  const spec = job.spec
  if (!spec || typeof spec !== 'object' || spec.manualSelector === true || (spec.selector !== undefined && spec.selector !== null)) return job
  const template = spec.template && typeof spec.template === 'object' ? spec.template : {}
  const metadata = template.metadata && typeof template.metadata === 'object' ? template.metadata : {}
  const labels = metadata.labels && typeof metadata.labels === 'object' ? metadata.labels : {}
  return {
    ...job,
    spec: {
      ...spec,
      selector: { matchLabels: { [CONTROLLER_UID_LABEL]: uid } },
      template: { ...template, metadata: { ...metadata, labels: { ...labels, ...jobPodLabels(job.metadata.name!, uid) } } },
    },
  }
}
