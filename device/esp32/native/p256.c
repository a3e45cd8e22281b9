/*
 * esp32/native/p256: ECDSA P-256 (SHA-256) verification of the agent's manifests (the "ecdsa-p256-sha256" verifier,
 * device/esp32/verify-p256.ts), native so a manifest check costs XS almost nothing; p256-verify.c does the work
 * through ESP-IDF's mbedTLS (PSA).
 */

#include "xsmc.h"
#include "xsHost.h"

#include "p256-verify.h"

// verify(message, signature, publicKey): true or false; throws when the signature is not 64 bytes (r || s) or the
// key not the 65-byte uncompressed point. The buffers are read in place: p256_verify never calls back into XS, so
// nothing can move them while it runs. It blocks the VM for the one verify (tens of ms at 240 MHz).
void xs_p256_verify(xsMachine *the)
{
	void *message, *signature, *publicKey;
	xsUnsignedValue messageLength, signatureLength, publicKeyLength;
	xsmcGetBufferReadable(xsArg(0), &message, &messageLength);
	xsmcGetBufferReadable(xsArg(1), &signature, &signatureLength);
	xsmcGetBufferReadable(xsArg(2), &publicKey, &publicKeyLength);
	if (P256_SIGNATURE_BYTES != signatureLength)
		xsUnknownError("p256: signature is %u bytes, not 64", (unsigned)signatureLength);
	if (P256_PUBLIC_KEY_BYTES != publicKeyLength)
		xsUnknownError("p256: public key is %u bytes, not 65", (unsigned)publicKeyLength);
	xsmcSetBoolean(xsResult, p256_verify(signature, message, messageLength, publicKey));
}
