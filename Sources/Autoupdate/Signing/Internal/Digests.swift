import CAutoupdateCrypto
import CAutoupdateSodium

/// libsodium, initialised exactly once per process before first use.
enum Sodium {
    private static let ready: Bool = sodium_init() >= 0

    static func ensureInitialized() {
        _ = ready
    }
}

/// SHA-256, streaming, by OpenSSL's libcrypto: it uses the CPU's SHA extensions where there are
/// some (libsodium's portable SHA-256 cost a quarter of an update's CPU time). The corresponding
/// C functions are `EVP_DigestInit_ex`, `EVP_DigestUpdate` and `EVP_DigestFinal_ex`.
final class SHA256Digest {
    private let context: OpaquePointer

    /// - Throws: ``AutoupdateError/Code/signature`` when libcrypto cannot start a digest (it
    ///   fails only when memory does).
    init() throws {
        guard let context = EVP_MD_CTX_new() else {
            throw AutoupdateError(.signature, "libcrypto could not start a SHA-256 digest (out of memory)")
        }
        guard EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else {
            EVP_MD_CTX_free(context)
            throw AutoupdateError(.signature, "libcrypto could not start a SHA-256 digest")
        }
        self.context = context
    }

    deinit {
        EVP_MD_CTX_free(context)
    }

    func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        EVP_DigestUpdate(context, base, bytes.count)
    }

    /// The digest as lowercase hex.
    func finalize() -> String {
        finalizeBytes().map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    /// The digest's 32 bytes.
    func finalizeBytes() -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        return Array(digest.prefix(Int(length)))
    }
}

@available(*, unavailable)
extension SHA256Digest: Sendable {}
