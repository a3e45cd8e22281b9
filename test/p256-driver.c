/*
 * Test-only host driver for device/esp32/native/p256-verify.c against Debian's libmbedtls (built by
 * test/p256-native.test.ts). Reads lines "SIG_HEX PK_HEX MSG_HEX" (MSG_HEX "-" for an empty message) from stdin and
 * prints one verdict per line: 1 or 0. With "--bench N" it verifies the first line N times and prints us per verify.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "p256-verify.h"

#define kMaxMessage 65536

static int hexToBytes(const char *hex, uint8_t *out, size_t max, size_t *length)
{
	size_t n = strlen(hex);
	if (0 == strcmp(hex, "-"))
		n = 0;
	if ((n % 2) || (n / 2 > max))
		return 0;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned value;
		if (1 != sscanf(hex + 2 * i, "%2x", &value))
			return 0;
		out[i] = (uint8_t)value;
	}
	*length = n / 2;
	return 1;
}

int main(int argc, char **argv)
{
	static char line[2 * kMaxMessage + 512];
	static uint8_t message[kMaxMessage];
	long bench = (argc == 3 && 0 == strcmp(argv[1], "--bench")) ? atol(argv[2]) : 0;
	while (fgets(line, sizeof(line), stdin)) {
		char *sigHex = strtok(line, " \n"), *pkHex = strtok(NULL, " \n"), *msgHex = strtok(NULL, " \n");
		uint8_t sig[P256_SIGNATURE_BYTES], pk[P256_PUBLIC_KEY_BYTES];
		size_t sigLength, pkLength, msgLength;
		if (!sigHex || !pkHex || !msgHex || !hexToBytes(sigHex, sig, sizeof(sig), &sigLength) || !hexToBytes(pkHex, pk, sizeof(pk), &pkLength) ||
				!hexToBytes(msgHex, message, kMaxMessage, &msgLength) || (sigLength != sizeof(sig)) || (pkLength != sizeof(pk))) {
			fprintf(stderr, "bad input line\n");
			return 2;
		}
		if (bench > 0) {
			struct timespec start, end;
			int ok = 1;
			clock_gettime(CLOCK_MONOTONIC, &start);
			for (long i = 0; i < bench; i++)
				ok &= p256_verify(sig, message, msgLength, pk);
			clock_gettime(CLOCK_MONOTONIC, &end);
			double us = ((end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec)) / 1e3 / bench;
			printf("%d %.1f us/verify\n", ok, us);
			return 0;
		}
		printf("%d\n", p256_verify(sig, message, msgLength, pk));
	}
	return 0;
}
