// A ContainerRuntime whose operations that change the engine's state (pull, create, start, stop,
// remove) and exec (probes) are counted by result, for the agent's /metrics. Everything else goes
// straight to the runtime it wraps.

import type { ContainerRuntime } from './container-runtime.js'

const OPERATION_NAMES: Record<string, string> = { pullImage: 'pull', create: 'create', start: 'start', stop: 'stop', remove: 'remove', exec: 'exec' }

export function meterRuntime(runtime: ContainerRuntime, count: (operation: string, result: 'ok' | 'error') => void): ContainerRuntime {
  return new Proxy(runtime, {
    get(target, property) {
      const value = Reflect.get(target, property, target)
      if (typeof value !== 'function') return value
      const operation = typeof property === 'string' ? OPERATION_NAMES[property] : undefined
      if (!operation) return value.bind(target)
      return async (...args: unknown[]) => {
        try {
          const result = await value.apply(target, args)
          count(operation, 'ok')
          return result
        } catch (err) {
          count(operation, 'error')
          throw err
        }
      }
    },
  })
}
