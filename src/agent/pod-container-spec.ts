// From a desired Pod (and the ConfigMaps and Secrets it uses) to engine container specs: the
// sandbox, app and init containers with their labels, env, DNS, mounts and devices. Pure: paths
// come from settings, nothing touches the disk or the engine.

import { createHash } from 'node:crypto'
import { posix } from 'node:path'
import type { KubeObject } from '../api/types.js'
import { Quantity } from '../api/quantity.js'
import { stableJson } from '../lib/stable-json.js'
import { LABELS, type ContainerSpec, type DeviceSpec, type PortSpec } from './container-runtime.js'
import { graceSeconds, PodConfigProblem, podUid, type DesiredPod, type PodSettings } from './desired-pod.js'
import { containerGrant, grantLabel } from './device-allocator.js'
import { PAUSE_COMMAND } from './pod-pause-image.js'
import { securityFields } from './pod-security.js'
import { resolveMounts } from './pod-volumes.js'

export type ContainerRole = 'sandbox' | 'init' | 'app'

export function containerName(pod: KubeObject, container: string, attempt: number): string {
  const uid8 = podUid(pod).replace(/[^a-zA-Z0-9]/g, '').slice(0, 8)
  return `bramble_${pod.metadata.namespace ?? 'default'}_${pod.metadata.name}_${container}_${uid8}_${attempt}`
}

function baseLabels(pod: KubeObject, settings: PodSettings, name: string, role: ContainerRole, attempt: number): Record<string, string> {
  return {
    [LABELS.cluster]: settings.clusterId,
    [LABELS.podNamespace]: pod.metadata.namespace ?? 'default',
    [LABELS.podName]: String(pod.metadata.name),
    [LABELS.podUid]: podUid(pod),
    [LABELS.containerName]: name,
    [LABELS.role]: role,
    [LABELS.attempt]: String(attempt),
    [LABELS.grace]: String(graceSeconds(pod, settings)),
  }
}

/** The spec's hash over everything but the attempt-specific name and labels. */
function withHash(spec: ContainerSpec): ContainerSpec {
  const { name: _name, labels, ...rest } = spec
  const { [LABELS.attempt]: _a, [LABELS.specHash]: _h, ...stable } = labels
  const hash = createHash('sha256').update(stableJson({ ...rest, labels: stable })).digest('hex').slice(0, 16)
  return { ...spec, labels: { ...labels, [LABELS.specHash]: hash } }
}

export function specHash(spec: ContainerSpec): string {
  return spec.labels[LABELS.specHash]
}

/** The sandbox: holds the pod's network namespace and its host ports. */
export function sandboxSpec(d: DesiredPod, settings: PodSettings, attempt: number): ContainerSpec {
  const pod = d.pod
  const ports: PortSpec[] = []
  // On the node's network there is nothing to publish: the ports are the node's already.
  for (const c of pod.spec?.hostNetwork ? [] : (pod.spec?.containers ?? [])) {
    for (const p of c.ports ?? []) {
      ports.push({
        containerPort: p.containerPort,
        protocol: String(p.protocol ?? 'TCP').toLowerCase() === 'udp' ? 'udp' : 'tcp',
        ...(p.hostPort ? { hostPort: p.hostPort } : {}),
        ...(p.hostIP ? { hostIp: p.hostIP } : {}),
      })
    }
  }
  return withHash({
    name: containerName(pod, 'POD', attempt),
    image: settings.pauseImage,
    cmd: PAUSE_COMMAND,
    labels: baseLabels(pod, settings, 'POD', 'sandbox', attempt),
    ports,
    networkMode: pod.spec?.hostNetwork ? 'host' : settings.network,
    hostname: pod.spec?.hostNetwork ? undefined : String(pod.spec?.hostname ?? pod.metadata.name).slice(0, 63),
    ...withDns(podDns(pod, settings.clusterDns)),
    log: settings.log,
  })
}

const withDns = (dns: ContainerSpec['dns']) => (dns ? { dns } : {})

/**
 * The pod's resolv.conf, as the kubelet writes it from dnsPolicy: ClusterFirst (the default) and
 * ClusterFirstWithHostNet use the cluster DNS with the namespace's search path and ndots:5 (a
 * host-network pod under ClusterFirst keeps the node's); Default keeps the node's resolvers;
 * None uses dnsConfig alone. dnsConfig's nameservers, searches and options are added last.
 * Undefined: the engine's default (the node's resolv.conf).
 */
export function podDns(pod: KubeObject, cluster: PodSettings['clusterDns']): ContainerSpec['dns'] {
  const policy = pod.spec?.dnsPolicy ?? 'ClusterFirst'
  const extra = pod.spec?.dnsConfig ?? {}
  const servers: string[] = []
  const search: string[] = []
  const options = new Map<string, string>()
  const useCluster = cluster && (policy === 'ClusterFirstWithHostNet' || (policy === 'ClusterFirst' && !pod.spec?.hostNetwork))
  if (useCluster) {
    const ns = pod.metadata.namespace ?? 'default'
    servers.push(cluster.nameserver)
    search.push(`${ns}.svc.${cluster.domain}`, `svc.${cluster.domain}`, cluster.domain)
    options.set('ndots', 'ndots:5')
  }
  for (const s of extra.nameservers ?? []) servers.push(String(s))
  for (const s of extra.searches ?? []) if (!search.includes(String(s))) search.push(String(s))
  for (const o of extra.options ?? []) if (o?.name) options.set(String(o.name), o.value !== undefined ? `${o.name}:${o.value}` : String(o.name))
  if (servers.length === 0 && search.length === 0 && options.size === 0) return undefined
  return { servers, search, options: [...options.values()] }
}

/** An init or app container, joined to the sandbox's network namespace. */
export function appContainerSpec(
  d: DesiredPod,
  container: any,
  role: 'init' | 'app',
  settings: PodSettings,
  sandboxName: string,
  attempt: number,
): ContainerSpec | PodConfigProblem {
  const pod = d.pod
  const env = resolveEnv(d, container)
  if (env instanceof PodConfigProblem) return env
  const resolved = resolveMounts(d, container, settings)
  if (resolved instanceof PodConfigProblem) return resolved
  const { mounts, devices } = resolved
  const granted = grantedDevices(d, container)
  if (granted instanceof PodConfigProblem) return granted
  devices.push(...granted.devices)
  const labels = baseLabels(pod, settings, container.name, role, attempt)
  if (granted.label) labels[LABELS.devices] = granted.label
  const limits = container.resources?.limits ?? {}
  const requests = container.resources?.requests ?? {}
  if (requests.cpu !== undefined) labels[LABELS.cpuRequest] = String(requests.cpu)
  if (requests.memory !== undefined) labels[LABELS.memoryRequest] = String(requests.memory)
  const spec: ContainerSpec = {
    name: containerName(pod, container.name, attempt),
    image: container.image,
    ...(container.command ? { entrypoint: container.command.map(String) } : {}),
    ...(container.args ? { cmd: container.args.map(String) } : {}),
    env,
    ...(container.workingDir ? { workingDir: container.workingDir } : {}),
    labels,
    mounts,
    networkMode: `container:${sandboxName}`,
    log: settings.log,
    ...securityFields(pod.spec, container),
    ...(devices.length ? { devices } : {}),
    ...(pod.spec?.hostPID === true ? { pidMode: 'host' as const } : {}),
    ...(pod.spec?.hostIPC === true ? { ipcMode: 'host' as const } : {}),
  }
  const cpu = Quantity.tryParse(limits.cpu)
  if (cpu) spec.nanoCpus = Number(cpu.milliValue()) * 1_000_000
  const memory = Quantity.tryParse(limits.memory)
  if (memory) spec.memoryBytes = Number(memory.value())
  return withHash(spec)
}

/** `envFrom` first, then `env` (later entries win), as Kubernetes does. */
export function resolveEnv(d: DesiredPod, container: any): string[] | PodConfigProblem {
  const vars = new Map<string, string>()
  for (const from of container.envFrom ?? []) {
    const prefix = from.prefix ?? ''
    if (from.configMapRef) {
      const cm = d.configMaps[from.configMapRef.name]
      if (!cm) {
        if (from.configMapRef.optional) continue
        return new PodConfigProblem(`configmap "${from.configMapRef.name}" not found`)
      }
      for (const [k, v] of Object.entries(cm.data ?? {})) vars.set(prefix + k, String(v))
    } else if (from.secretRef) {
      const s = d.secrets[from.secretRef.name]
      if (!s) {
        if (from.secretRef.optional) continue
        return new PodConfigProblem(`secret "${from.secretRef.name}" not found`)
      }
      for (const [k, v] of Object.entries(s.data ?? {})) vars.set(prefix + k, decodeBase64(v))
    }
  }
  for (const e of container.env ?? []) {
    if (e.valueFrom?.configMapKeyRef) {
      const ref = e.valueFrom.configMapKeyRef
      const value = (d.configMaps[ref.name]?.data as Record<string, string> | undefined)?.[ref.key]
      if (value === undefined) {
        if (ref.optional) continue
        return new PodConfigProblem(missingKey('configmap', ref.name, ref.key, d.configMaps[ref.name] !== undefined))
      }
      vars.set(e.name, String(value))
    } else if (e.valueFrom?.secretKeyRef) {
      const ref = e.valueFrom.secretKeyRef
      const value = (d.secrets[ref.name]?.data as Record<string, string> | undefined)?.[ref.key]
      if (value === undefined) {
        if (ref.optional) continue
        return new PodConfigProblem(missingKey('secret', ref.name, ref.key, d.secrets[ref.name] !== undefined))
      }
      vars.set(e.name, decodeBase64(value))
    } else if (e.valueFrom) {
      continue // fieldRef and resourceFieldRef are not supported yet
    } else {
      vars.set(e.name, String(e.value ?? ''))
    }
  }
  return [...vars].map(([k, v]) => `${k}=${v}`)
}

function missingKey(kind: string, name: string, key: string, objectExists: boolean): string {
  return objectExists ? `couldn't find key ${key} in ${kind} ${name}` : `${kind} "${name}" not found`
}

/** The devices the pod holds for this container's devices.bramble.dev limits, each at /dev/<name> inside. */
function grantedDevices(d: DesiredPod, container: any): { devices: DeviceSpec[]; label: string } | PodConfigProblem {
  const held = d.host?.devices
  if (!held) return { devices: [], label: '' }
  if ('problem' in held) return new PodConfigProblem(held.problem)
  const grant = containerGrant(d.pod.spec, container.name, held.grant)
  const devices = Object.values(grant)
    .flat()
    .map((hostPath): DeviceSpec => ({ hostPath, containerPath: posix.join('/dev', posix.basename(hostPath)), permissions: 'rwm' }))
  return { devices, label: grantLabel(grant) }
}

function decodeBase64(v: unknown): string {
  return Buffer.from(String(v), 'base64').toString('utf8')
}
