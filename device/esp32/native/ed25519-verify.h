/*
 * Ed25519 signature verification (tweetnacl's verdicts), for the ESP32 agent's manifest signatures.
 */
#ifndef ED25519_VERIFY_H
#define ED25519_VERIFY_H

#include <stddef.h>
#include <stdint.h>

/* 1 when sig (R || S) is a valid signature of msg[0..len) by the public key pk, else 0. Reads its inputs
 * in place, allocates nothing, keeps no state: safe to call from any task. */
int ed25519_verify(const uint8_t sig[64], const uint8_t *msg, size_t len, const uint8_t pk[32]);

#endif
