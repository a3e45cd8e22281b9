/*
 * ECDSA P-256 verification for the agent's manifests (esp32/native/p256), on ESP-IDF's mbedTLS. ESP-IDF v6.0 ships
 * mbedTLS 4, where the legacy mbedtls_ecdsa_* API is gone and only PSA remains, so this uses PSA: the message is
 * hashed (psa_hash_compute, SHA-256; hardware SHA on the ESP32), the public key imported as a volatile key and
 * psa_verify_hash checks r || s. The key is destroyed before returning, whatever the verdict.
 */

#include "p256-verify.h"

#include <psa/crypto.h>

int p256_verify(const uint8_t signature[P256_SIGNATURE_BYTES], const uint8_t *message, size_t messageLength,
	const uint8_t publicKey[P256_PUBLIC_KEY_BYTES])
{
	uint8_t hash[32];
	size_t hashLength = 0;
	psa_key_attributes_t attributes = PSA_KEY_ATTRIBUTES_INIT;
	mbedtls_svc_key_id_t key = MBEDTLS_SVC_KEY_ID_INIT;
	int valid;

	/* ESP-IDF initialises PSA at start-up; a second call returns PSA_SUCCESS at once. */
	if (PSA_SUCCESS != psa_crypto_init())
		return 0;
	if ((PSA_SUCCESS != psa_hash_compute(PSA_ALG_SHA_256, message, messageLength, hash, sizeof(hash), &hashLength))
		|| (sizeof(hash) != hashLength))
		return 0;
	psa_set_key_type(&attributes, PSA_KEY_TYPE_ECC_PUBLIC_KEY(PSA_ECC_FAMILY_SECP_R1));
	psa_set_key_bits(&attributes, 256);
	psa_set_key_usage_flags(&attributes, PSA_KEY_USAGE_VERIFY_HASH);
	psa_set_key_algorithm(&attributes, PSA_ALG_ECDSA(PSA_ALG_SHA_256));
	/* Import checks that the point is on the curve: a bad key is refused here. */
	if (PSA_SUCCESS != psa_import_key(&attributes, publicKey, P256_PUBLIC_KEY_BYTES, &key))
		return 0;
	valid = PSA_SUCCESS == psa_verify_hash(key, PSA_ALG_ECDSA(PSA_ALG_SHA_256), hash, hashLength, signature, P256_SIGNATURE_BYTES);
	psa_destroy_key(key);
	psa_reset_key_attributes(&attributes);
	return valid;
}
