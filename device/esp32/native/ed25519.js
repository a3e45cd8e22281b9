// Host-function binding for ed25519.c (XS `@` syntax: compiled by xsc, never by tsc; ed25519.d.ts types it).

export default class Ed25519 {
	static verify(message, signature, publicKey) @ "xs_ed25519_verify";
}
