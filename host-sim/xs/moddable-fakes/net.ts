// Fake of Moddable's `net` (modules/network/net on lwIP) as far as the adapters use it: resolve(host, callback)
// answers later with callback(name, address), the address undefined when the name does not resolve. The
// host's resolver answers (a loopback server's name, an IP literal as itself).
import { hostCallAsync } from "./host";

export default class Net {
  static resolve(host: string, callback: (name: string, address: string | undefined) => void): void {
    hostCallAsync("net.resolve", String(host)).then(
      (address) => callback(host, address || undefined),
      () => callback(host, undefined),
    );
  }
}
