// Parses a Kubernetes API path into what it names: a resource request or a discovery document.

import { kindByResource, type KindInfo } from '../api/kinds.js'

export type Route =
  | { type: 'resource'; info: KindInfo; namespace?: string; name?: string; subresource?: string }
  | { type: 'groupVersion'; group: string; version: string }
  | { type: 'other' }

export function parseRoute(pathname: string): Route {
  const segs = decodeSegments(pathname)
  if (!segs) return { type: 'other' }
  let group: string
  let version: string
  let rest: string[]
  if (segs[0] === 'api' && segs.length >= 2) {
    group = ''
    version = segs[1]
    rest = segs.slice(2)
  } else if (segs[0] === 'apis' && segs.length >= 3) {
    group = segs[1]
    version = segs[2]
    rest = segs.slice(3)
  } else {
    return { type: 'other' }
  }
  if (rest.length === 0) return { type: 'groupVersion', group, version }

  // /namespaces/{ns}/{plural}[/{name}[/{sub}]] names something inside a namespace, unless the
  // third segment is not a namespaced resource: then it is the Namespace object's own subresource.
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    const info = kindByResource(group, version, rest[2])
    if (info?.namespaced) {
      if (rest.length > 5) return { type: 'other' }
      return { type: 'resource', info, namespace: rest[1], name: rest[3], subresource: rest[4] }
    }
  }
  const info = kindByResource(group, version, rest[0])
  if (!info || rest.length > 3) return { type: 'other' }
  // A namespaced kind without a namespace is only addressable as an all-namespaces collection.
  if (info.namespaced && rest.length > 1) return { type: 'other' }
  return { type: 'resource', info, name: rest[1], subresource: rest[2] }
}

/** The path's segments, percent-decoded; undefined when an escape is malformed (`%E0%A4%A`). */
export function decodeSegments(pathname: string): string[] | undefined {
  try {
    return pathname.split('/').filter((s) => s !== '').map(decodeURIComponent)
  } catch {
    return undefined
  }
}
