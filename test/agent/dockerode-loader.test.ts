// dockerode without its gRPC and ssh2 code loaded until something uses them.

import { createRequire } from 'node:module'
import t from 'tap'
import { loadDockerode } from '../../src/agent/dockerode-loader.js'

const require = createRequire(import.meta.url)

t.test('loads dockerode without loading gRPC or ssh2, which stay usable on first use', async (t) => {
  const heavy = (name: string) => Object.keys(require.cache).some((f) => f.includes(`/node_modules/${name}/`))
  if (heavy('@grpc/grpc-js') || heavy('ssh2')) {
    t.comment('another test in this process loaded dockerode eagerly first; nothing to observe here')
    return
  }
  const Dockerode = loadDockerode()
  t.type(Dockerode, 'function')
  t.equal(typeof new Dockerode({ socketPath: '/nonexistent.sock' }).listContainers, 'function')
  t.notOk(heavy('@grpc/grpc-js'), 'gRPC is not loaded')
  t.notOk(heavy('ssh2'), 'ssh2 is not loaded')
  t.equal(loadDockerode(), Dockerode, 'loaded once')
})
