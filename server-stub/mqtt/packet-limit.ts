// A cap on the size of MQTT packets a client sends. mqtt-packet (aedes's parser) buffers a packet whole, whatever
// its announced length; this sits between the socket and the broker, follows the fixed headers as bytes arrive,
// and on the first packet announced above the cap passes on only the bytes before it and closes the connection.
import type { Socket } from "node:net";
import { Duplex, Transform } from "node:stream";

/** Follows packet boundaries across chunks; returns where in `chunk` an oversized packet starts (-1: none), with its size. */
export function packetSizeGuard(max: number): (chunk: Buffer) => { at: number; size: number } | null {
  let skip = 0; // bytes of the current packet's body still to come
  let header: number[] = []; // bytes of a fixed header read so far (type byte, then up to 4 length bytes)
  let headerAt = 0; // where the header being read started in the current chunk (0 when it began in an earlier one)
  return (chunk) => {
    let i = 0;
    while (i < chunk.length) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - i);
        skip -= n;
        i += n;
        continue;
      }
      if (header.length === 0) headerAt = i;
      header.push(chunk[i++]!);
      if (header.length === 1) continue;
      if (header[header.length - 1]! & 0x80 && header.length < 5) continue; // the remaining-length varint goes on
      let length = 0;
      for (let k = header.length - 1; k >= 1; k--) length = length * 128 + (header[k]! & 0x7f);
      const size = header.length + length;
      header = [];
      if (size > max) return { at: headerAt, size };
      skip = length;
    }
    headerAt = 0;
    return null;
  };
}

/** The stream the broker should read: `socket`'s bytes up to the first packet above `max`, which closes it. */
export function limitPacketSize(socket: Socket, max: number, onTooBig: (size: number) => void): Duplex {
  const guard = packetSizeGuard(max);
  let over = false;
  const checked = new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (over) return done();
      const hit = guard(chunk);
      if (!hit) return done(null, chunk);
      over = true;
      if (hit.at > 0) this.push(chunk.subarray(0, hit.at));
      onTooBig(hit.size);
      socket.destroy();
      done();
    },
  });
  socket.pipe(checked);
  const duplex = Duplex.from({ readable: checked, writable: socket });
  socket.once("close", () => duplex.destroy());
  return duplex;
}
