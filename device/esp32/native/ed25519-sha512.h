/*
 * Streaming SHA-512 (FIPS 180-4) for ed25519-verify.c: it hashes R || A || message in place, so the
 * message is never copied. 216 bytes of context, no allocation.
 */
#ifndef ED25519_SHA512_H
#define ED25519_SHA512_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	uint64_t state[8];
	uint64_t total;		// bytes hashed so far
	uint8_t block[128];	// a partial block waiting for more input
	size_t used;		// bytes in block
} Ed25519Sha512;

void ed25519_sha512_init(Ed25519Sha512 *ctx);
void ed25519_sha512_update(Ed25519Sha512 *ctx, const uint8_t *data, size_t length);
void ed25519_sha512_final(Ed25519Sha512 *ctx, uint8_t digest[64]);

#endif
