// Deterministic JSON text for hashing.

/** JSON with object keys sorted and undefined members left out: equal values give equal text, for hashes. */
export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as any)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableJson((v as any)[k])}`)
      .join(',')}}`
  }
  return JSON.stringify(v)
}
