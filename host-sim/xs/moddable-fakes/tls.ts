// Stand-in for embedded:io/socket/tcp/tls (Moddable's TLSSocket, examples/io/tcp/tlssocket). The adapter runs
// here talk plain HTTP to a loopback server (no pinned CA): http.ts only constructs a TLS socket for https, and
// a TLS handshake is not simulated, so constructing one fails as a failed handshake does, through onError.
import Timer from "./timer";

export default class TLSSocket {
  constructor(options: { onError?: () => void }) {
    Timer.set(() => options.onError?.());
  }
  read(): undefined {
    return undefined;
  }
  write(): number {
    throw new Error("not ready");
  }
  close(): void {}
}
