// Host-function binding for p256.c (XS `@` syntax: compiled by xsc, never by tsc; p256.d.ts types it).

export default class P256 {
	static verify(message, signature, publicKey) @ "xs_p256_verify";
}
