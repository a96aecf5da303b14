// Events in the order people read them: oldest first by the last time each was seen, so the
// newest is at the bottom, next to the prompt (`get events`, and `describe`'s Events section).

import type { KubeObject } from '../api/types.js'

/** When an event was last seen: its lastTimestamp, else eventTime, firstTimestamp or creation. */
export function eventLastTime(e: KubeObject): string | undefined {
  return (e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp) as string | undefined
}

function lastTimeMs(e: KubeObject | undefined): number {
  return (e && Date.parse(eventLastTime(e) ?? '')) || 0
}

export function sortEvents(events: KubeObject[]): KubeObject[] {
  return [...events].sort((a, b) => lastTimeMs(a) - lastTimeMs(b))
}

/** Table rows of events sorted the same way; each row must carry its whole object (includeObject=Object). */
export function sortEventRows<R extends { object?: unknown }>(rows: R[]): R[] {
  return [...rows].sort((a, b) => lastTimeMs(a.object as KubeObject) - lastTimeMs(b.object as KubeObject))
}
