// What an exec or port-forward session talks to on the node. exec: a process started in the
// container through the Engine API, its stdin, stdout and stderr on the hijacked connection of
// `POST /exec/{id}/start` (8-byte frame headers before each stdout or stderr chunk unless it has a
// TTY), its exit code read back once the stream ends. port-forward: a TCP connection from the node
// to the pod's IP and port (the node reaches its own pods' bridge; a hostNetwork pod is on
// 127.0.0.1).

import type Docker from 'dockerode'
import { connect, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'

/** Output channels, as Kubernetes' remote command protocol numbers them. */
export const STDOUT = 1
export const STDERR = 2

export interface TargetEvents {
  output(channel: number, data: Buffer): void
  /** Once: the process exited (with its code) or the connection ended; `error` when it failed. */
  end(result: { exitCode?: number; error?: string }): void
}

export interface StreamTarget {
  /** Input (stdin, or the bytes for the pod's port); `done` once written out. */
  write(data: Buffer, done: () => void): void
  /** No more input (stdin closed, the client half-closed its connection). */
  endInput(): void
  resize(width: number, height: number): void
  /** Stops and restarts reading output: the session's window is full, then open again. */
  pause(): void
  resume(): void
  /** Tears the target down (the session was cancelled). */
  close(): void
}

export interface ExecRequest {
  containerId: string
  command: string[]
  stdin: boolean
  tty: boolean
}

export async function openExec(docker: Docker, req: ExecRequest, events: TargetEvents): Promise<StreamTarget> {
  const exec = await docker.getContainer(req.containerId).exec({
    Cmd: req.command,
    AttachStdin: req.stdin,
    AttachStdout: true,
    AttachStderr: !req.tty,
    Tty: req.tty,
  })
  const stream = (await exec.start({ hijack: true, stdin: req.stdin, Tty: req.tty })) as Duplex
  let ended = false
  const finish = async (error?: string) => {
    if (ended) return
    ended = true
    if (error) return events.end({ error })
    // The engine may still call the process running for a moment after its output closed.
    for (let tries = 0; tries < 50; tries++) {
      const info = await exec.inspect().catch(() => undefined)
      if (info && !info.Running) return events.end({ exitCode: info.ExitCode ?? 0 })
      await new Promise((r) => setTimeout(r, 100))
    }
    events.end({ error: 'the process ended its output but the engine still reports it running' })
  }
  let pending: Buffer = Buffer.alloc(0)
  stream.on('data', (chunk: Buffer) => {
    if (req.tty) return events.output(STDOUT, chunk)
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk
    while (pending.length >= 8) {
      const size = pending.readUInt32BE(4)
      if (pending.length < 8 + size) break
      const channel = pending[0] === 2 ? STDERR : STDOUT
      events.output(channel, pending.subarray(8, 8 + size))
      pending = pending.subarray(8 + size)
    }
  })
  stream.on('end', () => void finish())
  stream.on('close', () => void finish())
  stream.on('error', (err) => void finish(`the exec stream failed: ${err.message}`))
  return {
    write: (data, done) => (req.stdin && stream.writable ? stream.write(data, () => done()) : done()),
    endInput: () => {
      if (req.stdin && stream.writable) stream.end()
    },
    resize: (width, height) => {
      if (req.tty) exec.resize({ w: width, h: height }).catch(() => {})
    },
    pause: () => stream.pause(),
    resume: () => stream.resume(),
    close: () => stream.destroy(),
  }
}

export function openPortForward(host: string, port: number, events: TargetEvents): Promise<StreamTarget> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host, port, allowHalfOpen: true })
    let connected = false
    let ended = false
    const end = (error?: string) => {
      if (ended) return
      ended = true
      events.end(error ? { error } : {})
    }
    socket.once('connect', () => {
      connected = true
      resolve({
        write: (data, done) => (socket.writable ? socket.write(data, () => done()) : done()),
        endInput: () => socket.end(),
        resize: () => {},
        pause: () => socket.pause(),
        resume: () => socket.resume(),
        close: () => socket.destroy(),
      })
    })
    socket.on('data', (chunk: Buffer) => events.output(STDOUT, chunk))
    socket.on('end', () => {
      end()
      socket.end()
    })
    socket.on('close', () => end())
    socket.on('error', (err) => {
      const message = `could not reach port ${port} of the pod at ${host}: ${err.message}`
      if (connected) end(message)
      else reject(new Error(message))
    })
  })
}
