/*
 * esp32/native/ed25519: ed25519 signature verification for the agent's manifests (HashPort.verifyEd25519).
 * In C because tweetnacl in XS costs ~44 M compute units per verify; ed25519-verify.c is a port of
 * tweetnacl's verify, so the verdicts are the same.
 */

#include "xsmc.h"
#include "xsHost.h"

#include "ed25519-verify.h"

// verify(message, signature, publicKey): true or false, as nacl.sign.detached.verify; like it, throws
// when the signature is not 64 bytes or the key not 32. The buffers are read in place, without a copy:
// ed25519_verify never calls back into XS, so nothing can move them while it runs. It blocks the VM for
// the whole verify (no yield), and uses about 2 KiB of the calling task's stack.
void xs_ed25519_verify(xsMachine *the)
{
	void *message, *signature, *publicKey;
	xsUnsignedValue messageLength, signatureLength, publicKeyLength;
	xsmcGetBufferReadable(xsArg(0), &message, &messageLength);
	xsmcGetBufferReadable(xsArg(1), &signature, &signatureLength);
	xsmcGetBufferReadable(xsArg(2), &publicKey, &publicKeyLength);
	if (64 != signatureLength)
		xsUnknownError("ed25519: signature is %u bytes, not 64", (unsigned)signatureLength);
	if (32 != publicKeyLength)
		xsUnknownError("ed25519: public key is %u bytes, not 32", (unsigned)publicKeyLength);
	xsmcSetBoolean(xsResult, ed25519_verify(signature, message, messageLength, publicKey));
}
