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

// SHA-512 (`crypto_hash_sha512_state`, taken as an opaque pointer like the BLAKE2b state).
static inline int autoupdate_sha512_init(void *state) {
    return crypto_hash_sha512_init((crypto_hash_sha512_state *)state);
}

static inline int autoupdate_sha512_update(void *state, const unsigned char *in, unsigned long long inlen) {
    return crypto_hash_sha512_update((crypto_hash_sha512_state *)state, in, inlen);
}

static inline int autoupdate_sha512_final(void *state, unsigned char *out) {
    return crypto_hash_sha512_final((crypto_hash_sha512_state *)state, out);
}

/// Whether the scalar `s` (32 bytes, little-endian) is below the group order L, as RFC 8032
/// §5.1.7 requires of a signature's S.
static inline int autoupdate_ed25519_scalar_is_canonical(const unsigned char *s) {
    static const unsigned char order[32] = {
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
    };
    for (int index = 31; index >= 0; index--) {
        if (s[index] < order[index]) return 1;
        if (s[index] > order[index]) return 0;
    }
    return 0;  // equal to L
}

/// The last step of an Ed25519 verification whose message was hashed as it streamed (RFC 8032
/// §5.1.7): `hram` is SHA-512(R ‖ A ‖ M). Checks that S is canonical, that A and R are points
/// of the prime-order subgroup (not of small order), and that [S]B = R + [k]A with k = hram
/// mod L. Stricter than `crypto_sign_verify_detached` about A and R, which every signature
/// made by minisign or libsodium satisfies. Returns 0 when the signature holds, -1 otherwise.
static inline int autoupdate_ed25519_verify_hram(const unsigned char *signature, const unsigned char *public_key,
                                                 const unsigned char *hram) {
    const unsigned char *r = signature, *s = signature + 32;
    if (!autoupdate_ed25519_scalar_is_canonical(s)) return -1;
    if (crypto_core_ed25519_is_valid_point(public_key) != 1 || crypto_core_ed25519_is_valid_point(r) != 1) return -1;
    unsigned char k[32], sb[32], ka[32], sum[32];
    crypto_core_ed25519_scalar_reduce(k, hram);
    if (crypto_scalarmult_ed25519_base_noclamp(sb, s) != 0) return -1;
    if (crypto_scalarmult_ed25519_noclamp(ka, k, public_key) != 0) return -1;
    if (crypto_core_ed25519_add(sum, r, ka) != 0) return -1;
    return sodium_memcmp(sum, sb, 32) == 0 ? 0 : -1;
}

#endif
