import CAutoupdateSodium

/// libsodium, initialised exactly once per process before first use.
enum Sodium {
    private static let ready: Bool = sodium_init() >= 0

    static func ensureInitialized() {
        _ = ready
    }
}

/// SHA-256, streaming. The corresponding C functions are `crypto_hash_sha256_init`, `_update`
/// and `_final`.
struct SHA256Digest {
    private var state = crypto_hash_sha256_state()

    init() {
        Sodium.ensureInitialized()
        crypto_hash_sha256_init(&state)
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        crypto_hash_sha256_update(&state, base.assumingMemoryBound(to: UInt8.self), UInt64(bytes.count))
    }

    /// The digest as lowercase hex.
    mutating func finalize() -> String {
        var digest = [UInt8](repeating: 0, count: Int(crypto_hash_sha256_BYTES))
        crypto_hash_sha256_final(&state, &digest)
        return digest.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }
}
