// Per-update allocations: a journal save encodes into the one buffer its store allocated, the portable encoder
// writes into a buffer instead of growing an array, and a progress report does not parse the outbox again.
import { afterEach, describe, expect, it, vi } from "vitest";
import { JournalStore } from "../device/core/journal-store";
import type { Utf8Encoder } from "../device/core/journal-store";
import { Outbox } from "../device/core/outbox";
import { utf8Encode, utf8EncodeInto } from "../device/protocol/utf8";
import { SimRawFlash } from "../host-sim/device/sim-raw-flash";
import type { Partition } from "../host-sim/esp/partition-table";
import { NorFlash, SECTOR_SIZE } from "../host-sim/flash/nor-flash";

const part: Partition = { name: "agent", type: 1, subtype: 6, offset: 0, size: 4 * SECTOR_SIZE, encrypted: false, readonly: false };

afterEach(() => vi.restoreAllMocks());

describe("journal saves", () => {
  it("encode every record into the same buffer (a view of it), which holds what the flash receives", () => {
    const flash = NorFlash.memory(part.size);
    const targets = new Set<ArrayBufferLike>();
    const native = new TextEncoder();
    const encoder: Utf8Encoder = { encodeInto: (text, into) => (targets.add(into.buffer), native.encodeInto(text, into)) };
    const store = new JournalStore(new SimRawFlash(flash, part), 1, encoder);
    for (let i = 0; i < 30; i++) store.set("state", `{"phase":"downloading","offset":${i * 4096},"note":"é€😀"}`);
    expect(targets.size).toBe(1);
    expect(new JournalStore(new SimRawFlash(flash, part), 1).get("state")).toBe(`{"phase":"downloading","offset":${29 * 4096},"note":"é€😀"}`);
  });

  it("store any key, even one Object.prototype holds, as the device's frozen prototype requires", () => {
    const flash = NorFlash.memory(part.size);
    const store = new JournalStore(new SimRawFlash(flash, part), 1);
    store.set("__proto__", "a");
    store.set("constructor", "b");
    expect([store.get("__proto__"), store.get("constructor")]).toEqual(["a", "b"]);
    const reopened = new JournalStore(new SimRawFlash(flash, part), 1);
    expect([reopened.get("__proto__"), reopened.get("constructor"), reopened.get("toString")]).toEqual(["a", "b", undefined]);
  });
});

describe("utf8EncodeInto", () => {
  it("matches Node's UTF-8 and stops before a character that does not fit", () => {
    const text = "aé€😀z";
    const whole = new Uint8Array(16);
    expect(utf8EncodeInto(text, whole)).toEqual({ read: 6, written: 11 });
    expect(Buffer.from(whole.subarray(0, 11)).equals(Buffer.from(text, "utf8"))).toBe(true);
    expect(utf8EncodeInto(text, new Uint8Array(9))).toEqual({ read: 3, written: 6 }); // "aé€": the emoji needs 4 more
    expect(utf8EncodeInto(text, new Uint8Array(10))).toEqual({ read: 5, written: 10 });
    expect(Buffer.from(utf8Encode(text)).equals(Buffer.from(text, "utf8"))).toBe(true);
    expect(() => utf8EncodeInto("a\udc00", new Uint8Array(8))).toThrow(RangeError);
  });
});

describe("outbox", () => {
  it("a progress report (pending, then takeSequence) parses no stored queue", () => {
    const store = new JournalStore(new SimRawFlash(NorFlash.memory(part.size), part), 1);
    const outbox = new Outbox(store, () => Promise.resolve("done"));
    outbox.add("u1", { status: "downloading", timestamp: "t" }); // queued: stored, and read back once
    expect(outbox.pending).toBe(1);
    const parse = vi.spyOn(JSON, "parse");
    const taken: number[] = [];
    for (let i = 0; i < 20; i++) if (outbox.pending === 1) taken.push(outbox.takeSequence());
    expect(parse).not.toHaveBeenCalled();
    expect(taken).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
    // What is stored is what a reboot reads.
    expect(new Outbox(store, () => Promise.resolve("done")).takeSequence()).toBe(33);
  });
});
