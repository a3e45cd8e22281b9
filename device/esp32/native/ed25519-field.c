/*
 * Arithmetic modulo 2^255 - 19 for ed25519-verify.c, ported from tweetnacl-js 1.0.3 (nacl.js, public domain).
 * Field elements are 16 signed limbs of 16 bits. tweetnacl-js holds them in doubles but truncates sums to
 * int32 (A, Z) and uses int32 bit operations (sel25519), so int32 limbs are its exact semantics; products
 * and carries are computed in int64, as in TweetNaCl C.
 */
#include "ed25519-field.h"

#include <string.h>

// `>>` on a negative int64 is an arithmetic (flooring) shift with gcc, as Math.floor(x / 2^n) in tweetnacl-js.
static void car25519(int64_t o[16])
{
	for (int i = 0; i < 16; i++) {
		o[i] += 65536;
		int64_t c = o[i] >> 16;
		o[(i + 1) * (i < 15)] += c - 1 + 37 * (c - 1) * (i == 15);
		o[i] -= c * 65536;
	}
}

void set25519(gf r, const gf a)
{
	memcpy(r, a, sizeof(gf));
}

void sel25519(gf p, gf q, int b)
{
	int32_t c = ~(b - 1);
	for (int i = 0; i < 16; i++) {
		int32_t t = c & (p[i] ^ q[i]);
		p[i] ^= t;
		q[i] ^= t;
	}
}

void pack25519(uint8_t o[32], const gf n)
{
	int64_t m[16], t[16];
	for (int i = 0; i < 16; i++)
		t[i] = n[i];
	car25519(t);
	car25519(t);
	car25519(t);
	for (int j = 0; j < 2; j++) {
		m[0] = t[0] - 0xffed;
		for (int i = 1; i < 15; i++) {
			m[i] = t[i] - 0xffff - ((m[i - 1] >> 16) & 1);
			m[i - 1] &= 0xffff;
		}
		m[15] = t[15] - 0x7fff - ((m[14] >> 16) & 1);
		int b = (int)((m[15] >> 16) & 1);
		m[14] &= 0xffff;
		int64_t c = -(int64_t)(1 - b);	// sel25519(t, m, 1 - b) on 64-bit words
		for (int i = 0; i < 16; i++)
			t[i] ^= c & (t[i] ^ m[i]);
	}
	for (int i = 0; i < 16; i++) {
		o[2 * i] = (uint8_t)(t[i] & 0xff);
		o[2 * i + 1] = (uint8_t)(t[i] >> 8);
	}
}

// crypto_verify_32: 0 when equal, -1 otherwise, without an early exit.
int verify32(const uint8_t *x, const uint8_t *y)
{
	uint32_t d = 0;
	for (int i = 0; i < 32; i++)
		d |= x[i] ^ y[i];
	return (int)(1 & ((d - 1) >> 8)) - 1;
}

int neq25519(const gf a, const gf b)
{
	uint8_t c[32], d[32];
	pack25519(c, a);
	pack25519(d, b);
	return verify32(c, d);
}

uint8_t par25519(const gf a)
{
	uint8_t d[32];
	pack25519(d, a);
	return d[0] & 1;
}

void unpack25519(gf o, const uint8_t n[32])
{
	for (int i = 0; i < 16; i++)
		o[i] = n[2 * i] + (n[2 * i + 1] << 8);
	o[15] &= 0x7fff;
}

void A(gf o, const gf a, const gf b)
{
	for (int i = 0; i < 16; i++)
		o[i] = a[i] + b[i];
}

void Z(gf o, const gf a, const gf b)
{
	for (int i = 0; i < 16; i++)
		o[i] = a[i] - b[i];
}

// o = a * b; o may alias a or b (the product is built in t first).
void M(gf o, const gf a, const gf b)
{
	int64_t t[31];
	memset(t, 0, sizeof(t));
	for (int i = 0; i < 16; i++) {
		int32_t ai = a[i];	// int32 x int32 -> int64: one widening multiply, on the ESP32 too
		for (int j = 0; j < 16; j++)
			t[i + j] += (int64_t)ai * b[j];
	}
	for (int i = 0; i < 15; i++)
		t[i] += 38 * t[i + 16];
	car25519(t);
	car25519(t);
	for (int i = 0; i < 16; i++)
		o[i] = (int32_t)t[i];	// below 2^17 in magnitude after two carries
}

void S(gf o, const gf a)
{
	M(o, a, a);
}

void inv25519(gf o, const gf i)
{
	gf c;
	set25519(c, i);
	for (int a = 253; a >= 0; a--) {
		S(c, c);
		if (a != 2 && a != 4)
			M(c, c, i);
	}
	set25519(o, c);
}

void pow2523(gf o, const gf i)
{
	gf c;
	set25519(c, i);
	for (int a = 250; a >= 0; a--) {
		S(c, c);
		if (a != 1)
			M(c, c, i);
	}
	set25519(o, c);
}
