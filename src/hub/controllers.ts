// The leader's controllers: the scheduler, the workload controllers, the garbage collector, taint
// evictions and pod CIDRs, with the informers they share, started together and stopped together.

import { KINDS } from '../api/kinds.js'
import type { HubConfig } from '../lib/config.js'
import { nodeCronTimers } from './cron-timers.js'
import { CronJobController } from './cronjob-controller.js'
import { DaemonSetController } from './daemonset-controller.js'
import { DeploymentController } from './deployment-controller.js'
import { EndpointsController } from './endpoints-controller.js'
import { EventRecorder } from './event-recorder.js'
import { GarbageCollector } from './garbage-collector.js'
import type { HubMetrics } from './hub-metrics.js'
import type { HubDeps } from './hub.js'
import { Informer } from './informer.js'
import { JobController } from './job-controller.js'
import { PodCidrAllocator } from './pod-cidr-allocator.js'
import { PvcProtection } from './pvc-protection.js'
import type { Registry } from './registry.js'
import { ReplicaSetController } from './replicaset-controller.js'
import { SchedulerController } from './scheduler-controller.js'
import { StatefulSetController } from './statefulset-controller.js'
import { TaintEvictionController } from './taint-eviction-controller.js'
import { VolumeBinder } from './volume-binder.js'

/** The scheduler, the workload controllers and the informers they read. */
export async function startControllers(registry: Registry, config: HubConfig, deps: HubDeps, stops: Array<() => Promise<void> | void>, metrics: HubMetrics): Promise<void> {
  const kind = (name: string) => KINDS.find((k) => k.kind === name)!
  const pods = new Informer(registry, kind('Pod'))
  const nodes = new Informer(registry, kind('Node'))
  const replicaSets = new Informer(registry, kind('ReplicaSet'))
  const deployments = new Informer(registry, kind('Deployment'))
  const jobs = new Informer(registry, kind('Job'))
  const cronJobs = new Informer(registry, kind('CronJob'))
  const daemonSets = new Informer(registry, kind('DaemonSet'))
  const services = new Informer(registry, kind('Service'))
  const endpoints = new Informer(registry, kind('Endpoints'))
  const statefulSets = new Informer(registry, kind('StatefulSet'))
  const storage = { claims: new Informer(registry, kind('PersistentVolumeClaim')), volumes: new Informer(registry, kind('PersistentVolume')), storageClasses: new Informer(registry, kind('StorageClass')) }
  // What every controller takes: the registry it writes through, an event source of its own, time, logs.
  const common = (component: string) => ({ registry, events: new EventRecorder(registry, deps.clock, deps.logger, { component }), clock: deps.clock, logger: deps.logger })
  const scheduler = new SchedulerController({ ...common('default-scheduler'), pods, nodes, strategy: config.schedulerStrategy, onAttempt: metrics.schedulingAttempt, storage })
  const statefulSetController = new StatefulSetController({ ...common('statefulset-controller'), statefulSets, pods, claims: storage.claims })
  const volumeBinder = new VolumeBinder({ ...common('persistentvolume-controller'), pods, ...storage })
  const pvcProtection = new PvcProtection({ registry, pods, claims: storage.claims, clock: deps.clock, logger: deps.logger })
  const replicaSetController = new ReplicaSetController({ ...common('replicaset-controller'), pods, replicaSets })
  const deploymentController = new DeploymentController({ ...common('deployment-controller'), deployments, replicaSets })
  const cronJobController = new CronJobController({ ...common('cronjob-controller'), cronJobs, jobs, timers: nodeCronTimers(deps.logger) })
  const daemonSetController = new DaemonSetController({ ...common('daemonset-controller'), daemonSets, pods, nodes })
  const jobController = new JobController({ ...common('job-controller'), jobs, pods })
  const endpointsController = new EndpointsController({ registry, services, endpoints, pods, clock: deps.clock, logger: deps.logger })
  const informers = [nodes, pods, replicaSets, deployments, jobs, cronJobs, daemonSets, services, endpoints, statefulSets, storage.claims, storage.volumes, storage.storageClasses]
  // The garbage collector watches every kind that may own or be owned (Events never are), sharing the informers above.
  const collected = KINDS.filter((k) => k.kind !== 'Event').map((k) => informers.find((i) => i.info === k) ?? new Informer(registry, k))
  for (const informer of collected) if (!informers.includes(informer)) informers.push(informer)
  const garbageCollector = new GarbageCollector({ registry, informers: collected, clock: deps.clock, logger: deps.logger })
  // Pods leave nodes with NoExecute taints (node-lifecycle's unreachable one); none during the first grace period after start.
  const taintEviction = new TaintEvictionController({
    ...common('taint-eviction-controller'),
    pods,
    nodes,
    startupHoldMs: config.nodeGracePeriodMs,
    unhealthyZoneThreshold: config.unhealthyZoneThreshold,
    nodeEvictionRatePerSecond: config.nodeEvictionRatePerSecond,
  })
  const podCidrs = new PodCidrAllocator({ ...common('pod-cidr-allocator'), nodes, clusterCidr: config.clusterCidr, nodeCidrMaskSize: config.nodeCidrMaskSize })
  for (const informer of informers) await informer.start()
  podCidrs.start()
  if (deps.schedulerHold) void deps.schedulerHold.then(() => scheduler.start())
  else scheduler.start()
  replicaSetController.start()
  deploymentController.start()
  cronJobController.start()
  daemonSetController.start()
  jobController.start()
  endpointsController.start()
  garbageCollector.start()
  taintEviction.start()
  statefulSetController.start()
  pvcProtection.start()
  await volumeBinder.start()
  stops.push(async () => {
    for (const informer of informers) informer.stop()
    await podCidrs.stop()
    await taintEviction.stop()
    await garbageCollector.stop()
    await jobController.stop()
    await endpointsController.stop()
    await daemonSetController.stop()
    await cronJobController.stop()
    await deploymentController.stop()
    await replicaSetController.stop()
    await statefulSetController.stop()
    await volumeBinder.stop()
    await pvcProtection.stop()
    await scheduler.stop()
  })
}
