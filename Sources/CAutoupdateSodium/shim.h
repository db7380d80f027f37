// libsodium for Swift. `crypto_generichash_state` is over-aligned (64 bytes) and does not
// import; these wrappers take it as an opaque pointer to `crypto_generichash_statebytes()`
// bytes that Swift allocates with alignment 64.
#ifndef CAUTOUPDATE_SODIUM_SHIM_H
#define CAUTOUPDATE_SODIUM_SHIM_H

#include <sodium.h>

static inline int autoupdate_generichash_init(void *state, size_t outlen) {
    return crypto_generichash_init((crypto_generichash_state *)state, NULL, 0, outlen);
}

static inline int autoupdate_generichash_update(void *state, const unsigned char *in, unsigned long long inlen) {
    return crypto_generichash_update((crypto_generichash_state *)state, in, inlen);
}

static inline int autoupdate_generichash_final(void *state, unsigned char *out, size_t outlen) {
    return crypto_generichash_final((crypto_generichash_state *)state, out, outlen);
}

#endif
