// dockerode loads gRPC (for BuildKit sessions) and ssh2 (for ssh:// engines) as soon as it is
// imported: about 16 MB of a Pi's memory for code the agent never runs, since it speaks to a local
// socket. While dockerode loads, those modules are handed over as stand-ins that load the real
// module on first use, so an ssh:// engine or a BuildKit session still works.

import Module, { createRequire } from 'node:module'
import { sep } from 'node:path'
import type Dockerode from 'dockerode'

type Load = (request: string, parent: { filename?: string } | undefined, isMain: boolean) => unknown

function deferred(request: string, parent: { filename?: string } | undefined): boolean {
  if (request === '@grpc/grpc-js' || request === '@grpc/proto-loader') return true
  return request === './ssh' && (parent?.filename ?? '').includes(`${sep}docker-modem${sep}`)
}

/** A stand-in for a module: the real one is loaded when a property is read or it is called. */
function onFirstUse(load: () => any): unknown {
  let real: any
  const get = () => (real ??= load())
  return new Proxy(function standIn() {}, {
    get: (_target, property) => get()[property],
    apply: (_target, self, args) => Reflect.apply(get(), self, args),
    construct: (_target, args) => Reflect.construct(get(), args),
  })
}

let loaded: typeof Dockerode | undefined

export function loadDockerode(): typeof Dockerode {
  if (loaded) return loaded
  const loader = Module as unknown as { _load: Load }
  const original = loader._load
  loader._load = function (request, parent, isMain) {
    if (deferred(request, parent)) return onFirstUse(() => original.call(this, request, parent, isMain))
    return original.call(this, request, parent, isMain)
  }
  try {
    loaded = createRequire(import.meta.url)('dockerode') as typeof Dockerode
  } finally {
    loader._load = original
  }
  return loaded
}
