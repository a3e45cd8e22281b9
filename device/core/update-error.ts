// A failed update step, carrying the code the server receives (device/protocol/errors.ts).
import type { DeviceErrorCode } from "../protocol/errors";

export class UpdateError extends Error {
  constructor(readonly code: DeviceErrorCode, message: string) {
    super(message);
  }
}
// The name lives on the prototype: `this.name = …` throws under Moddable's frozen Error.prototype.
Object.defineProperty(UpdateError.prototype, "name", { value: "UpdateError" });
