import t from 'tap'
import { DockerRuntime } from '../../src/agent/docker-runtime.js'
import { LABELS } from '../../src/agent/container-runtime.js'
import { PAUSE_COMMAND } from '../../src/agent/pod-pause-image.js'
import { containerRuntimeContract } from '../contract/container-runtime.js'
import { dockerClient, dockerUnavailable, removeClusterContainers, testClusterId } from '../helpers/docker.js'
import { ensureBusyboxImage } from '../helpers/busybox-image.js'

const docker = dockerClient()
const unavailable = await dockerUnavailable(docker)
if (unavailable) {
  t.plan(0, unavailable)
} else {
  const image = await ensureBusyboxImage(docker)
  const clusterId = testClusterId()
  t.teardown(() => removeClusterContainers(docker, clusterId))
  const runtime = new DockerRuntime(docker)

  containerRuntimeContract(t, 'Docker', async () => ({
    runtime,
    image,
    unpullableImage: '127.0.0.1:1/bramble/nothing:1',
    clusterId,
    close: () => removeClusterContainers(docker, clusterId),
  }))

  t.test('Docker: exec returns the exit code and output; logs are rotated and readable', async (t) => {
    const id = await runtime.create({
      name: `bramble-exec-${clusterId}`,
      image,
      cmd: ['/bin/sh', '-c', 'echo hello from the container; exec ' + PAUSE_COMMAND.map((a) => `'${a}'`).join(' ')],
      labels: { [LABELS.cluster]: clusterId },
      log: { maxSize: '1m', maxFile: 2 },
      memoryBytes: 64 * 1024 * 1024,
      nanoCpus: 500_000_000,
    })
    await runtime.start(id)
    t.same(await runtime.exec(id, ['sh', '-c', 'echo out; exit 3']), { exitCode: 3, output: 'out\n' })
    t.equal((await runtime.exec(id, ['true'])).exitCode, 0)
    t.same(await runtime.exec(id, ['sh', '-c', 'echo to-stderr >&2']), { exitCode: 0, output: 'to-stderr\n' }, 'stderr is part of the output')
    const big = await runtime.exec(id, ['sh', '-c', 'i=0; while [ $i -lt 3000 ]; do echo 0123456789; i=$((i+1)); done'])
    t.equal(big.output.length, 10 * 1024, 'output is cut at 10 KiB, as Kubernetes keeps of a probe')
    t.equal(big.exitCode, 0, 'a long output still yields the exit code')
    await t.rejects(runtime.exec(id, ['sleep', '5'], { timeoutMs: 300 }), /timed out after 300 ms/, 'a command past its timeout is abandoned')
    await t.rejects(runtime.exec('no-such-container-' + clusterId, ['true']), { code: 'BRAMBLE_AGENT_CONTAINER_NOT_FOUND' })
    for (let i = 0; i < 20; i++) t.equal((await runtime.exec(id, ['true'])).exitCode, 0, `exec ${i} on a kept-alive connection`)
    const inspected = await docker.getContainer(id).inspect()
    t.same(inspected.HostConfig.LogConfig, { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '2' } })
    t.equal(inspected.HostConfig.Memory, 64 * 1024 * 1024)
    t.equal(inspected.HostConfig.NanoCpus, 500_000_000)
    t.same(inspected.HostConfig.RestartPolicy?.Name, 'no')
    const text = await new Promise<string>(async (resolve) => {
      let s = ''
      const logs = await runtime.logs(id, { tail: 10 })
      logs.on('data', (c) => (s += c))
      logs.on('end', () => resolve(s))
    })
    t.equal(text, 'hello from the container\n')
  })
}
