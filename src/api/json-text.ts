// Untrusted JSON text in: parsed with the place of a syntax error (line, column) in the message,
// and a nesting limit so that a body of ten thousand brackets cannot exhaust the stack of the
// recursive code that walks objects later (validation, patches, defaults).

/** Deeper than any Kubernetes object; Kubernetes' own decoder stops at 10000, our walkers earlier. */
export const MAX_NESTING_DEPTH = 100

/** Text that is not JSON, or JSON nested too deeply; the message says where. */
export class JsonTextError extends Error {
  readonly code = 'BRAMBLE_API_JSON_TEXT'
  constructor(
    message: string,
    readonly line: number | undefined,
    readonly column: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'JsonTextError'
  }
}

/** JSON.parse, with the syntax error's line and column (V8 names a position only for some errors). */
export function parseJsonText(text: string, maxDepth = MAX_NESTING_DEPTH): unknown {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    const message = (err as Error).message
    const position = / at position (\d+)/.exec(message)
    const offset = position ? Number(position[1]) : jsonErrorOffset(text)
    if (offset === undefined) throw new JsonTextError(message, undefined, undefined, { cause: err })
    const { line, column } = lineAndColumn(text, offset)
    const reason = message.replace(/ in JSON at position \d+.*$/, '').replace(/ at position \d+.*$/, '')
    throw new JsonTextError(`${reason} at line ${line}, column ${column}`, line, column, { cause: err })
  }
  checkNesting(value, maxDepth)
  return value
}

/** Throws JsonTextError when a decoded value (of any format) nests objects and lists deeper than `maxDepth`. */
export function checkNesting(value: unknown, maxDepth = MAX_NESTING_DEPTH): void {
  if (nestingExceeds(value, maxDepth)) throw new JsonTextError(`objects and lists are nested more than ${maxDepth} levels deep`, undefined, undefined)
}

function nestingExceeds(value: unknown, levelsLeft: number): boolean {
  if (typeof value !== 'object' || value === null) return false
  if (levelsLeft === 0) return true
  for (const v of Array.isArray(value) ? value : Object.values(value)) if (nestingExceeds(v, levelsLeft - 1)) return true
  return false
}

export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1
  let lineStart = 0
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++
      lineStart = i + 1
    }
  }
  return { line, column: offset - lineStart + 1 }
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y
const ESCAPES = new Set(['"', '\\', '/', 'b', 'f', 'n', 'r', 't'])

/**
 * The offset of the first syntax error in `text`, or undefined when it is valid JSON. An explicit
 * stack instead of recursion, so any depth is scanned.
 */
export function jsonErrorOffset(text: string): number | undefined {
  const n = text.length
  const stack: string[] = []
  let i = 0
  const skipSpace = () => {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++
  }
  /** Reads a string at i; false leaves i at the error. */
  const readString = (): boolean => {
    if (text[i] !== '"') return false
    i++
    while (i < n) {
      const c = text.charCodeAt(i)
      if (c === 34) {
        i++
        return true
      }
      if (c < 0x20) return false
      if (c === 92) {
        const e = text[i + 1]
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) return false
          i += 6
        } else if (e !== undefined && ESCAPES.has(e)) i += 2
        else return false
      } else i++
    }
    return false
  }
  /** Reads `"key" :` inside an object. */
  const readKey = (): boolean => {
    skipSpace()
    if (!readString()) return false
    skipSpace()
    if (text[i] !== ':') return false
    i++
    return true
  }
  for (;;) {
    // A value is expected at i.
    skipSpace()
    const c = text[i]
    if (c === '{' || c === '[') {
      stack.push(c)
      i++
      skipSpace()
      if (text[i] === (c === '{' ? '}' : ']')) {
        i++
        stack.pop()
      } else if (c === '{') {
        if (!readKey()) return i
        continue
      } else continue
    } else if (c === '"') {
      if (!readString()) return i
    } else if (text.startsWith('true', i)) i += 4
    else if (text.startsWith('false', i)) i += 5
    else if (text.startsWith('null', i)) i += 4
    else {
      NUMBER.lastIndex = i
      if (!NUMBER.test(text)) return i
      i = NUMBER.lastIndex
    }
    // After a value: close containers, or a comma and the next value.
    for (;;) {
      skipSpace()
      const top = stack[stack.length - 1]
      if (top === undefined) return i < n ? i : undefined
      if (text[i] === ',') {
        i++
        if (top === '{' && !readKey()) return i
        break
      }
      if (text[i] !== (top === '{' ? '}' : ']')) return i
      i++
      stack.pop()
    }
  }
}
