// The flag-schema machinery: how one flag is described (FlagSpec), and how a schema of them is
// resolved from commander's values, the environment and the defaults. The schemas themselves live in
// hub-flags.ts, agent-flags.ts and config.ts; the flags several commands share live in common-flags.ts.

import { ConfigError } from './config-errors.js'
import { FlagReason } from './config-values.js'

/** One flag: how it is typed, parsed, defaulted and explained. */
export interface FlagSpec<C, K extends keyof C> {
  /** As typed: `--api-port`. */
  flag: string
  /** Placeholder in help: `N`, `ADDR`. */
  valueName: string
  description: string
  /** An environment variable that sets the flag when it is not given. */
  env?: string
  /** Turns the typed text into a value, or throws FlagReason naming what is wrong. */
  parse(raw: string): C[K]
  /** The value when neither the flag nor its variable is set; sees the flags resolved before it. */
  defaultValue(resolved: Partial<C>, env: NodeJS.ProcessEnv): C[K]
  /** The default as help shows it. */
  defaultText: string
}

export type FlagSchema<C> = { [K in keyof C]: FlagSpec<C, K> }

/** Flag values as commander hands them over (keyed by commander's camelCase attribute name). */
export type RawFlags = Record<string, unknown>

/** Commander's attribute name for a flag: `--api-port` → `apiPort`. */
export function optionAttribute(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
}

/**
 * Resolves every flag of a schema, in the schema's order: the flag, else its environment variable,
 * else its default. Throws ConfigError naming the first bad flag.
 */
export function resolveFlags<C>(schema: FlagSchema<C>, raw: RawFlags, env: NodeJS.ProcessEnv = process.env): C {
  const resolved: Partial<C> = {}
  for (const key of Object.keys(schema) as (keyof C)[]) {
    const spec = schema[key]
    const given = raw[optionAttribute(spec.flag)]
    const fromEnv = spec.env ? env[spec.env] : undefined
    let value: C[keyof C]
    if (given !== undefined) value = parseWith(spec, String(given), spec.flag)
    else if (fromEnv !== undefined && fromEnv !== '') value = parseWith(spec, fromEnv, spec.env!)
    else value = spec.defaultValue(resolved, env)
    resolved[key] = value
  }
  return resolved as C
}

function parseWith<C, K extends keyof C>(spec: FlagSpec<C, K>, raw: string, name: string): C[K] {
  try {
    return spec.parse(raw)
  } catch (err) {
    if (err instanceof FlagReason) throw new ConfigError(name, err.message)
    throw err
  }
}
