/*
 * ECDSA P-256 with SHA-256 verification through the PSA Crypto API (the API ESP-IDF v6.0's mbedTLS 4 keeps;
 * Mbed TLS 2.28 and 3.x have it too, which is how the host tests compile this file).
 */
#ifndef P256_VERIFY_H
#define P256_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#define P256_SIGNATURE_BYTES 64
#define P256_PUBLIC_KEY_BYTES 65

/* 1 when signature (r || s, 32 bytes each) is a valid ECDSA signature over SHA-256(message) by publicKey (the
 * uncompressed point 04 || X || Y); 0 otherwise, including a key that is not a point on the curve. */
int p256_verify(const uint8_t signature[P256_SIGNATURE_BYTES], const uint8_t *message, size_t messageLength,
	const uint8_t publicKey[P256_PUBLIC_KEY_BYTES]);

#endif
