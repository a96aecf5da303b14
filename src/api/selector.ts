// Label and field selectors as Kubernetes parses and applies them (apimachinery labels/fields).

import { SelectorParseError, UnsupportedFieldSelectorError } from './errors.js'
import { isQualifiedName, isValidLabelValue } from './names.js'
import type { FieldError } from './types.js'
import { child, forbidden, index, invalid, invalidEach, isRecord, required, typeInvalid } from './validate-errors.js'

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt'

/** One requirement on labels. `a=b` is In [b]; `a!=b` is NotIn [b] (also met when `a` is absent). */
export interface Requirement {
  key: string
  operator: SelectorOperator
  values: string[]
}

// ---- label selectors: the string form -------------------------------------------------------

type Token = { kind: 'id' | 'op' | '(' | ')' | ','; text: string; pos: number }

function tokenize(s: string): Token[] {
  const tokens: Token[] = []
  let i = 0
  while (i < s.length) {
    const c = s[i]
    if (/\s/.test(c)) {
      i++
    } else if (c === '(' || c === ')' || c === ',') {
      tokens.push({ kind: c, text: c, pos: i })
      i++
    } else if (s.startsWith('==', i) || s.startsWith('!=', i)) {
      tokens.push({ kind: 'op', text: s.slice(i, i + 2), pos: i })
      i += 2
    } else if (c === '=' || c === '!' || c === '>' || c === '<') {
      tokens.push({ kind: 'op', text: c, pos: i })
      i++
    } else {
      const start = i
      while (i < s.length && !/[\s(),=!<>]/.test(s[i])) i++
      tokens.push({ kind: 'id', text: s.slice(start, i), pos: start })
    }
  }
  return tokens
}

/**
 * Parses a label selector string: `a=b,c!=d,e in (x,y),f notin (z),g,!h`, also `==`, `a>5`, `a<5`.
 * The empty string selects everything. Throws SelectorParseError.
 */
export function parseLabelSelector(selector: string): Requirement[] {
  const tokens = tokenize(selector)
  const reqs: Requirement[] = []
  let p = 0
  const fail = (why: string): never => {
    throw new SelectorParseError(selector, why)
  }
  const next = (): Token | undefined => tokens[p++]
  const peek = (): Token | undefined => tokens[p]
  const checkKey = (key: string): void => {
    const errs = isQualifiedName(key)
    if (errs.length) fail(`invalid label key "${key}": ${errs.join('; ')}`)
  }
  const checkValue = (value: string): void => {
    const errs = isValidLabelValue(value)
    if (errs.length) fail(`invalid label value: "${value}": ${errs.join('; ')}`)
  }
  while (p < tokens.length) {
    let t = next()!
    if (t.kind === 'op' && t.text === '!') {
      const k = next()
      if (!k || k.kind !== 'id') fail(`expected a label key after '!' at position ${t.pos}`)
      checkKey(k!.text)
      reqs.push({ key: k!.text, operator: 'DoesNotExist', values: [] })
    } else if (t.kind === 'id') {
      const key = t.text
      checkKey(key)
      const op = peek()
      if (!op || op.kind === ',') {
        reqs.push({ key, operator: 'Exists', values: [] })
      } else if (op.kind === 'op') {
        p++
        if (op.text === '!') fail(`unexpected '!' at position ${op.pos}`)
        const v = peek()
        let value = ''
        if (v && v.kind === 'id') {
          value = v.text
          p++
        } else if (op.text === '>' || op.text === '<') fail(`expected an integer after '${op.text}' at position ${op.pos}`)
        if (op.text === '>' || op.text === '<') {
          if (!/^-?[0-9]+$/.test(value)) fail(`for 'Gt', 'Lt' operators, the value must be an integer, not "${value}"`)
          reqs.push({ key, operator: op.text === '>' ? 'Gt' : 'Lt', values: [value] })
        } else {
          checkValue(value)
          reqs.push({ key, operator: op.text === '!=' ? 'NotIn' : 'In', values: [value] })
        }
      } else if (op.kind === 'id' && (op.text === 'in' || op.text === 'notin')) {
        p++
        const open = next()
        if (!open || open.kind !== '(') fail(`expected '(' after '${op.text}' at position ${op.pos}`)
        const values: string[] = []
        for (;;) {
          const v = next()
          if (!v) fail(`unterminated value list: missing ')'`)
          if (v!.kind === ')') break
          if (v!.kind === ',') {
            values.push('')
            continue
          }
          if (v!.kind !== 'id') fail(`unexpected '${v!.text}' at position ${v!.pos} in a value list`)
          values.push(v!.text)
          const sep = next()
          if (!sep) fail(`unterminated value list: missing ')'`)
          if (sep!.kind === ')') break
          if (sep!.kind !== ',') fail(`expected ',' or ')' at position ${sep!.pos}`)
        }
        if (values.length === 0) fail(`for '${op.text}' the value list must not be empty`)
        values.forEach(checkValue)
        reqs.push({ key, operator: op.text === 'in' ? 'In' : 'NotIn', values: [...new Set(values)].sort() })
      } else fail(`unexpected '${op.text}' at position ${op.pos}: expected an operator (=, ==, !=, in, notin)`)
    } else fail(`unexpected '${t.text}' at position ${t.pos}: expected a label key`)
    t = next()!
    if (t && t.kind !== ',') fail(`expected ',' at position ${t.pos}, found '${t.text}'`)
    if (t && p >= tokens.length) fail('a selector may not end with a comma')
  }
  return reqs
}

// ---- label selectors: the object form -------------------------------------------------------

export interface LabelSelectorResult {
  requirements: Requirement[]
  errors: FieldError[]
}

export interface SelectorOptions {
  /** Node selector terms (node affinity) also take Gt and Lt with one integer value. */
  allowGtLt?: boolean
}

/**
 * Builds requirements from `{matchLabels, matchExpressions}` (a metav1.LabelSelector), checking
 * keys, values and operators as Kubernetes' ValidateLabelSelector does; errors carry paths under `path`.
 */
export function labelSelectorFromObject(selector: unknown, path: string, options: SelectorOptions = {}): LabelSelectorResult {
  const errors: FieldError[] = []
  const requirements: Requirement[] = []
  if (selector === undefined || selector === null) return { requirements, errors }
  if (!isRecord(selector)) return { requirements, errors: [typeInvalid(path, selector, 'object')] }
  const { matchLabels, matchExpressions } = selector
  if (matchLabels !== undefined && matchLabels !== null) {
    const mp = child(path, 'matchLabels')
    if (!isRecord(matchLabels)) errors.push(typeInvalid(mp, matchLabels, 'object'))
    else
      for (const [k, v] of Object.entries(matchLabels)) {
        errors.push(...invalidEach(mp, k, isQualifiedName(k)))
        if (typeof v !== 'string') errors.push(typeInvalid(`${mp}[${k}]`, v, 'string'))
        else {
          errors.push(...invalidEach(mp, v, isValidLabelValue(v)))
          requirements.push({ key: k, operator: 'In', values: [v] })
        }
      }
  }
  if (matchExpressions !== undefined && matchExpressions !== null) {
    const ep = child(path, 'matchExpressions')
    if (!Array.isArray(matchExpressions)) errors.push(typeInvalid(ep, matchExpressions, 'array'))
    else
      matchExpressions.forEach((expr, i) => {
        const r = requirementFromObject(expr, index(ep, i), options)
        errors.push(...r.errors)
        if (r.requirement) requirements.push(r.requirement)
      })
  }
  return { requirements, errors }
}

/** One `{key, operator, values}` entry (LabelSelectorRequirement or NodeSelectorRequirement). */
export function requirementFromObject(expr: unknown, path: string, options: SelectorOptions = {}): { requirement?: Requirement; errors: FieldError[] } {
  if (!isRecord(expr)) return { errors: [typeInvalid(path, expr, 'object')] }
  const errors: FieldError[] = []
  const { key, operator } = expr
  let values: string[] = []
  if (expr.values !== undefined && expr.values !== null) {
    if (!Array.isArray(expr.values)) errors.push(typeInvalid(child(path, 'values'), expr.values, 'array'))
    else
      expr.values.forEach((v, i) => {
        if (typeof v !== 'string') errors.push(typeInvalid(index(child(path, 'values'), i), v, 'string'))
        else values.push(v)
      })
  }
  if (typeof key !== 'string' || key === '') errors.push(key === undefined || key === '' ? required(child(path, 'key')) : typeInvalid(child(path, 'key'), key, 'string'))
  else errors.push(...invalidEach(child(path, 'key'), key, isQualifiedName(key)))
  const vp = child(path, 'values')
  switch (operator) {
    case 'In':
    case 'NotIn':
      if (values.length === 0) errors.push(required(vp, "must be specified when `operator` is 'In' or 'NotIn'"))
      if (!options.allowGtLt) values.forEach((v, i) => errors.push(...invalidEach(index(vp, i), v, isValidLabelValue(v))))
      break
    case 'Exists':
    case 'DoesNotExist':
      if (values.length > 0) errors.push(forbidden(vp, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
      values = []
      break
    default:
      // Gt and Lt are for node selectors (node affinity) only.
      if ((operator === 'Gt' || operator === 'Lt') && options.allowGtLt) {
        if (values.length !== 1) errors.push(required(vp, "must be specified single value when `operator` is 'Lt' or 'Gt'"))
        else if (!/^-?[0-9]+$/.test(values[0])) errors.push(invalid(index(vp, 0), values[0], 'must be an integer'))
      } else if (operator === undefined || operator === '') errors.push(required(child(path, 'operator')))
      else errors.push(invalid(child(path, 'operator'), operator, 'not a valid selector operator'))
  }
  if (errors.length > 0 || typeof key !== 'string') return { errors }
  return { requirement: { key, operator: operator as SelectorOperator, values }, errors }
}

/** Whether the labels meet every requirement (no requirements: everything matches). */
export function matchesLabels(requirements: readonly Requirement[], labels: Record<string, string> | undefined | null): boolean {
  const has = (k: string): boolean => labels !== undefined && labels !== null && Object.prototype.hasOwnProperty.call(labels, k)
  return requirements.every((r) => {
    const present = has(r.key)
    const value = present ? labels![r.key] : undefined
    switch (r.operator) {
      case 'In':
        return present && r.values.includes(value!)
      case 'NotIn':
        return !present || !r.values.includes(value!)
      case 'Exists':
        return present
      case 'DoesNotExist':
        return !present
      case 'Gt':
      case 'Lt': {
        if (!present || !/^-?[0-9]+$/.test(value!) || !/^-?[0-9]+$/.test(r.values[0] ?? '')) return false
        const a = BigInt(value!)
        const b = BigInt(r.values[0])
        return r.operator === 'Gt' ? a > b : a < b
      }
      default:
        return false
    }
  })
}

/** The canonical string form of requirements (`a=b,c in (x,y),!d`). */
export function labelSelectorToString(requirements: readonly Requirement[]): string {
  return requirements
    .map((r) => {
      switch (r.operator) {
        case 'In':
          return r.values.length === 1 ? `${r.key}=${r.values[0]}` : `${r.key} in (${r.values.join(',')})`
        case 'NotIn':
          return r.values.length === 1 ? `${r.key}!=${r.values[0]}` : `${r.key} notin (${r.values.join(',')})`
        case 'Exists':
          return r.key
        case 'DoesNotExist':
          return `!${r.key}`
        case 'Gt':
          return `${r.key}>${r.values[0]}`
        case 'Lt':
          return `${r.key}<${r.values[0]}`
      }
    })
    .join(',')
}

// ---- field selectors ------------------------------------------------------------------------

export interface FieldRequirement {
  field: string
  operator: '=' | '!='
  value: string
}

/**
 * Parses a field selector: `metadata.name=x,spec.nodeName!=y` (also `==`). Values may escape
 * `\,`, `\=` and `\\` as Kubernetes' fields.EscapeValue writes them. The empty string selects everything.
 */
export function parseFieldSelector(selector: string): FieldRequirement[] {
  const reqs: FieldRequirement[] = []
  if (selector.trim() === '') return reqs
  for (const term of splitUnescaped(selector, ',')) {
    const m = /^([^=!]*?)(==|!=|=)(.*)$/s.exec(term)
    if (!m) throw new SelectorParseError(selector, `invalid field selector term "${term}": expected field=value, field==value or field!=value`)
    const field = m[1].trim()
    if (field === '') throw new SelectorParseError(selector, `invalid field selector term "${term}": the field name is empty`)
    reqs.push({ field, operator: m[2] === '!=' ? '!=' : '=', value: unescapeValue(selector, m[3]) })
  }
  return reqs
}

function splitUnescaped(s: string, sep: string): string[] {
  const parts: string[] = []
  let cur = ''
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && i + 1 < s.length) {
      cur += s[i] + s[i + 1]
      i++
    } else if (s[i] === sep) {
      parts.push(cur)
      cur = ''
    } else cur += s[i]
  }
  parts.push(cur)
  return parts
}

function unescapeValue(selector: string, v: string): string {
  let out = ''
  for (let i = 0; i < v.length; i++) {
    if (v[i] === '\\') {
      const n = v[i + 1]
      if (n !== '\\' && n !== ',' && n !== '=') throw new SelectorParseError(selector, `invalid escape sequence "\\${n ?? ''}" in "${v}"`)
      out += n
      i++
    } else if (v[i] === '=' ) throw new SelectorParseError(selector, `invalid field selector value "${v}": '=' must be escaped as '\\='`)
    else out += v[i]
  }
  return out
}

type FieldGetter = (obj: Record<string, any>) => unknown

const COMMON_FIELDS: Record<string, FieldGetter> = {
  'metadata.name': (o) => o.metadata?.name,
  'metadata.namespace': (o) => o.metadata?.namespace,
}

/** The fields Kubernetes lets each kind be selected by, beyond metadata.name and metadata.namespace. */
const KIND_FIELDS: Record<string, Record<string, FieldGetter>> = {
  Pod: {
    'spec.nodeName': (o) => o.spec?.nodeName,
    'spec.restartPolicy': (o) => o.spec?.restartPolicy,
    'spec.schedulerName': (o) => o.spec?.schedulerName,
    'spec.serviceAccountName': (o) => o.spec?.serviceAccountName,
    'spec.hostNetwork': (o) => String(o.spec?.hostNetwork === true),
    'status.phase': (o) => o.status?.phase,
    'status.podIP': (o) => o.status?.podIP,
    'status.nominatedNodeName': (o) => o.status?.nominatedNodeName,
  },
  Event: {
    'involvedObject.kind': (o) => o.involvedObject?.kind,
    'involvedObject.namespace': (o) => o.involvedObject?.namespace,
    'involvedObject.name': (o) => o.involvedObject?.name,
    'involvedObject.uid': (o) => o.involvedObject?.uid,
    'involvedObject.apiVersion': (o) => o.involvedObject?.apiVersion,
    'involvedObject.resourceVersion': (o) => o.involvedObject?.resourceVersion,
    'involvedObject.fieldPath': (o) => o.involvedObject?.fieldPath,
    reason: (o) => o.reason,
    reportingComponent: (o) => o.reportingComponent,
    source: (o) => o.source?.component,
    type: (o) => o.type,
  },
  Node: { 'spec.unschedulable': (o) => String(o.spec?.unschedulable === true) },
  Secret: { type: (o) => o.type },
  Namespace: { 'status.phase': (o) => o.status?.phase },
  ReplicaSet: { 'status.replicas': (o) => String(o.status?.replicas ?? 0) },
  Job: { 'status.successful': (o) => String(o.status?.succeeded ?? 0) },
}

/** The field names a kind can be selected by. */
export function supportedSelectorFields(kind: string): string[] {
  return [...Object.keys(COMMON_FIELDS), ...Object.keys(KIND_FIELDS[kind] ?? {})]
}

function getterFor(kind: string, field: string): FieldGetter | undefined {
  const own = KIND_FIELDS[kind]
  if (own && Object.prototype.hasOwnProperty.call(own, field)) return own[field]
  if (Object.prototype.hasOwnProperty.call(COMMON_FIELDS, field)) return COMMON_FIELDS[field]
  return undefined
}

/** Throws UnsupportedFieldSelectorError when a requirement names a field the kind cannot be selected by. */
export function checkFieldSelector(requirements: readonly FieldRequirement[], kind: string): void {
  for (const r of requirements)
    if (!getterFor(kind, r.field)) throw new UnsupportedFieldSelectorError(r.field, kind, supportedSelectorFields(kind))
}

/**
 * Whether an object meets every field requirement. An absent field reads as the empty string, as
 * in Kubernetes. Throws UnsupportedFieldSelectorError for a field the object's kind does not support.
 */
export function matchesFields(requirements: readonly FieldRequirement[], obj: { kind?: unknown; [k: string]: unknown }): boolean {
  const kind = typeof obj.kind === 'string' ? obj.kind : ''
  return requirements.every((r) => {
    const get = getterFor(kind, r.field)
    if (!get) throw new UnsupportedFieldSelectorError(r.field, kind, supportedSelectorFields(kind))
    const raw = get(obj as Record<string, any>)
    const actual = raw === undefined || raw === null ? '' : String(raw)
    return r.operator === '=' ? actual === r.value : actual !== r.value
  })
}
