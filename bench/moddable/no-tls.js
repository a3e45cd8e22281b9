// The bench's stand-in for embedded:io/socket/tcp/tls: the Linux bench talks plain HTTP on loopback, so the
// ESP32 HTTP adapter (device/esp32/http.ts) imports this module but never opens a TLS socket through it.
export default class TLSSocket {
	constructor() {
		throw new Error("bench/moddable: no TLS in the Linux bench (plain HTTP on loopback)");
	}
}
