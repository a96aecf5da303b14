// `describe` text: sections a person reads, secrets never shown.

import t from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { describeObject } from '../../src/cli/describe-format.js'

const meta = (name: string) => ({ name, namespace: 'default', creationTimestamp: '2025-01-01T00:00:00Z' })

t.test('labels and annotations align under their headers; none prints <none>', async (t) => {
  const text = describeObject({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { ...meta('cfg'), labels: { a: '1', b: '2' } }, data: { 'app.conf': 'x=1\n' } } as KubeObject, [])
  t.equal(
    text,
    [
      'Name:               cfg',
      'Namespace:          default',
      'Labels:             a=1',
      '                    b=2',
      'Annotations:        <none>',
      'CreationTimestamp:  2025-01-01T00:00:00Z',
      'Data:',
      '  app.conf:  4 bytes',
      'Events:             <none>',
      '',
    ].join('\n'),
  )
})

t.test('a secret shows the size of each key and never a value', async (t) => {
  const secret = { apiVersion: 'v1', kind: 'Secret', metadata: meta('creds'), type: 'Opaque', data: { password: Buffer.from('hunter22').toString('base64') } } as KubeObject
  const text = describeObject(secret, [])
  t.match(text, /^ {2}password: {2}8 bytes$/m)
  t.notMatch(text, /hunter22|aHVudGVyMjI/)
})

t.test('a pod lists its node, status, IP and containers', async (t) => {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: meta('web-1'),
    spec: { nodeName: 'pi-1', containers: [{ name: 'web', image: 'nginx', ports: [{ containerPort: 80 }] }] },
    status: { phase: 'Running', podIP: '10.42.0.5', containerStatuses: [{ name: 'web', ready: true, restartCount: 2, state: { running: {} } }] },
  } as KubeObject
  const text = describeObject(pod, [])
  t.match(text, /^Node:\s+pi-1$/m)
  t.match(text, /^Status:\s+Running$/m)
  t.match(text, /^IP:\s+10\.42\.0\.5$/m)
  t.match(text, /^ {2}web:\n {4}Image:\s+nginx$/m)
  t.match(text, /^ {4}Restart Count:\s+2$/m)
})

t.test("a claim shows its status (Terminating once deleted), volume, finalizers and the pods that use it", async (t) => {
  const claim = {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { ...meta('data'), deletionTimestamp: '2025-01-01T00:00:09Z', finalizers: ['kubernetes.io/pvc-protection'] },
    spec: { storageClassName: 'local-path', volumeName: 'pvc-1', volumeMode: 'Filesystem' },
    status: { phase: 'Bound', capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'] },
  } as KubeObject
  const text = describeObject(claim, [], Date.now(), { usedBy: ['db-0', 'backup'] })
  t.match(text, /^StorageClass:\s+local-path$/m)
  t.match(text, /^Status:\s+Terminating$/m)
  t.match(text, /^Volume:\s+pvc-1$/m)
  t.match(text, /^Finalizers:\s+\[kubernetes\.io\/pvc-protection\]$/m)
  t.match(text, /^Capacity:\s+1Gi$/m)
  t.match(text, /^Access Modes:\s+RWO$/m)
  t.match(text, /^Used By:\s+db-0, backup$/m)
  t.match(describeObject({ ...claim, metadata: meta('data') }, []), /^Status:\s+Bound$[\s\S]*^Used By:\s+<none>$/m)
})

t.test('events follow as a table', async (t) => {
  const event = { apiVersion: 'v1', kind: 'Event', metadata: meta('e1'), type: 'Warning', reason: 'FailedScheduling', message: 'no node fits', source: { component: 'scheduler' }, lastTimestamp: '2025-01-01T00:00:01Z' } as KubeObject
  const text = describeObject({ apiVersion: 'v1', kind: 'Pod', metadata: meta('p') } as KubeObject, [event], Date.parse('2025-01-01T00:00:46Z'))
  t.match(text, /^Events:\n {2}Type +Reason +Age +From +Message\n {2}-{4} +-{6}/m)
  t.match(text, /^ {2}Warning +FailedScheduling +45s +scheduler +no node fits$/m)
})

t.test('events are listed oldest first by last time seen, a repeated one with its count and span', async (t) => {
  const event = (name: string, reason: string, first: string, last: string, count: number) =>
    ({ apiVersion: 'v1', kind: 'Event', metadata: meta(name), type: 'Normal', reason, message: reason, source: { component: 'bramble-agent' }, firstTimestamp: first, lastTimestamp: last, count }) as KubeObject
  const now = Date.parse('2025-01-01T01:00:00Z')
  const text = describeObject({ apiVersion: 'v1', kind: 'Pod', metadata: meta('p') } as KubeObject, [event('b', 'BackOff', '2025-01-01T00:10:00Z', '2025-01-01T00:58:00Z', 5), event('a', 'Scheduled', '2025-01-01T00:05:00Z', '2025-01-01T00:05:00Z', 1)], now)
  const lines = text.split('\n').filter((l) => /^ {2}Normal/.test(l))
  t.equal(lines.length, 2)
  t.match(lines[0], /^ {2}Normal +Scheduled +55m +bramble-agent +Scheduled$/)
  t.match(lines[1], /^ {2}Normal +BackOff +2m \(x5 over 50m\) +bramble-agent +BackOff$/)
})

t.test('an object without events says <none>', async (t) => {
  t.match(describeObject({ apiVersion: 'v1', kind: 'Pod', metadata: meta('p') } as KubeObject, []), /^Events: +<none>$/m)
})

t.test("a waiting container's message is shown under its state: how far its image pull got", async (t) => {
  const message = 'Pulling image "127.0.0.1:5000/app:1": 1 of 3 layers, 2.0 MB of 9.5 MB'
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: meta('app'),
    spec: { containers: [{ name: 'app', image: '127.0.0.1:5000/app:1' }] },
    status: { phase: 'Pending', containerStatuses: [{ name: 'app', ready: false, restartCount: 0, state: { waiting: { reason: 'ContainerCreating', message } } }] },
  } as KubeObject
  const text = describeObject(pod, [])
  t.match(text, /^ {4}State:\s+Waiting \(ContainerCreating\)\n {6}Message:\s+Pulling image "127\.0\.0\.1:5000\/app:1": 1 of 3 layers, 2\.0 MB of 9\.5 MB$/m)
})
