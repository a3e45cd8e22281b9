// The bench's stand-in for embedded:storage/flash on Linux: the `agent` data partition of the bench's flash
// file (flash-lin.c). Same calls and argument order as Moddable's ESP32 module (modules/io/flash/esp32), so
// device/esp32/raw-flash.ts runs unmodified over it.
function agentSize() @ "xs_benchflash_size";

class Flash {
	#path;
	constructor(path) {
		this.#path = path;
	}
	read(buffer, byteOffset) @ "xs_benchflash_read";
	write(buffer, byteOffset) @ "xs_benchflash_write";
	eraseBlock(start, end) @ "xs_benchflash_erase";
	status() {
		const size = agentSize();
		return { size, blockLength: 4096, blocks: size / 4096, writeAlign: 1, eraseValue: 0xff };
	}
	close() {}
	get format() {
		return "buffer";
	}
}

export default {
	open({ path, mode }) {
		if (path !== "agent") throw new Error(`bench flash: no data partition "${path}"`);
		return new Flash(path);
	},
};
