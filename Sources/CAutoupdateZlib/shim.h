// zlib for Swift: the real header plus wrappers for its function-like init macros,
// which pass the library version and the stream size and cannot be imported.
#ifndef CAUTOUPDATE_ZLIB_SHIM_H
#define CAUTOUPDATE_ZLIB_SHIM_H

#include <zlib.h>

/// `inflateInit2`: windowBits -15 for raw deflate (zip), 15 + 16 for gzip only.
static inline int autoupdate_inflateInit2(z_streamp stream, int windowBits) {
    return inflateInit2(stream, windowBits);
}

/// `deflateInit2`: windowBits -15 for raw deflate (zip), 15 + 16 to write a gzip wrapper.
static inline int autoupdate_deflateInit2(z_streamp stream, int level, int windowBits, int memLevel) {
    return deflateInit2(stream, level, Z_DEFLATED, windowBits, memLevel, Z_DEFAULT_STRATEGY);
}

#endif
