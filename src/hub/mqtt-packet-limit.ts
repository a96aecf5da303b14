// Refuses MQTT packets larger than a limit as soon as their fixed header announces the size, so a
// client cannot make the embedded broker buffer up to MQTT's 256 MB maximum packet (Aedes has no
// limit of its own; Mosquitto's is max_packet_size). Only header bytes are read: a packet's body
// is skipped by counting, never copied.

import type { Duplex } from 'node:stream'

/**
 * Watches what `socket` receives (alongside its reader, which keeps control of the flow) and
 * destroys it when a packet's remaining length exceeds `maxBytes()` (asked per packet: the limit
 * may depend on who authenticated) or its length field is malformed.
 */
export function limitPacketSize(socket: Duplex, maxBytes: () => number, onRefused: (reason: string) => void): void {
  let state: 'header' | 'length' | 'body' = 'header'
  let length = 0
  let multiplier = 1
  let remaining = 0
  const refuse = (reason: string) => {
    state = 'header'
    socket.off('data', onData)
    onRefused(reason)
    socket.destroy()
  }
  const onData = (chunk: Buffer) => {
    let i = 0
    while (i < chunk.length) {
      if (state === 'header') {
        i++
        state = 'length'
        length = 0
        multiplier = 1
      } else if (state === 'length') {
        const byte = chunk[i++]
        length += (byte & 0x7f) * multiplier
        multiplier *= 128
        // The remaining length takes at most four bytes (MQTT 3.1.1, 2.2.3).
        if (byte & 0x80) {
          if (multiplier > 128 ** 3) return refuse('malformed remaining length')
          continue
        }
        const limit = maxBytes()
        if (length > limit) return refuse(`a packet of ${length} bytes exceeds the limit of ${limit} bytes`)
        remaining = length
        state = remaining === 0 ? 'header' : 'body'
      } else {
        const skipped = Math.min(remaining, chunk.length - i)
        i += skipped
        remaining -= skipped
        if (remaining === 0) state = 'header'
      }
    }
  }
  socket.on('data', onData)
}
