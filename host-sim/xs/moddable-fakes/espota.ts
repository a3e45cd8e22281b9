// Fake of our native espota module (device/esp32/native/espota.js → espota.c): each host function runs the same
// checks and esp_ota_* calls on the simulator's esp_ota model (host-sim/esp/esp-ota.ts), which returns
// ESP-IDF's codes; a failure arrives as espota.c throws it ("ESP_ERR_X (0x...)").
import { hostCall } from "./host";

const call = (name: string, ...args: unknown[]) => hostCall("espota.call", name, args);

function writable(buffer: ArrayBuffer | Uint8Array): Uint8Array {
  return buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
}

export default class EspOta {
  private constructor() {}
  static chipId = () => call("chipId") as number;
  static running = () => call("running") as string;
  static boot = () => (call("boot") ?? undefined) as string | undefined;
  static next = () => (call("next") ?? undefined) as string | undefined;
  static label = (subtype: number) => (call("label", subtype) ?? undefined) as string | undefined;
  static subtype = (label: string) => call("subtype", label) as number;
  static size = (label: string) => call("size", label) as number;
  static state = (label: string) => call("state", label) as never;
  static description = (label: string) => (call("description", label) ?? undefined) as never;
  static read(label: string, offset: number, buffer: ArrayBuffer | Uint8Array): void {
    const into = writable(buffer);
    into.set(hostCall("espota.read", label, offset, into.length));
  }
  static begin = (label: string, imageSize: number) => void call("begin", label, imageSize);
  static resume = (label: string, offset: number) => void call("resume", label, offset);
  static write(buffer: ArrayBuffer | Uint8Array): void {
    hostCall("espota.write", writable(buffer));
  }
  static end = () => void call("end");
  static abort = () => void call("abort");
  static setBoot = (label: string) => void call("setBoot", label);
  static markValid = () => void call("markValid");
  static markInvalid = () => void call("markInvalid");
  static markInvalidAndReboot = () => call("markInvalidAndReboot") as never;
  static rollbackPossible = () => call("rollbackPossible") as boolean;
  static restart = () => call("restart") as never;
  static resetReason = () => call("resetReason") as string;
  static coredumpSummary = () => (call("coredumpSummary") ?? undefined) as never;
  static uptimeMs = () => call("uptimeMs") as number;
  static freeHeap = () => call("freeHeap") as number;
  static minFreeHeap = () => call("minFreeHeap") as number;
}
