// OpenSSL's libcrypto, for SHA-256 only: it uses the CPU's SHA extensions (SHA-NI), several
// times faster than libsodium's portable code on the archive's whole stream. libcurl links
// the same library already.
#ifndef CAUTOUPDATE_CRYPTO_SHIM_H
#define CAUTOUPDATE_CRYPTO_SHIM_H

#include <openssl/evp.h>

#endif
