// Verifies an uploaded ESP app image with the host simulator's verifier (the same
// code that models esp_image_verify), streaming from the stored file.
import { ESP_IMAGE_MAGIC, ImageVerifyError, verifyImage } from "../../esp-image/app-image";
import { badRequest } from "../api-error";
import { withFileReader } from "./blobs";

export { ESP_IMAGE_MAGIC };

export interface EspImageFacts {
  chipId: number;
  version: string;
  secureVersion: number;
  projectName: string;
}

export function verifyEspImageFile(path: string): EspImageFacts {
  return withFileReader(path, (read) => {
    const head = read(0, 24);
    if (head.length < 24) throw badRequest("ESP image shorter than its 24-byte header", "IMAGE_INVALID");
    // The server does not run on the target chip: check the image against its own chip id
    // and its own minimum revision, so only structural checks can fail.
    const chipId = head[12]! | (head[13]! << 8);
    const minRev = head[15]! | (head[16]! << 8);
    try {
      const info = verifyImage(read, { expectedChipId: chipId, chipRevision: minRev });
      if (!info.appDesc) throw badRequest("ESP image has no esp_app_desc_t (magic 0xABCD5432 at offset 0x20)", "IMAGE_INVALID");
      return { chipId, version: info.appDesc.version, secureVersion: info.appDesc.secureVersion, projectName: info.appDesc.projectName };
    } catch (e) {
      if (e instanceof ImageVerifyError) throw badRequest(`ESP image failed verification: ${e.message}`, "IMAGE_INVALID", { check: e.check });
      throw e;
    }
  });
}
