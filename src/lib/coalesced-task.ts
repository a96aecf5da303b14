// A task that is asked for again and again but need only run once more, like rewriting a whole file
// from in-memory state: it never runs twice at once, and every call made while it runs is served by
// one further run that starts when the current one ends (and so sees every change made before it).
// A thousand calls during one run cost one more run, not a thousand; each call's promise settles
// with the run that covers it.

export function coalescedTask(task: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined
  let queued: Promise<void> | undefined
  const start = (): Promise<void> => {
    const run = task().finally(() => {
      if (running === run) running = undefined
    })
    running = run
    return run
  }
  return () => {
    if (queued) return queued
    if (!running) return start()
    const next = running.catch(() => {}).then(() => {
      queued = undefined
      return start()
    })
    queued = next
    return next
  }
}
