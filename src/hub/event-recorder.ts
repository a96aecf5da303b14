// Kubernetes-style Events for people (`kubectl describe` shows them). Repeats of the same event
// on the same object bump its count instead of piling up new objects, as Kubernetes' recorder does.

import { KINDS } from '../api/kinds.js'
import type { KubeObject } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { RandomHex } from '../lib/random-hex.js'
import { rfc3339, type Registry } from './registry.js'

const EVENT_KIND = KINDS.find((k) => k.kind === 'Event')!
/** How many distinct recent events are remembered for aggregation. */
const REMEMBERED = 4096
const WRITE = { dryRun: false, fieldValidation: 'Ignore' as const, warnings: false }

export interface EventSource {
  component: string
  host?: string
}

export class EventRecorder {
  private readonly recent = new Map<string, { name: string; namespace: string }>()
  private readonly suffixes = new RandomHex(8)

  constructor(
    private readonly registry: Registry,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly source: EventSource,
  ) {}

  /** Records an event; never throws (an event lost is better than a controller failing). */
  async record(object: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const namespace = object.metadata.namespace || 'default'
    const aggregate = `${object.metadata.uid ?? object.metadata.name}\0${type}\0${reason}\0${message}`
    const now = rfc3339(this.clock.now())
    try {
      const known = this.recent.get(aggregate)
      if (known) {
        const existing = await this.registry.get(EVENT_KIND, known.namespace, known.name).catch(() => undefined)
        if (existing) {
          const next = { ...existing, count: ((existing.count as number) ?? 1) + 1, lastTimestamp: now }
          await this.registry.update(EVENT_KIND, known.namespace, known.name, next, WRITE)
          return
        }
      }
      const name = `${object.metadata.name}.${this.suffixes.next()}`
      // Valid by construction (test/hub/event-recorder.test.ts checks it), so stored without a request's checks.
      await this.registry.createOwn(
        EVENT_KIND,
        namespace,
        {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { name, namespace },
          involvedObject: definedOnly({
            kind: object.kind,
            apiVersion: object.apiVersion,
            name: object.metadata.name,
            namespace: object.metadata.namespace,
            uid: object.metadata.uid,
            resourceVersion: object.metadata.resourceVersion,
          }),
          reason,
          message,
          type,
          count: 1,
          firstTimestamp: now,
          lastTimestamp: now,
          source: this.source,
          reportingComponent: this.source.component,
          reportingInstance: this.source.host ?? '',
        },
      )
      this.remember(aggregate, { name, namespace })
    } catch (err) {
      this.logger.warn({ component: 'events', err, reason, object: object.metadata.name }, 'could not record an event')
    }
  }

  private remember(key: string, value: { name: string; namespace: string }): void {
    this.recent.set(key, value)
    if (this.recent.size > REMEMBERED) this.recent.delete(this.recent.keys().next().value!)
  }
}

function definedOnly(fields: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(fields).filter((e): e is [string, string] => e[1] !== undefined))
}
