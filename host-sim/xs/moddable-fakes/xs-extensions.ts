// trace (the serial console on a Moddable build; here the host's log). The engine's own extensions xsnap lacks
// (ArrayBuffer.fromString, String.fromArrayBuffer) come with ../moddable-preload.js, before built-ins freeze, as
// they are the engine's there. ArrayBuffer.prototype.concat is native in xsnap too. Imported before anything else.
import { hostCall } from "./host";

const define = (target: object, name: string, value: unknown) => Object.defineProperty(target, name, { value, writable: true, configurable: true, enumerable: false });

define(globalThis, "trace", (...parts: unknown[]) => hostCall("trace", parts.map(String).join("")));
