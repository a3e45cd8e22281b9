// A failed update step, carrying the code the server receives (device/protocol/errors.ts).
import type { DeviceErrorCode } from "../protocol/errors";

export class UpdateError extends Error {
  constructor(readonly code: DeviceErrorCode, message: string) {
    super(message);
    this.name = "UpdateError";
  }
}
