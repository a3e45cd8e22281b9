// A cap on the size of MQTT packets a client sends. mqtt-packet (aedes's parser) buffers a packet whole, whatever
// its announced length; this watches the fixed headers as bytes arrive and closes the connection on the first
// packet announced above the cap, before its body is buffered.
import type { Socket } from "node:net";

/** Follows packet boundaries across chunks; calls `tooBig` once with the announced size of an oversized packet. */
export function packetSizeGuard(max: number, tooBig: (size: number) => void): (chunk: Buffer) => void {
  let skip = 0; // bytes of the current packet's body still to come
  let header: number[] = []; // bytes of a fixed header read so far (type byte, then up to 4 length bytes)
  let done = false;
  return (chunk) => {
    let i = 0;
    while (i < chunk.length && !done) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - i);
        skip -= n;
        i += n;
        continue;
      }
      header.push(chunk[i++]!);
      if (header.length === 1) continue;
      const last = header[header.length - 1]!;
      if (last & 0x80 && header.length < 5) continue; // the remaining-length varint goes on
      let length = 0;
      for (let k = header.length - 1; k >= 1; k--) length = length * 128 + (header[k]! & 0x7f);
      const size = header.length + length;
      header = [];
      if (size > max) {
        done = true;
        tooBig(size);
        return;
      }
      skip = length;
    }
  };
}

/** Closes `socket` when its client sends a packet above `max` bytes. */
export function limitPacketSize(socket: Socket, max: number, onClose: (size: number) => void): void {
  // With aedes reading through 'readable', a 'data' listener sees each chunk as it is read, before it is parsed.
  socket.on("data", packetSizeGuard(max, (size) => {
    onClose(size);
    socket.destroy();
  }));
}
