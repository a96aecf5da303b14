// Kubernetes-style Events about pods, as plain data for the caller to publish.

import type { KubeObject } from '../api/types.js'

export interface PodEventRecord {
  type: 'Normal' | 'Warning'
  reason: string
  message: string
  involvedObject: { apiVersion: 'v1'; kind: 'Pod'; namespace: string; name: string; uid: string; fieldPath?: string }
  source: { component: 'bramble-agent'; host?: string }
  firstTimestamp: string
  lastTimestamp: string
  count: number
}

export function podEvent(
  pod: KubeObject,
  reason: string,
  message: string,
  options: { type?: 'Normal' | 'Warning'; container?: string; host?: string; now: number },
): PodEventRecord {
  const at = new Date(options.now).toISOString()
  return {
    type: options.type ?? 'Normal',
    reason,
    message,
    involvedObject: {
      apiVersion: 'v1',
      kind: 'Pod',
      namespace: pod.metadata.namespace ?? 'default',
      name: String(pod.metadata.name),
      uid: String(pod.metadata.uid),
      ...(options.container ? { fieldPath: `spec.containers{${options.container}}` } : {}),
    },
    source: { component: 'bramble-agent', ...(options.host ? { host: options.host } : {}) },
    firstTimestamp: at,
    lastTimestamp: at,
    count: 1,
  }
}
