// The delta patch format on its own: the server's builder and the device's reader agree byte for byte whatever
// the chunking; the reader resumes from any position it reports (as the device does after a reboot);
// malformed patches are refused; the patch is clearly smaller for a minor change and not offered otherwise.
import { describe, expect, it } from "vitest";
import type { PatchOutput, PatchPosition } from "../device/protocol/delta";
import { encodeHeader, encodeOp, OP_COPY, OP_END, OP_INSERT, PatchFormatError, PatchReader } from "../device/protocol/delta";
import { buildAppImage } from "../esp-image/app-image";
import { minorChange } from "../esp-image/minor-change";
import { applyPatch, buildPatch, patchRebuilds } from "../server-stub/delta/diff";

const base = buildAppImage({ version: "1.0.0", size: 200 * 1024 });
const next = minorChange(base, "1.1.0", 3);

/** A device-like output: a `sector`-byte buffer; at each full buffer the reader's position is recorded. */
function sectorOutput(old: Uint8Array, size: number, sector: number, reader: () => PatchReader, at0 = 0, image = new Uint8Array(size)) {
  let at = at0;
  let fill = 0;
  const snapshots: { offset: number; position: PatchPosition }[] = [];
  const out: PatchOutput = {
    room: () => sector - fill,
    copy(from, length) {
      image.set(old.subarray(from, from + length), at + fill);
      fill += length;
    },
    insert(bytes) {
      image.set(bytes, at + fill);
      fill += bytes.length;
    },
    settled() {
      if (fill < sector) return;
      at += fill;
      fill = 0;
      snapshots.push({ offset: at, position: reader().position() });
    },
  };
  return { out, image, snapshots, end: () => at + fill };
}

describe("delta patch format", () => {
  it("the device's reader rebuilds the target from the builder's patch, whatever the chunk size", () => {
    const patch = buildPatch(base, next);
    for (const chunk of [1, 7, 512, 4096, patch.length]) {
      expect(Buffer.compare(applyPatch(base, patch, next.length, chunk), next), `chunk ${chunk}`).toBe(0);
    }
  });

  it("resumes from any sector position it reported, with the rest of the patch", () => {
    const patch = buildPatch(base, next);
    let reader!: PatchReader;
    reader = new PatchReader(base.length, next.length);
    const first = sectorOutput(base, next.length, 4096, () => reader);
    for (let p = 0; p < patch.length; p += 1000) reader.feed(patch.subarray(p, p + 1000), first.out);
    expect(first.snapshots.length).toBeGreaterThan(40);
    for (const snap of first.snapshots.filter((_, k) => k % 5 === 0)) {
      // A reboot: the image up to the snapshot is in flash; the patch is asked for again from its position.
      const image = new Uint8Array(next.length);
      image.set(first.image.subarray(0, snap.offset));
      let again!: PatchReader;
      again = new PatchReader(base.length, next.length, snap.position);
      const rest = sectorOutput(base, next.length, 4096, () => again, snap.offset, image);
      again.feed(patch.subarray(snap.position.patchOffset), rest.out);
      expect(rest.end()).toBe(next.length);
      expect(again.ended).toBe(true);
      expect(Buffer.compare(image, next), `resumed at ${snap.offset}`).toBe(0);
    }
  });

  it("refuses malformed patches", () => {
    const ops = (build: (o: number[]) => void) => {
      const o: number[] = [];
      build(o);
      return Uint8Array.from([...encodeHeader(100, base.length), ...o]);
    };
    const bad: [string, Uint8Array, RegExp][] = [
      ["bad magic", Uint8Array.from([0, 0, 0, 0, ...encodeHeader(100, 1).subarray(4)]), /magic/],
      ["wrong target size", encodeHeader(99, base.length), /builds 99 bytes/],
      ["base larger than the old image", encodeHeader(100, base.length + 1), /base/],
      ["unknown operation", ops((o) => o.push(9)), /unknown operation 9/],
      ["COPY past the base", ops((o) => encodeOp(o, OP_COPY, 10, base.length - 5)), /past the base/],
      ["empty operation", ops((o) => encodeOp(o, OP_INSERT, 0)), /empty/],
      ["bytes after the end", ops((o) => o.push(OP_END, OP_END)), /after the end/],
    ];
    for (const [label, patch, message] of bad) {
      let error: unknown = null;
      try {
        applyPatch(base, patch, 100, 3);
      } catch (e) {
        error = e;
      }
      expect([label, error instanceof PatchFormatError && message.test(error.message)], String(error)).toEqual([label, true]);
    }
    // Well-formed but short of the target, and a target overrun: the in-memory applier refuses both.
    expect(() => applyPatch(base, ops((o) => (encodeOp(o, OP_COPY, 50, 0), o.push(OP_END))), 100)).toThrow(/ended after 50 of 100/);
    expect(patchRebuilds(base, ops((o) => (encodeOp(o, OP_COPY, 150, 0), o.push(OP_END))), next.subarray(0, 100))).toBe(false);
  });

  it("a minor change makes a patch far below the image; unrelated images do not", () => {
    const patch = buildPatch(base, next);
    expect(patch.length / next.length).toBeLessThan(0.1);
    const other = buildAppImage({ version: "2.0.0", size: 200 * 1024 });
    const unrelated = buildPatch(base, other);
    expect(patchRebuilds(base, unrelated, other)).toBe(true);
    expect(unrelated.length / other.length).toBeGreaterThan(0.7); // not offered (the seed's 70 % rule)
  });
});
