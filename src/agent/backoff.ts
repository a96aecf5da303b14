// Crash-loop back-off as Kubernetes' kubelet does it: the first restart is immediate, then the
// delay starts at 10 s and doubles up to 5 min; a container that ran for 10 min starts over.
// Pure: the caller keeps the entries and passes times in.
//
// `finishedAt` comes from the container engine's clock, `now` from the agent's: after a clock step
// (NTP correcting a Pi that booted with a stale time) they disagree by minutes. A finish time is
// therefore held between the agent's own restart of the container (it cannot have finished
// earlier) and now (nor later), so a skew neither stalls a restart for minutes nor skips the delay.

export interface BackoffSettings {
  initialMs: number
  maxMs: number
  /** A run at least this long resets the back-off. */
  resetAfterMs: number
}

export const DEFAULT_BACKOFF: BackoffSettings = { initialMs: 10_000, maxMs: 300_000, resetAfterMs: 600_000 }

/** The delay to wait before the restart after the last one. */
export interface BackoffEntry {
  delayMs: number
  /** When the agent last started the container, by its own clock. */
  restartedAt?: number
}

export type BackoffDecision =
  | { restartNow: true; next: BackoffEntry }
  | { restartNow: false; until: number }

/**
 * Whether a container that finished at `finishedAt` after running `ranMs` may restart at `now`,
 * and if so the entry to keep for its next restart.
 */
export function restartDecision(
  entry: BackoffEntry | undefined,
  finishedAt: number,
  ranMs: number,
  now: number,
  settings: BackoffSettings,
): BackoffDecision {
  if (!entry || ranMs >= settings.resetAfterMs) return { restartNow: true, next: { delayMs: settings.initialMs, restartedAt: now } }
  const finished = Math.min(now, Math.max(finishedAt, entry.restartedAt ?? finishedAt))
  const until = finished + entry.delayMs
  if (now < until) return { restartNow: false, until }
  return { restartNow: true, next: { delayMs: Math.min(settings.maxMs, entry.delayMs * 2), restartedAt: now } }
}
