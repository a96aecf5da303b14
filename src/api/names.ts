// Name, label and annotation rules, in the words of Kubernetes' apimachinery (validation.go):
// each check returns the list of what is wrong, empty when the value is fine.

import { isIP } from 'node:net'
import type { FieldError } from './types.js'
import { child, invalid, invalidEach, isRecord, required, tooLong, typeInvalid } from './validate-errors.js'

export const DNS1123_LABEL_MAX = 63
export const DNS1123_SUBDOMAIN_MAX = 253
export const DNS1035_LABEL_MAX = 63
export const LABEL_VALUE_MAX = 63
export const QUALIFIED_NAME_MAX = 63
/** Kubernetes' TotalAnnotationSizeLimitB: keys and values together. */
export const ANNOTATIONS_TOTAL_MAX = 256 * 1024

const DNS1123_LABEL_FMT = '[a-z0-9]([-a-z0-9]*[a-z0-9])?'
const DNS1123_SUBDOMAIN_FMT = `${DNS1123_LABEL_FMT}(\\.${DNS1123_LABEL_FMT})*`
const DNS1035_LABEL_FMT = '[a-z]([-a-z0-9]*[a-z0-9])?'
const QUALIFIED_NAME_FMT = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'
const LABEL_VALUE_FMT = `(${QUALIFIED_NAME_FMT})?`

const DNS1123_LABEL_RE = new RegExp(`^${DNS1123_LABEL_FMT}$`)
const DNS1123_SUBDOMAIN_RE = new RegExp(`^${DNS1123_SUBDOMAIN_FMT}$`)
const DNS1035_LABEL_RE = new RegExp(`^${DNS1035_LABEL_FMT}$`)
const QUALIFIED_NAME_RE = new RegExp(`^${QUALIFIED_NAME_FMT}$`)
const LABEL_VALUE_RE = new RegExp(`^${LABEL_VALUE_FMT}$`)

function maxLen(n: number): string {
  return `must be no more than ${n} characters`
}

function regexError(msg: string, fmt: string, examples: string[]): string {
  const ex = examples.map((e) => `'${e}'`).join(',  or ')
  return `${msg} (e.g. ${ex}, regex used for validation is '${fmt}')`
}

export function isDNS1123Label(value: string): string[] {
  const errs: string[] = []
  if (value.length > DNS1123_LABEL_MAX) errs.push(maxLen(DNS1123_LABEL_MAX))
  if (!DNS1123_LABEL_RE.test(value))
    errs.push(regexError("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character", DNS1123_LABEL_FMT, ['my-name', '123-abc']))
  return errs
}

export function isDNS1123Subdomain(value: string): string[] {
  const errs: string[] = []
  if (value.length > DNS1123_SUBDOMAIN_MAX) errs.push(maxLen(DNS1123_SUBDOMAIN_MAX))
  if (!DNS1123_SUBDOMAIN_RE.test(value))
    errs.push(regexError("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character", DNS1123_SUBDOMAIN_FMT, ['example.com']))
  return errs
}

export function isDNS1035Label(value: string): string[] {
  const errs: string[] = []
  if (value.length > DNS1035_LABEL_MAX) errs.push(maxLen(DNS1035_LABEL_MAX))
  if (!DNS1035_LABEL_RE.test(value))
    errs.push(regexError("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character", DNS1035_LABEL_FMT, ['my-name', 'abc-123']))
  return errs
}

/** A qualified name: an optional DNS subdomain prefix and `/`, then a name of at most 63 characters. */
export function isQualifiedName(value: string): string[] {
  const errs: string[] = []
  const parts = value.split('/')
  let name: string
  if (parts.length === 1) name = parts[0]
  else if (parts.length === 2) {
    const [prefix] = parts
    name = parts[1]
    if (prefix.length === 0) errs.push('prefix part must be non-empty')
    else for (const m of isDNS1123Subdomain(prefix)) errs.push(`prefix part ${m}`)
  } else {
    return [
      regexError("a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character", QUALIFIED_NAME_FMT, ['MyName', 'my.name', '123-abc']) +
        " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
    ]
  }
  if (name.length === 0) errs.push('name part must be non-empty')
  else if (name.length > QUALIFIED_NAME_MAX) errs.push(`name part ${maxLen(QUALIFIED_NAME_MAX)}`)
  if (name.length > 0 && !QUALIFIED_NAME_RE.test(name))
    errs.push(
      `name part ${regexError("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character", QUALIFIED_NAME_FMT, ['MyName', 'my.name', '123-abc'])}`,
    )
  return errs
}

export function isValidLabelValue(value: string): string[] {
  const errs: string[] = []
  if (value.length > LABEL_VALUE_MAX) errs.push(maxLen(LABEL_VALUE_MAX))
  if (!LABEL_VALUE_RE.test(value))
    errs.push(
      regexError("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character", LABEL_VALUE_FMT, ['MyValue', 'my_value', '12345']),
    )
  return errs
}

/** Label keys are qualified names. */
export const isLabelKey = isQualifiedName

/** A rule for the name of an object, chosen per kind. */
export type NameRule = (name: string) => string[]

/** Checks a labels map: keys qualified names, values label values; errors at `path` as Kubernetes reports them. */
export function validateLabels(labels: unknown, path: string): FieldError[] {
  if (labels === undefined || labels === null) return []
  if (!isRecord(labels)) return [typeInvalid(path, labels, 'object')]
  const errs: FieldError[] = []
  for (const [k, v] of Object.entries(labels)) {
    errs.push(...invalidEach(path, k, isLabelKey(k)))
    // A null value (YAML `key:` with nothing after it) decodes to "" in Kubernetes.
    if (v === null) continue
    if (typeof v !== 'string') errs.push(typeInvalid(`${path}[${k}]`, v, 'string'))
    else errs.push(...invalidEach(path, v, isValidLabelValue(v)))
  }
  return errs
}

/** Checks an annotations map: keys qualified names (case-insensitive), total size at most 256 KiB. */
export function validateAnnotations(annotations: unknown, path: string): FieldError[] {
  if (annotations === undefined || annotations === null) return []
  if (!isRecord(annotations)) return [typeInvalid(path, annotations, 'object')]
  const errs: FieldError[] = []
  let total = 0
  for (const [k, v] of Object.entries(annotations)) {
    errs.push(...invalidEach(path, k, isQualifiedName(k.toLowerCase())))
    if (v === null) {
      total += Buffer.byteLength(k)
      continue
    }
    if (typeof v !== 'string') errs.push(typeInvalid(`${path}[${k}]`, v, 'string'))
    else total += Buffer.byteLength(v)
    total += Buffer.byteLength(k)
  }
  if (total > ANNOTATIONS_TOTAL_MAX) errs.push(tooLong(path, ANNOTATIONS_TOTAL_MAX))
  return errs
}

/**
 * Checks an object's metadata as Kubernetes' ValidateObjectMeta does: a name (or generateName)
 * following the kind's rule, a namespace (a DNS-1123 label) exactly when the kind is namespaced,
 * labels and annotations.
 */
export function validateObjectMeta(meta: unknown, path: string, namespaced: boolean, nameRule: NameRule): FieldError[] {
  if (meta === undefined || meta === null) return [required(child(path, 'name'), 'name or generateName is required')]
  if (!isRecord(meta)) return [typeInvalid(path, meta, 'object')]
  const errs: FieldError[] = []
  const { name, generateName, namespace } = meta
  if (generateName !== undefined && generateName !== '') {
    if (typeof generateName !== 'string') errs.push(typeInvalid(child(path, 'generateName'), generateName, 'string'))
    // Kubernetes checks the prefix with a trailing dash removed, since a suffix is appended to it.
    else errs.push(...invalidEach(child(path, 'generateName'), generateName, nameRule(generateName.replace(/-$/, ''))))
  }
  if (name === undefined || name === '') {
    if (generateName === undefined || generateName === '') errs.push(required(child(path, 'name'), 'name or generateName is required'))
  } else if (typeof name !== 'string') errs.push(typeInvalid(child(path, 'name'), name, 'string'))
  else errs.push(...invalidEach(child(path, 'name'), name, nameRule(name)))
  if (namespaced) {
    // An empty namespace is filled in from the request path by the API, so it is not required here.
    if (namespace !== undefined && namespace !== '') {
      if (typeof namespace !== 'string') errs.push(typeInvalid(child(path, 'namespace'), namespace, 'string'))
      else errs.push(...invalidEach(child(path, 'namespace'), namespace, isDNS1123Label(namespace)))
    }
  } else if (namespace !== undefined && namespace !== '') {
    errs.push({ field: child(path, 'namespace'), type: 'FieldValueForbidden', message: 'Forbidden: not allowed on this type' })
  }
  errs.push(...validateLabels(meta.labels, child(path, 'labels')))
  errs.push(...validateAnnotations(meta.annotations, child(path, 'annotations')))
  if (meta.finalizers !== undefined && meta.finalizers !== null) {
    if (!Array.isArray(meta.finalizers)) errs.push(typeInvalid(child(path, 'finalizers'), meta.finalizers, 'array'))
    else
      meta.finalizers.forEach((f, i) => {
        if (typeof f !== 'string') errs.push(typeInvalid(`${child(path, 'finalizers')}[${i}]`, f, 'string'))
        else errs.push(...invalidEach(`${child(path, 'finalizers')}[${i}]`, f, isQualifiedName(f)))
      })
  }
  if (meta.generation !== undefined && typeof meta.generation === 'number' && meta.generation < 0)
    errs.push(invalid(child(path, 'generation'), meta.generation, 'must be greater than or equal to 0'))
  return errs
}

/** IsValidPortNum. */
export function isValidPortNum(port: number): string[] {
  return Number.isInteger(port) && port >= 1 && port <= 65535 ? [] : ['must be between 1 and 65535, inclusive']
}

/** IsValidPortName: an IANA_SVC_NAME (RFC 6335): at most 15 characters, a-z, 0-9 and single inner hyphens, one letter at least. */
export function isValidPortName(name: string): string[] {
  const errs: string[] = []
  if (name.length > 15) errs.push('must be no more than 15 characters')
  if (!/^[-a-z0-9]+$/.test(name)) errs.push('must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)')
  else if (!/[a-z]/.test(name)) errs.push('must contain at least one letter (a-z)')
  if (name.includes('--')) errs.push('must not contain consecutive hyphens')
  if (name.startsWith('-') || name.endsWith('-')) errs.push('must not begin or end with a hyphen')
  return errs
}

const ENV_VAR_FMT = '[-._a-zA-Z][-._a-zA-Z0-9]*'
const ENV_VAR_RE = new RegExp(`^${ENV_VAR_FMT}$`)

/** IsEnvVarName. */
export function isEnvVarName(name: string): string[] {
  const errs: string[] = []
  if (!ENV_VAR_RE.test(name))
    errs.push(regexError("a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit", ENV_VAR_FMT, ['my.env-name', 'MY_ENV.NAME', 'MyEnvName1']))
  errs.push(...hasNoRelativePath(name))
  return errs
}

function hasNoRelativePath(name: string): string[] {
  if (name === '.') return ["must not be '.'"]
  if (name === '..') return ["must not be '..'"]
  if (name.startsWith('..')) return ["must not start with '..'"]
  return []
}

const CONFIG_KEY_FMT = '[-._a-zA-Z0-9]+'
const CONFIG_KEY_RE = new RegExp(`^${CONFIG_KEY_FMT}$`)

/** IsConfigMapKey: the keys of ConfigMap and Secret data. */
export function isConfigMapKey(key: string): string[] {
  const errs: string[] = []
  if (key.length > DNS1123_SUBDOMAIN_MAX) errs.push(maxLen(DNS1123_SUBDOMAIN_MAX))
  if (!CONFIG_KEY_RE.test(key)) errs.push(regexError("a valid config key must consist of alphanumeric characters, '-', '_' or '.'", CONFIG_KEY_FMT, ['key.name', 'KEY_NAME', 'key-name']))
  errs.push(...hasNoRelativePath(key))
  return errs
}

/** IsValidIP (v4 or v6). */
export function isValidIP(value: string): string[] {
  return isIP(value) !== 0 ? [] : ['must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)']
}
