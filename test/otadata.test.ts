import { describe, expect, it } from "vitest";
import {
  activeOtadata,
  decodeEntry,
  encodeEntry,
  espRomCrc32Le,
  isValid,
  makeEntry,
  OtaImgState,
  otaSeqCrc,
  selectOtadata,
  slotOfSeq,
} from "../host-sim/esp/otadata";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("otadata CRC (bootloader_common_ota_select_crc)", () => {
  it.each([
    [1, 0x4743989a],
    [2, 0x55f63774],
    [3, 0xed4a5011],
    [4, 0x709d68a8],
    [0xffffffff, 0x2144df1c],
  ])("seq %i → 0x%s", (seq, crc) => {
    expect(otaSeqCrc(seq)).toBe(crc);
  });

  it("is not zlib's crc32 with init 0", () => {
    const le1 = new Uint8Array([1, 0, 0, 0]);
    expect(espRomCrc32Le(0, le1)).toBe(0x99f8b879);
    expect(otaSeqCrc(1)).not.toBe(0x99f8b879);
  });
});

describe("esp_ota_select_entry_t", () => {
  it("encodes the reference's example entries byte for byte", () => {
    expect(hex(encodeEntry(makeEntry(1, OtaImgState.NEW)))).toBe("01000000" + "ff".repeat(20) + "00000000" + "9a984347");
    expect(hex(encodeEntry(makeEntry(2, OtaImgState.VALID)))).toBe("02000000" + "ff".repeat(20) + "02000000" + "7437f655");
  });

  it("round-trips and keeps the unused seq_label", () => {
    const label = new Uint8Array(20).map((_, i) => i);
    const e = makeEntry(7, OtaImgState.PENDING_VERIFY, label);
    expect(decodeEntry(encodeEntry(e))).toEqual(e);
  });

  it("counts NEW, PENDING_VERIFY, VALID and UNDEFINED as valid; INVALID, ABORTED, blank and bad CRC not", () => {
    for (const s of [OtaImgState.NEW, OtaImgState.PENDING_VERIFY, OtaImgState.VALID, OtaImgState.UNDEFINED]) {
      expect(isValid(makeEntry(1, s))).toBe(true);
    }
    expect(isValid(makeEntry(1, OtaImgState.INVALID))).toBe(false);
    expect(isValid(makeEntry(1, OtaImgState.ABORTED))).toBe(false);
    expect(isValid(decodeEntry(new Uint8Array(32).fill(0xff)))).toBe(false);
    expect(isValid({ ...makeEntry(1, OtaImgState.VALID), crc: otaSeqCrc(2) })).toBe(false);
  });

  it("selects the valid entry with the highest seq, ties to index 0", () => {
    const a = makeEntry(3, OtaImgState.VALID);
    const b = makeEntry(4, OtaImgState.NEW);
    expect(activeOtadata([a, b])).toBe(1);
    expect(activeOtadata([b, a])).toBe(0);
    expect(activeOtadata([a, { ...b, state: OtaImgState.ABORTED }])).toBe(0);
    expect(activeOtadata([a, a])).toBe(0);
    expect(selectOtadata([a, b], [true, true], false)).toBe(0);
    expect(activeOtadata([{ ...a, state: OtaImgState.INVALID }, { ...b, state: OtaImgState.ABORTED }])).toBe(-1);
  });

  it("maps seq to slot as (seq - 1) % N in uint32 arithmetic", () => {
    expect([1, 2, 3, 4].map((s) => slotOfSeq(s, 2))).toEqual([0, 1, 0, 1]);
    expect(slotOfSeq(0, 2)).toBe(1); // 0xFFFFFFFF % 2
  });
});
