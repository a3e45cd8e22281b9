// Shared fixtures for the ESP-IDF model tests.
import { buildAppImage } from "../../esp-image/app-image";
import type { Behaviour } from "../../esp-image/app-image";
import { runBootloader } from "../../host-sim/esp/bootloader";
import { EspOta, OTA_WITH_SEQUENTIAL_WRITES } from "../../host-sim/esp/esp-ota";
import { Otadata, stateName } from "../../host-sim/esp/otadata";
import type { Partition } from "../../host-sim/esp/partition-table";
import { findByName, parsePartitionCsv } from "../../host-sim/esp/partition-table";
import { createDeviceFlash } from "../../host-sim/device-flash";
import type { NorFlash } from "../../host-sim/flash/nor-flash";

/** ESP-IDF's partitions_two_ota.csv (factory + two OTA slots), as shipped. */
export const TWO_OTA_CSV = `# Name,   Type, SubType, Offset,   Size, Flags
# Note: if you have increased the bootloader size, make sure to update the offsets to avoid overlap
nvs,      data, nvs,     ,        0x4000,
otadata,  data, ota,     ,        0x2000,
phy_init, data, phy,     ,        0x1000,
factory,  app,  factory, ,        1M,
ota_0,    app,  ota_0,   ,        1M,
ota_1,    app,  ota_1,   ,        1M,
`;

export function twoOtaFlash(): NorFlash {
  return createDeviceFlash({ partitions: parsePartitionCsv(TWO_OTA_CSV, { flashSize: 4 << 20 }) });
}

const imageCache = new Map<string, Uint8Array>();
/** Small valid app images, cached per version/behaviour. */
export function image(version: string, behaviour: Behaviour = "healthy", size = 48 * 1024): Uint8Array {
  const key = `${version}/${behaviour}/${size}`;
  let img = imageCache.get(key);
  if (!img) imageCache.set(key, (img = buildAppImage({ version, behaviour, size })));
  return img;
}

export function part(ota: EspOta, name: string): Partition {
  const p = findByName(ota.partitions, name);
  if (!p) throw new Error(`no partition ${name}`);
  return p;
}

/** begin/write (4 KiB chunks)/end on a slot, as an OTA client does. */
export function writeImage(ota: EspOta, p: Partition, img: Uint8Array, chunk = 4096) {
  const h = ota.begin(p, OTA_WITH_SEQUENTIAL_WRITES);
  for (let off = 0; off < img.length; off += chunk) ota.write(h, img.subarray(off, off + chunk));
  return ota.end(h);
}

/** Boots and returns the app API as the booted app sees it. */
export function boot(flash: NorFlash, rollback = true) {
  const result = runBootloader(flash, { rollback });
  const ota = new EspOta(flash, { running: result.partition, rollback });
  return { result, ota, name: result.partition?.name ?? null, version: result.image?.appDesc?.version ?? null };
}

/** otadata as "[0] seq1 VALID, [1] seq2 NEW" with blank copies left out, like the reference's trace table. */
export function otadataSummary(flash: NorFlash, ota: EspOta): string {
  const od = new Otadata(flash, ota.otadata!.partition);
  const [a, b] = od.read();
  return [a, b]
    .map((e, i) => (e.seq === 0xffffffff ? null : `[${i}] seq${e.seq} ${stateName(e.state).replace("PENDING_VERIFY", "PEND")}`))
    .filter(Boolean)
    .join(", ") || "both FF";
}
