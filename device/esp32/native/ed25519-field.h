/*
 * Arithmetic modulo 2^255 - 19 for ed25519-verify.c (see ed25519-field.c). The functions keep tweetnacl's
 * short names through the macros below, so the port reads line by line against nacl.js; the linked symbols
 * carry an ed25519_fe_ prefix. Include this header from the ed25519 sources only.
 */
#ifndef ED25519_FIELD_H
#define ED25519_FIELD_H

#include <stdint.h>

typedef int32_t gf[16];

#define set25519 ed25519_fe_set
#define sel25519 ed25519_fe_sel
#define pack25519 ed25519_fe_pack
#define verify32 ed25519_fe_verify32
#define neq25519 ed25519_fe_neq
#define par25519 ed25519_fe_par
#define unpack25519 ed25519_fe_unpack
#define A ed25519_fe_add
#define Z ed25519_fe_sub
#define M ed25519_fe_mul
#define S ed25519_fe_sqr
#define inv25519 ed25519_fe_inv
#define pow2523 ed25519_fe_pow2523

void ed25519_fe_set(gf r, const gf a);
void ed25519_fe_sel(gf p, gf q, int b);
void ed25519_fe_pack(uint8_t o[32], const gf n);
int ed25519_fe_verify32(const uint8_t *x, const uint8_t *y);	/* crypto_verify_32: 0 when equal, else -1 */
int ed25519_fe_neq(const gf a, const gf b);
uint8_t ed25519_fe_par(const gf a);
void ed25519_fe_unpack(gf o, const uint8_t n[32]);
void ed25519_fe_add(gf o, const gf a, const gf b);
void ed25519_fe_sub(gf o, const gf a, const gf b);
void ed25519_fe_mul(gf o, const gf a, const gf b);
void ed25519_fe_sqr(gf o, const gf a);
void ed25519_fe_inv(gf o, const gf i);
void ed25519_fe_pow2523(gf o, const gf i);
#endif
