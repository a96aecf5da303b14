// PersistentVolumeClaim, PersistentVolume and StorageClass (Kubernetes' core and storage validation,
// the parts Bramble acts on), and a StatefulSet's volumeClaimTemplates, which are claims too.

import { isDNS1123Subdomain, validateObjectMeta } from './names.js'
import type { FieldError } from './types.js'
import { child, index, invalid, isRecord, notSupported, required } from './validate-errors.js'
import { Quantity } from './quantity.js'
import { validateQuantity } from './validate-pod.js'

const rec = (v: unknown): Record<string, unknown> | undefined => (isRecord(v) ? v : undefined)
const absent = (v: unknown) => v === undefined || v === null || v === ''

export const ACCESS_MODES = ['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOncePod'] as const
export const RECLAIM_POLICIES = ['Retain', 'Delete', 'Recycle'] as const
export const BINDING_MODES = ['Immediate', 'WaitForFirstConsumer'] as const
const VOLUME_MODES = ['Filesystem', 'Block']

function validateAccessModes(errs: FieldError[], modes: unknown, path: string): void {
  if (!Array.isArray(modes) || modes.length === 0) {
    errs.push(required(path, 'at least 1 access mode is required'))
    return
  }
  modes.forEach((m, i) => {
    if (!(ACCESS_MODES as readonly unknown[]).includes(m)) errs.push(notSupported(index(path, i), m, ACCESS_MODES))
  })
}

function validateVolumeMode(errs: FieldError[], mode: unknown, path: string): void {
  if (!absent(mode) && !VOLUME_MODES.includes(mode as string)) errs.push(notSupported(path, mode, VOLUME_MODES))
}

export function validateClaimSpec(spec: unknown, path: string): FieldError[] {
  const errs: FieldError[] = []
  const s = rec(spec)
  if (!s) return spec === undefined || spec === null ? [required(child(path, 'accessModes'), 'at least 1 access mode is required'), required(child(path, 'resources.requests[storage]'))] : []
  validateAccessModes(errs, s.accessModes, child(path, 'accessModes'))
  const storage = rec(rec(s.resources)?.requests)?.storage
  const sp = `${child(child(path, 'resources'), 'requests')}[storage]`
  if (absent(storage)) errs.push(required(sp))
  else {
    const q = validateQuantity(errs, storage, sp)
    if (q && q.cmp(Quantity.zero()) <= 0) errs.push(invalid(sp, storage, 'must be greater than zero'))
  }
  if (typeof s.storageClassName === 'string' && s.storageClassName !== '')
    for (const msg of isDNS1123Subdomain(s.storageClassName)) errs.push(invalid(child(path, 'storageClassName'), s.storageClassName, msg))
  validateVolumeMode(errs, s.volumeMode, child(path, 'volumeMode'))
  return errs
}

export function validatePersistentVolumeClaim(o: Record<string, unknown>): FieldError[] {
  return validateClaimSpec(o.spec, 'spec')
}

export function validatePersistentVolume(o: Record<string, unknown>): FieldError[] {
  const errs: FieldError[] = []
  const s = rec(o.spec)
  if (!s) return o.spec === undefined || o.spec === null ? [required('spec.capacity'), required('spec', 'must specify a volume type')] : []
  validateAccessModes(errs, s.accessModes, 'spec.accessModes')
  const storage = rec(s.capacity)?.storage
  if (absent(storage)) errs.push(required('spec.capacity[storage]'))
  else validateQuantity(errs, storage, 'spec.capacity[storage]')
  const hostPath = rec(s.hostPath)
  if (!hostPath && !rec(s.local)) errs.push(required('spec', 'must specify a volume type (Bramble serves hostPath)'))
  if (hostPath && (typeof hostPath.path !== 'string' || hostPath.path === '')) errs.push(required('spec.hostPath.path'))
  else if (hostPath && (hostPath.path as string).split('/').includes('..')) errs.push(invalid('spec.hostPath.path', hostPath.path, "must not contain '..'"))
  const policy = s.persistentVolumeReclaimPolicy
  if (!absent(policy) && !(RECLAIM_POLICIES as readonly unknown[]).includes(policy)) errs.push(notSupported('spec.persistentVolumeReclaimPolicy', policy, RECLAIM_POLICIES))
  validateVolumeMode(errs, s.volumeMode, 'spec.volumeMode')
  const claimRef = rec(s.claimRef)
  if (claimRef && absent(claimRef.name)) errs.push(required('spec.claimRef.name'))
  return errs
}

export function validateStorageClass(o: Record<string, unknown>): FieldError[] {
  const errs: FieldError[] = []
  if (absent(o.provisioner)) errs.push(required('provisioner'))
  if (!absent(o.reclaimPolicy) && !['Retain', 'Delete'].includes(o.reclaimPolicy as string)) errs.push(notSupported('reclaimPolicy', o.reclaimPolicy, ['Delete', 'Retain']))
  if (!absent(o.volumeBindingMode) && !(BINDING_MODES as readonly unknown[]).includes(o.volumeBindingMode))
    errs.push(notSupported('volumeBindingMode', o.volumeBindingMode, BINDING_MODES))
  return errs
}

/** `spec.volumeClaimTemplates`: each a claim with a name, names unique. */
export function validateClaimTemplates(errs: FieldError[], templates: unknown, path: string): void {
  if (templates === undefined || templates === null) return
  if (!Array.isArray(templates)) return
  const names = new Set<string>()
  templates.forEach((t, i) => {
    const tp = index(path, i)
    const meta = rec(rec(t)?.metadata) ?? {}
    errs.push(...validateObjectMeta({ ...meta, namespace: undefined }, child(tp, 'metadata'), false, isDNS1123Subdomain))
    if (typeof meta.name === 'string') {
      if (names.has(meta.name)) errs.push({ field: child(child(tp, 'metadata'), 'name'), type: 'FieldValueDuplicate', message: `Duplicate value: ${JSON.stringify(meta.name)}`, value: meta.name })
      names.add(meta.name)
    }
    errs.push(...validateClaimSpec(rec(t)?.spec, child(tp, 'spec')))
  })
}
