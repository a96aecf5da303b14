// Name, label and annotation rules, in the words of Kubernetes' apimachinery (validation.go):
// each check returns the list of what is wrong, empty when the value is fine.

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
