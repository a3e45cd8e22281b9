// The `dns` option of the ECMA-419 clients, on lwIP's resolver (`net`): it takes the DHCP-provided DNS
// server and IP literals, where the example UDP resolver needs a fixed server list.
import Net from "net";

export interface ResolveOptions {
  host: string;
  onResolved?: (host: string, address: string) => void;
  onError?: (error: Error) => void;
}

export class NetResolver {
  constructor(_options?: object) {}
  resolve({ host, onResolved, onError }: ResolveOptions): void {
    try {
      Net.resolve(host, (name, address) => {
        if (address) onResolved?.(name, address);
        else onError?.(new Error(`cannot resolve ${host}`));
      });
    } catch (e) {
      onError?.(e instanceof Error ? e : new Error(String(e)));
    }
  }
  close(): void {}
}
