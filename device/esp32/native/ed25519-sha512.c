/*
 * Streaming SHA-512 (FIPS 180-4) for ed25519-verify.c. Constants as in tweetnacl-js 1.0.3 (K, iv).
 * Stack: the block function's 16-word schedule and 8 working words (~200 bytes) plus the caller's context.
 */
#include "ed25519-sha512.h"

#include <string.h>

static const uint64_t K[80] = {
	0x428a2f98d728ae22ULL, 0x7137449123ef65cdULL, 0xb5c0fbcfec4d3b2fULL, 0xe9b5dba58189dbbcULL,
	0x3956c25bf348b538ULL, 0x59f111f1b605d019ULL, 0x923f82a4af194f9bULL, 0xab1c5ed5da6d8118ULL,
	0xd807aa98a3030242ULL, 0x12835b0145706fbeULL, 0x243185be4ee4b28cULL, 0x550c7dc3d5ffb4e2ULL,
	0x72be5d74f27b896fULL, 0x80deb1fe3b1696b1ULL, 0x9bdc06a725c71235ULL, 0xc19bf174cf692694ULL,
	0xe49b69c19ef14ad2ULL, 0xefbe4786384f25e3ULL, 0x0fc19dc68b8cd5b5ULL, 0x240ca1cc77ac9c65ULL,
	0x2de92c6f592b0275ULL, 0x4a7484aa6ea6e483ULL, 0x5cb0a9dcbd41fbd4ULL, 0x76f988da831153b5ULL,
	0x983e5152ee66dfabULL, 0xa831c66d2db43210ULL, 0xb00327c898fb213fULL, 0xbf597fc7beef0ee4ULL,
	0xc6e00bf33da88fc2ULL, 0xd5a79147930aa725ULL, 0x06ca6351e003826fULL, 0x142929670a0e6e70ULL,
	0x27b70a8546d22ffcULL, 0x2e1b21385c26c926ULL, 0x4d2c6dfc5ac42aedULL, 0x53380d139d95b3dfULL,
	0x650a73548baf63deULL, 0x766a0abb3c77b2a8ULL, 0x81c2c92e47edaee6ULL, 0x92722c851482353bULL,
	0xa2bfe8a14cf10364ULL, 0xa81a664bbc423001ULL, 0xc24b8b70d0f89791ULL, 0xc76c51a30654be30ULL,
	0xd192e819d6ef5218ULL, 0xd69906245565a910ULL, 0xf40e35855771202aULL, 0x106aa07032bbd1b8ULL,
	0x19a4c116b8d2d0c8ULL, 0x1e376c085141ab53ULL, 0x2748774cdf8eeb99ULL, 0x34b0bcb5e19b48a8ULL,
	0x391c0cb3c5c95a63ULL, 0x4ed8aa4ae3418acbULL, 0x5b9cca4f7763e373ULL, 0x682e6ff3d6b2b8a3ULL,
	0x748f82ee5defb2fcULL, 0x78a5636f43172f60ULL, 0x84c87814a1f0ab72ULL, 0x8cc702081a6439ecULL,
	0x90befffa23631e28ULL, 0xa4506cebde82bde9ULL, 0xbef9a3f7b2c67915ULL, 0xc67178f2e372532bULL,
	0xca273eceea26619cULL, 0xd186b8c721c0c207ULL, 0xeada7dd6cde0eb1eULL, 0xf57d4f7fee6ed178ULL,
	0x06f067aa72176fbaULL, 0x0a637dc5a2c898a6ULL, 0x113f9804bef90daeULL, 0x1b710b35131c471bULL,
	0x28db77f523047d84ULL, 0x32caab7b40c72493ULL, 0x3c9ebe0a15c9bebcULL, 0x431d67c49c100d4cULL,
	0x4cc5d4becb3e42b6ULL, 0x597f299cfc657e2aULL, 0x5fcb6fab3ad6faecULL, 0x6c44198c4a475817ULL,
};

static const uint64_t IV[8] = {
	0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
	0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (64 - (n))))

static uint64_t load64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static void store64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

// One 128-byte block; the message schedule is kept as a rolling window of 16 words.
static void compress(uint64_t state[8], const uint8_t *p)
{
	uint64_t w[16], a[8];
	for (int i = 0; i < 16; i++)
		w[i] = load64(p + 8 * i);
	memcpy(a, state, sizeof(a));
	for (int i = 0; i < 80; i++) {
		if (i >= 16) {
			uint64_t w15 = w[(i + 1) & 15], w2 = w[(i + 14) & 15];
			w[i & 15] += (ROTR(w15, 1) ^ ROTR(w15, 8) ^ (w15 >> 7)) + w[(i + 9) & 15] + (ROTR(w2, 19) ^ ROTR(w2, 61) ^ (w2 >> 6));
		}
		uint64_t t1 = a[7] + (ROTR(a[4], 14) ^ ROTR(a[4], 18) ^ ROTR(a[4], 41)) + ((a[4] & a[5]) ^ (~a[4] & a[6])) + K[i] + w[i & 15];
		uint64_t t2 = (ROTR(a[0], 28) ^ ROTR(a[0], 34) ^ ROTR(a[0], 39)) + ((a[0] & a[1]) ^ (a[0] & a[2]) ^ (a[1] & a[2]));
		memmove(a + 1, a, 7 * sizeof(a[0]));
		a[4] += t1;
		a[0] = t1 + t2;
	}
	for (int i = 0; i < 8; i++)
		state[i] += a[i];
}

void ed25519_sha512_init(Ed25519Sha512 *ctx)
{
	memcpy(ctx->state, IV, sizeof(IV));
	ctx->total = 0;
	ctx->used = 0;
}

void ed25519_sha512_update(Ed25519Sha512 *ctx, const uint8_t *data, size_t length)
{
	ctx->total += length;
	if (ctx->used) {
		size_t take = 128 - ctx->used;
		if (take > length)
			take = length;
		memcpy(ctx->block + ctx->used, data, take);
		ctx->used += take;
		data += take;
		length -= take;
		if (ctx->used < 128)
			return;
		compress(ctx->state, ctx->block);
		ctx->used = 0;
	}
	for (; length >= 128; data += 128, length -= 128)
		compress(ctx->state, data);	// whole blocks straight from the caller's buffer
	if (length)
		memcpy(ctx->block, data, length);
	ctx->used = length;
}

void ed25519_sha512_final(Ed25519Sha512 *ctx, uint8_t digest[64])
{
	ctx->block[ctx->used++] = 0x80;
	if (ctx->used > 112) {
		memset(ctx->block + ctx->used, 0, 128 - ctx->used);
		compress(ctx->state, ctx->block);
		ctx->used = 0;
	}
	memset(ctx->block + ctx->used, 0, 112 - ctx->used);
	store64(ctx->block + 112, ctx->total >> 61);	// the 128-bit length in bits
	store64(ctx->block + 120, ctx->total << 3);
	compress(ctx->state, ctx->block);
	for (int i = 0; i < 8; i++)
		store64(digest + 8 * i, ctx->state[i]);
}
