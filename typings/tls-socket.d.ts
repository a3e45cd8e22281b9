// Moddable's ECMA-419 TLS socket (examples/io/tcp/tlssocket), as @moddable/typings declares it
// (embedded_io/socket/tls.d.ts). A module file mapped to `embedded:io/socket/tcp/tls` by manifest.json, because
// mcconfig's tsc sees only the manifest's modules (without it, TS7016 under strict); `npm run typecheck` uses the
// @moddable/typings declaration (tsconfig.device.json).
import type { Options as TCPOptions } from "embedded:io/socket/tcp";

export type Options = TCPOptions & {
  host: string;
  /** Session options: `certificate` (DER: the one CA this connection trusts), `serverName`, `verify`... */
  secure: Record<string, unknown>;
};

export default class TLSSocket {
  constructor(options: Options);
  close(): undefined;
  read(count: number | ArrayBufferLike): undefined | ArrayBufferLike;
  write(buffer: ArrayBufferLike): number;
  set format(format: string);
  get format(): string;
}
