/*
 * Ed25519 verify: a C port of the verify path of tweetnacl-js 1.0.3 (nacl.js, public domain; the algorithm
 * of TweetNaCl's crypto_sign_open). It returns tweetnacl's verdict on every input, leniencies included:
 * S is not checked against the group order L (S + L verifies like S, where OpenSSL refuses it), and a key's
 * y coordinate is not checked for a canonical encoding.
 *
 * Stack, worst case, from gcc's call graph (-fcallgraph-info=su, x86-64 -O2; test/ed25519-native.test.ts caps it at
 * 2 KiB): 1888 bytes, ed25519_verify 896 (three points) + challenge 640 + sha512_update 48 + compress 304; the
 * scalarmult branch is 896 + 64 + add 416 + M 272 = 1648. Xtensa's windowed ABI adds up to ~48 bytes per call level.
 * No heap, no writable static data, the message read in place.
 */
#include "ed25519-verify.h"
#include "ed25519-field.h"
#include "ed25519-sha512.h"

#include <string.h>

static const gf gf0 = {0};
static const gf gf1 = {1};
static const gf D = {0x78a3, 0x1359, 0x4dca, 0x75eb, 0xd8ab, 0x4141, 0x0a4d, 0x0070, 0xe898, 0x7779, 0x4079, 0x8cc7, 0xfe73, 0x2b6f, 0x6cee, 0x5203};
static const gf D2 = {0xf159, 0x26b2, 0x9b94, 0xebd6, 0xb156, 0x8283, 0x149a, 0x00e0, 0xd130, 0xeef3, 0x80f2, 0x198e, 0xfce7, 0x56df, 0xd9dc, 0x2406};
static const gf X = {0xd51a, 0x8f25, 0x2d60, 0xc956, 0xa7b2, 0x9525, 0xc760, 0x692c, 0xdc5c, 0xfdd6, 0xe231, 0xc0a4, 0x53fe, 0xcd6e, 0x36d3, 0x2169};
static const gf Y = {0x6658, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666};
static const gf I = {0xa0b0, 0x4a0e, 0x1b27, 0xc4ee, 0xe478, 0xad2f, 0x1806, 0x2f43, 0xd7a7, 0x3dfb, 0x0099, 0x2b4d, 0xdf0b, 0x4fc1, 0x2480, 0x2b83};

// The group order L, little-endian.
static const int64_t L[32] = {
	0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
};

// p += q in extended coordinates. tweetnacl's nine temporaries folded into five (same operations).
static void add(gf p[4], gf q[4])
{
	gf a, b, c, d, t;
	Z(a, p[1], p[0]);
	Z(t, q[1], q[0]);
	M(a, a, t);
	A(b, p[0], p[1]);
	A(t, q[0], q[1]);
	M(b, b, t);
	M(c, p[3], q[3]);
	M(c, c, D2);
	M(d, p[2], q[2]);
	A(d, d, d);
	Z(t, b, a);	// e
	A(b, b, a);	// h
	Z(a, d, c);	// f
	A(d, d, c);	// g
	M(p[0], t, a);
	M(p[1], b, d);
	M(p[2], d, a);
	M(p[3], t, b);
}

static void cswap(gf p[4], gf q[4], int b)
{
	for (int i = 0; i < 4; i++)
		sel25519(p[i], q[i], b);
}

static __attribute__((noinline)) void pack(uint8_t r[32], gf p[4])
{
	gf tx, ty, zi;
	inv25519(zi, p[2]);
	M(tx, p[0], zi);
	M(ty, p[1], zi);
	pack25519(r, ty);
	r[31] ^= par25519(tx) << 7;
}

// p = s * q (s little-endian, 256 bits); q is clobbered.
static void scalarmult(gf p[4], gf q[4], const uint8_t s[32])
{
	set25519(p[0], gf0);
	set25519(p[1], gf1);
	set25519(p[2], gf1);
	set25519(p[3], gf0);
	for (int i = 255; i >= 0; --i) {
		int b = (s[i / 8] >> (i & 7)) & 1;
		cswap(p, q, b);
		add(q, p);
		add(p, p);
		cswap(p, q, b);
	}
}

static void scalarbase(gf p[4], gf base[4], const uint8_t s[32])
{
	set25519(base[0], X);
	set25519(base[1], Y);
	set25519(base[2], gf1);
	M(base[3], X, Y);
	scalarmult(p, base, s);
}

// r = -(the point encoded in p); -1 when p encodes no point. Out of line: its seven temporaries stay off
// the scalarmult path.
static __attribute__((noinline)) int unpackneg(gf r[4], const uint8_t p[32])
{
	gf t, chk, num, den, den2, den4, den6;
	set25519(r[2], gf1);
	unpack25519(r[1], p);
	S(num, r[1]);
	M(den, num, D);
	Z(num, num, r[2]);
	A(den, r[2], den);

	S(den2, den);
	S(den4, den2);
	M(den6, den4, den2);
	M(t, den6, num);
	M(t, t, den);

	pow2523(t, t);
	M(t, t, num);
	M(t, t, den);
	M(t, t, den);
	M(r[0], t, den);

	S(chk, r[0]);
	M(chk, chk, den);
	if (neq25519(chk, num))
		M(r[0], r[0], I);

	S(chk, r[0]);
	M(chk, chk, den);
	if (neq25519(chk, num))
		return -1;

	if (par25519(r[0]) == (p[31] >> 7))
		Z(r[0], gf0, r[0]);

	M(r[3], r[0], r[1]);
	return 0;
}

static void modL(uint8_t r[32], int64_t x[64])
{
	int64_t carry;
	int i, j;
	for (i = 63; i >= 32; --i) {
		carry = 0;
		for (j = i - 32; j < i - 12; ++j) {
			x[j] += carry - 16 * x[i] * L[j - (i - 32)];
			carry = (x[j] + 128) >> 8;
			x[j] -= carry * 256;
		}
		x[j] += carry;
		x[i] = 0;
	}
	carry = 0;
	for (j = 0; j < 32; j++) {
		x[j] += carry - (x[31] >> 4) * L[j];
		carry = x[j] >> 8;
		x[j] &= 255;
	}
	for (j = 0; j < 32; j++)
		x[j] -= carry * L[j];
	for (i = 0; i < 32; i++) {
		x[i + 1] += x[i] >> 8;
		r[i] = (uint8_t)(x[i] & 255);
	}
}

// h = SHA-512(R || A || msg) mod L (tweetnacl's reduce). Out of line, and the hash context and the 64 limbs
// of modL in disjoint scopes (gcc gives them one stack slot), to keep this branch shallow.
static __attribute__((noinline)) void challenge(uint8_t h[32], const uint8_t sig[64], const uint8_t pk[32], const uint8_t *msg, size_t len)
{
	uint8_t digest[64];
	{
		Ed25519Sha512 sha;
		ed25519_sha512_init(&sha);
		ed25519_sha512_update(&sha, sig, 32);
		ed25519_sha512_update(&sha, pk, 32);
		ed25519_sha512_update(&sha, msg, len);
		ed25519_sha512_final(&sha, digest);
	}
	{
		int64_t x[64];
		for (int i = 0; i < 64; i++)
			x[i] = digest[i];
		modL(h, x);
	}
}

int ed25519_verify(const uint8_t sig[64], const uint8_t *msg, size_t len, const uint8_t pk[32])
{
	gf p[4], q[4], base[4];
	uint8_t h[32], t[32];

	if (unpackneg(q, pk))
		return 0;
	challenge(h, sig, pk, msg, len);
	scalarmult(p, q, h);	// p = h * (-A)
	scalarbase(q, base, sig + 32);	// q = S * B
	add(p, q);
	pack(t, p);
	return verify32(sig, t) == 0;	// R == S*B - h*A
}
