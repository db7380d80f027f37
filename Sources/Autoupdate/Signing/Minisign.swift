internal import CAutoupdateSodium
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Minisign keys and signatures (https://jedisct1.github.io/minisign/), over libsodium's Ed25519
/// and BLAKE2b, interoperable with the `minisign` tool both ways.
///
/// ```swift
/// let key = try Minisign.PublicKey(text: String(contentsOfFile: "minisign.pub"))
/// let signature = try Minisign.Signature(text: String(contentsOfFile: "project.zip.minisig"))
/// var hasher = Minisign.Prehash()
/// hasher.update(bytes)                       // as the file streams
/// let verified = try Minisign.verify(signature, prehash: hasher.finalize(), trusting: [key])
/// print(verified.trustedComment)
/// ```
///
/// Signatures are `ED` (the file's BLAKE2b-512 is signed: the default of minisign ≥ 0.8, and
/// what we write) or the legacy `Ed` (the whole file is signed). Both are checked on streamed
/// archives too (``StreamVerifier``), in constant memory.
public enum Minisign {
    /// An Ed25519 public key with its 8-byte key id.
    public struct PublicKey: Sendable, Hashable, CustomStringConvertible {
        /// The key id, as minisign stores it (little-endian).
        public let keyID: [UInt8]
        let key: [UInt8]

        /// Parses a public key: the one-line base64 form (`RWQ…`, as `minisign -P` takes it) or
        /// the two-line file (`untrusted comment: …` then the base64 line).
        public init(text: String) throws {
            let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
            let line = lines.first { !$0.hasPrefix("untrusted comment:") } ?? ""
            guard let data = Data(base64Encoded: line), data.count == 42 else {
                throw AutoupdateError(.signature, "not a minisign public key (expected a base64 line of 42 bytes)")
            }
            let bytes = [UInt8](data)
            guard bytes[0] == 0x45, bytes[1] == 0x64 else {  // "Ed"
                throw AutoupdateError(.signature, "not a minisign public key: unknown algorithm '\(Minisign.printable(bytes[0..<2]))'")
            }
            keyID = Array(bytes[2..<10])
            key = Array(bytes[10..<42])
        }

        init(keyID: [UInt8], key: [UInt8]) {
            self.keyID = keyID
            self.key = key
        }

        /// Takes `argument` itself when it is a one-line key (`RWQ…`, whose base64 may hold `/`),
        /// else reads it as a public key file.
        public init(fileOrKey argument: String) throws {
            if !argument.contains(where: \.isNewline), let key = try? PublicKey(text: argument) {
                self = key
                return
            }
            guard let data = FileManager.default.contents(atPath: argument) else {
                throw AutoupdateError(.signature, "cannot read the public key file \(quoted(argument))")
            }
            do {
                self = try PublicKey(text: String(decoding: data, as: UTF8.self))
            } catch let error as AutoupdateError {
                throw error.adding(context: "reading \(quoted(argument))")
            }
        }

        /// The key id as minisign prints it (16 uppercase hex digits).
        public var keyIDHex: String { Minisign.hex(keyID.reversed()).uppercased() }

        /// The one-line base64 form (`minisign -P` takes it).
        public var base64: String { Data([0x45, 0x64] + keyID + key).base64EncodedString() }

        /// The public key file, as `minisign -G` writes it.
        public var fileText: String { "untrusted comment: minisign public key \(keyIDHex)\n\(base64)\n" }

        public var description: String { keyIDHex }
    }

    /// An Ed25519 secret key with its key id, unencrypted (as `minisign -G -W` writes it).
    public struct SecretKey: Sendable {
        public let keyID: [UInt8]
        let secret: [UInt8]  // libsodium's 64-byte form: seed, then the public key

        /// Parses a secret key file. Password-protected keys are refused with a message saying
        /// how to remove the password (`minisign -C -W`).
        public init(text: String) throws {
            let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
            let line = lines.first { !$0.hasPrefix("untrusted comment:") } ?? ""
            guard let data = Data(base64Encoded: line), data.count == 158 else {
                throw AutoupdateError(.signature, "not a minisign secret key (expected a base64 line of 158 bytes)")
            }
            let bytes = [UInt8](data)
            guard bytes[0] == 0x45, bytes[1] == 0x64, bytes[4] == 0x42, bytes[5] == 0x32 else {  // "Ed", "B2"
                throw AutoupdateError(.signature, "not a minisign secret key: unknown algorithms")
            }
            guard bytes[2] == 0, bytes[3] == 0 else {
                throw AutoupdateError(
                    .signature,
                    "the secret key is protected by a password; autoupdate reads unencrypted keys only (remove the password with 'minisign -C -W', keep the file private)"
                )
            }
            let keyID = Array(bytes[54..<62])
            let secret = Array(bytes[62..<126])
            let checksum = Array(bytes[126..<158])
            // minisign -W leaves the checksum zero; a key whose halves disagree is corrupted either way.
            let checksumMatches =
                checksum.allSatisfy { $0 == 0 } || Minisign.blake2b(Array(bytes[0..<2]) + keyID + secret, length: 32) == checksum
            guard checksumMatches, Minisign.publicHalfMatches(secret) else {
                throw AutoupdateError(.signature, "the secret key is corrupted (its checksum or its public half does not match)")
            }
            self.keyID = keyID
            self.secret = secret
        }

        init(keyID: [UInt8], secret: [UInt8]) {
            self.keyID = keyID
            self.secret = secret
        }

        /// Reads a secret key file.
        public init(file: String) throws {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw AutoupdateError(.signature, "cannot read the secret key file \(quoted(file))")
            }
            do {
                self = try SecretKey(text: String(decoding: data, as: UTF8.self))
            } catch let error as AutoupdateError {
                throw error.adding(context: "reading \(quoted(file))")
            }
        }

        /// Its public key.
        public var publicKey: PublicKey { PublicKey(keyID: keyID, key: Array(secret[32..<64])) }

        /// The secret key file, unencrypted (as `minisign -G -W` writes it).
        public var fileText: String {
            let header: [UInt8] = [0x45, 0x64, 0, 0, 0x42, 0x32]
            let salt = [UInt8](repeating: 0, count: 32)
            let limits = [UInt8](repeating: 0, count: 16)
            let checksum = Minisign.blake2b([0x45, 0x64] + keyID + secret, length: 32)
            let bytes = header + salt + limits + keyID + secret + checksum
            return "untrusted comment: minisign secret key \(publicKey.keyIDHex)\n\(Data(bytes).base64EncodedString())\n"
        }
    }

    /// A `.minisig` file.
    public struct Signature: Sendable, Hashable {
        public enum Algorithm: Sendable, Hashable {
            /// `Ed`: the file itself is signed.
            case legacy
            /// `ED`: the file's BLAKE2b-512 is signed.
            case prehashed
        }

        public let algorithm: Algorithm
        public let keyID: [UInt8]
        let signature: [UInt8]
        /// The first line's comment: not signed, not to be trusted.
        public let untrustedComment: String
        /// The comment covered by the global signature.
        public let trustedComment: String
        let globalSignature: [UInt8]

        /// Parses a `.minisig` file's four lines (ending in LF or CRLF, as `minisign -V` accepts).
        public init(text: String) throws {
            // Split by scalars: in a Swift string "\r\n" is one Character, which a split at "\n" misses.
            let lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { line in
                String(String.UnicodeScalarView(line.last == "\r" ? line.dropLast() : line[...]))
            }
            guard lines.count >= 4, lines[0].hasPrefix("untrusted comment: "), lines[2].hasPrefix("trusted comment: ") else {
                throw AutoupdateError(
                    .signature,
                    "not a minisign signature (expected 'untrusted comment:', a signature, 'trusted comment:', a global signature)")
            }
            guard let data = Data(base64Encoded: String(lines[1])), data.count == 74 else {
                throw AutoupdateError(.signature, "malformed minisign signature: its signature line is not 74 bytes of base64")
            }
            guard let global = Data(base64Encoded: String(lines[3])), global.count == 64 else {
                throw AutoupdateError(.signature, "malformed minisign signature: its global signature is not 64 bytes of base64")
            }
            let bytes = [UInt8](data)
            switch (bytes[0], bytes[1]) {
            case (0x45, 0x64): algorithm = .legacy
            case (0x45, 0x44): algorithm = .prehashed
            default:
                throw AutoupdateError(.signature, "malformed minisign signature: unknown algorithm '\(Minisign.printable(bytes[0..<2]))'")
            }
            keyID = Array(bytes[2..<10])
            signature = Array(bytes[10..<74])
            untrustedComment = String(lines[0].dropFirst("untrusted comment: ".count))
            trustedComment = String(lines[2].dropFirst("trusted comment: ".count))
            globalSignature = [UInt8](global)
        }

        init(
            algorithm: Algorithm, keyID: [UInt8], signature: [UInt8], untrustedComment: String, trustedComment: String,
            globalSignature: [UInt8]
        ) {
            self.algorithm = algorithm
            self.keyID = keyID
            self.signature = signature
            self.untrustedComment = untrustedComment
            self.trustedComment = trustedComment
            self.globalSignature = globalSignature
        }

        /// The key id as minisign prints it.
        public var keyIDHex: String { Minisign.hex(keyID.reversed()).uppercased() }

        /// The `.minisig` file.
        public var fileText: String {
            let tag: [UInt8] = algorithm == .prehashed ? [0x45, 0x44] : [0x45, 0x64]
            return """
                untrusted comment: \(untrustedComment)
                \(Data(tag + keyID + signature).base64EncodedString())
                trusted comment: \(trustedComment)
                \(Data(globalSignature).base64EncodedString())

                """
        }
    }

    /// BLAKE2b-512 of a file, streaming: what an `ED` signature signs.
    public struct Prehash: Sendable {
        private var state: GenericHashState

        public init() {
            state = GenericHashState(length: 64)
        }

        public mutating func update(_ bytes: UnsafeRawBufferPointer) {
            state.update(bytes)
        }

        public mutating func update(_ bytes: [UInt8]) {
            bytes.withUnsafeBytes { state.update($0) }
        }

        /// The 64-byte digest.
        public mutating func finalize() -> [UInt8] {
            state.finalize()
        }
    }

    /// The ``Prehash`` of a file, read in 1 MiB pieces.
    public static func prehash(ofFile path: String) throws -> [UInt8] {
        guard let handle = OpenFile(forReadingAtPath: path) else {
            throw AutoupdateError.unreadable(path)
        }
        defer { try? handle.close() }
        var hasher = Prehash()
        while let data = try handle.read(upToCount: 1 << 20), !data.isEmpty {
            data.withUnsafeBytes { hasher.update($0) }
        }
        return hasher.finalize()
    }

    /// A new key pair.
    public static func generateKeyPair() -> SecretKey {
        Sodium.ensureInitialized()
        var publicKey = [UInt8](repeating: 0, count: 32)
        var secret = [UInt8](repeating: 0, count: 64)
        var keyID = [UInt8](repeating: 0, count: 8)
        crypto_sign_keypair(&publicKey, &secret)
        randombytes_buf(&keyID, 8)
        return SecretKey(keyID: keyID, secret: secret)
    }

    /// Signs a file's prehash (``Prehash``) as minisign does (`ED`).
    ///
    /// - Parameters:
    ///   - prehash: The file's ``Prehash`` digest.
    ///   - key: The secret key.
    ///   - trustedComment: One line, signed with the signature (minisign's default is
    ///     `timestamp:<unix time>\tfile:<name>\thashed`).
    ///   - untrustedComment: One line, not signed (a label for people).
    public static func sign(
        prehash: [UInt8], with key: SecretKey, trustedComment: String, untrustedComment: String = "signature from minisign secret key"
    ) throws -> Signature {
        guard !trustedComment.contains(where: \.isNewline), !untrustedComment.contains(where: \.isNewline) else {
            throw AutoupdateError(.invalidArgument, "a signature's comments must be one line each")
        }
        Sodium.ensureInitialized()
        var signature = [UInt8](repeating: 0, count: 64)
        crypto_sign_detached(&signature, nil, prehash, UInt64(prehash.count), key.secret)
        var global = [UInt8](repeating: 0, count: 64)
        let signed = signature + Array(trustedComment.utf8)
        crypto_sign_detached(&global, nil, signed, UInt64(signed.count), key.secret)
        return Signature(
            algorithm: .prehashed, keyID: key.keyID, signature: signature, untrustedComment: untrustedComment,
            trustedComment: trustedComment, globalSignature: global)
    }

    /// What a successful ``verify(_:prehash:message:trusting:)`` establishes.
    public struct Verified: Sendable, Hashable {
        /// The key that signed.
        public let key: PublicKey
        /// The signed trusted comment.
        public let trustedComment: String
    }

    /// Checks a signature: by one of `keys`, over the file, with its trusted comment.
    ///
    /// - Parameters:
    ///   - signature: The signature, parsed.
    ///   - prehash: The file's ``Prehash`` digest (for `ED`).
    ///   - message: The whole file, when at hand (needed for a legacy `Ed` signature).
    ///   - keys: The trusted keys (several during a key rotation).
    /// - Throws: ``AutoupdateError`` `.signature` saying which check failed: the key id is none
    ///   of `keys`, the signature does not match the bytes, or the trusted comment was altered.
    public static func verify(
        _ signature: Signature, prehash: [UInt8]?, message: [UInt8]? = nil, trusting keys: [PublicKey]
    ) throws -> Verified {
        let key = try verifyTrustedComment(signature, trusting: keys)
        let signed: [UInt8]
        switch signature.algorithm {
        case .prehashed:
            guard let digest = prehash ?? message.map({ blake2b($0, length: 64) }) else {
                throw AutoupdateError(.signature, "the signature cannot be checked without the file")
            }
            signed = digest
        case .legacy:
            guard let message else {
                throw legacyWithoutMessage
            }
            signed = message
        }
        guard crypto_sign_verify_detached(signature.signature, signed, UInt64(signed.count), key.key) == 0 else {
            throw AutoupdateError.signatureMismatch(keyID: key.keyIDHex)
        }
        return Verified(key: key, trustedComment: signature.trustedComment)
    }

    /// The first half of ``verify(_:prehash:message:trusting:)``, which needs no file: the key is
    /// trusted and the trusted comment is the one it signed. Lets a client refuse a release
    /// before downloading it.
    ///
    /// - Returns: The key that signed.
    public static func verifyTrustedComment(_ signature: Signature, trusting keys: [PublicKey]) throws -> PublicKey {
        Sodium.ensureInitialized()
        guard let key = keys.first(where: { $0.keyID == signature.keyID }) else {
            let trusted = keys.map(\.keyIDHex).joined(separator: ", ")
            throw AutoupdateError(
                .signature,
                "signed by key \(signature.keyIDHex), which is not a trusted key (trusted: \(trusted.isEmpty ? "none" : trusted))")
        }
        let global = signature.signature + Array(signature.trustedComment.utf8)
        guard crypto_sign_verify_detached(signature.globalSignature, global, UInt64(global.count), key.key) == 0 else {
            throw AutoupdateError(
                .signature, "the trusted comment of the signature by key \(key.keyIDHex) was altered (its global signature does not match)")
        }
        return key
    }

    /// Checks a signature over bytes that stream past, never holding them: a prehashed (`ED`)
    /// signature through the file's BLAKE2b-512, a legacy (`Ed`) one through Ed25519's own hash,
    /// SHA-512(R ‖ A ‖ M), and the curve check once the stream ends (RFC 8032 §5.1.7).
    ///
    /// ```swift
    /// var verifier = try Minisign.StreamVerifier(signature, trusting: [key])  // trusted comment checked here
    /// for try await chunk in download { chunk.withUnsafeBytes { verifier.update($0) } }
    /// let verified = try verifier.finalize()
    /// ```
    public struct StreamVerifier: Sendable {
        private enum Hash: Sendable {
            case prehash(Prehash)
            case legacy(Sha512State)
        }

        /// The key that signed (its trusted comment already verified).
        public let key: PublicKey
        private let signature: Signature
        private var hash: Hash

        /// Checks the key and the trusted comment (see ``verifyTrustedComment(_:trusting:)``);
        /// the bytes follow.
        public init(_ signature: Signature, trusting keys: [PublicKey]) throws {
            key = try verifyTrustedComment(signature, trusting: keys)
            self.signature = signature
            switch signature.algorithm {
            case .prehashed:
                hash = .prehash(Prehash())
            case .legacy:
                var state = Sha512State()
                state.update(Array(signature.signature[0..<32]) + key.key)  // R ‖ A
                hash = .legacy(state)
            }
        }

        public mutating func update(_ bytes: UnsafeRawBufferPointer) {
            switch hash {
            case .prehash(var prehash):
                prehash.update(bytes)
                hash = .prehash(prehash)
            case .legacy(var state):
                state.update(bytes)
                hash = .legacy(state)
            }
        }

        /// Checks the signature over everything passed to ``update(_:)``.
        ///
        /// - Throws: ``AutoupdateError`` `.signature` when it does not match the bytes.
        public mutating func finalize() throws -> Verified {
            let matches: Bool
            switch hash {
            case .prehash(var prehash):
                let digest = prehash.finalize()
                matches = crypto_sign_verify_detached(signature.signature, digest, UInt64(digest.count), key.key) == 0
            case .legacy(var state):
                matches = autoupdate_ed25519_verify_hram(signature.signature, key.key, state.finalize()) == 0
            }
            guard matches else {
                throw AutoupdateError.signatureMismatch(keyID: key.keyIDHex)
            }
            return Verified(key: key, trustedComment: signature.trustedComment)
        }
    }

    static let legacyWithoutMessage = AutoupdateError(
        .signature,
        "a legacy (non-prehashed) minisign signature cannot be checked without the file's bytes; pass them whole, or use a StreamVerifier")

    // MARK: Helpers

    static func blake2b(_ bytes: [UInt8], length: Int) -> [UInt8] {
        var state = GenericHashState(length: length)
        bytes.withUnsafeBytes { state.update($0) }
        return state.finalize()
    }

    /// Whether the public key stored in a 64-byte secret key is the one its seed gives.
    static func publicHalfMatches(_ secret: [UInt8]) -> Bool {
        Sodium.ensureInitialized()
        var publicKey = [UInt8](repeating: 0, count: 32)
        var regenerated = [UInt8](repeating: 0, count: 64)
        crypto_sign_seed_keypair(&publicKey, &regenerated, Array(secret[0..<32]))
        return publicKey == Array(secret[32..<64])
    }

    static func hex<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
        bytes.map { $0.hex(width: 2) }.joined()
    }

    private static func printable(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.map { (0x20...0x7E).contains($0) ? $0 : 0x3F }, as: UTF8.self)
    }
}

/// libsodium's BLAKE2b state, kept in a 64-byte-aligned buffer (the C type is over-aligned and
/// does not import into Swift).
struct GenericHashState: Sendable {
    private var storage: AlignedBytes
    private let length: Int

    init(length: Int) {
        Sodium.ensureInitialized()
        self.length = length
        storage = AlignedBytes(count: crypto_generichash_statebytes())
        _ = storage.withPointer { autoupdate_generichash_init($0, length) }
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        storage.makeUnique()
        _ = storage.withPointer { autoupdate_generichash_update($0, base.assumingMemoryBound(to: UInt8.self), UInt64(bytes.count)) }
    }

    mutating func finalize() -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: length)
        storage.makeUnique()
        _ = storage.withPointer { autoupdate_generichash_final($0, &digest, length) }
        return digest
    }
}

/// libsodium's SHA-512 state, kept like ``GenericHashState``.
struct Sha512State: Sendable {
    private var storage: AlignedBytes

    init() {
        Sodium.ensureInitialized()
        storage = AlignedBytes(count: crypto_hash_sha512_statebytes())
        _ = storage.withPointer { autoupdate_sha512_init($0) }
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        storage.makeUnique()
        _ = storage.withPointer { autoupdate_sha512_update($0, base.assumingMemoryBound(to: UInt8.self), UInt64(bytes.count)) }
    }

    mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    mutating func finalize() -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 64)
        storage.makeUnique()
        _ = storage.withPointer { autoupdate_sha512_final($0, &digest) }
        return digest
    }
}

/// A heap buffer aligned to 64 bytes, copied on write.
struct AlignedBytes: Sendable {
    private final class Box: Sendable {
        let count: Int
        // Safe: libsodium's state behind it is written only through a uniquely referenced box
        // (makeUnique), so no two threads ever share a state they mutate.
        nonisolated(unsafe) let pointer: UnsafeMutableRawPointer

        init(count: Int) {
            self.count = count
            pointer = .allocate(byteCount: count, alignment: 64)
            pointer.initializeMemory(as: UInt8.self, repeating: 0, count: count)
        }

        deinit {
            pointer.deallocate()
        }
    }

    private var box: Box

    init(count: Int) {
        box = Box(count: count)
    }

    mutating func makeUnique() {
        guard !isKnownUniquelyReferenced(&box) else { return }
        let copy = Box(count: box.count)
        copy.pointer.copyMemory(from: box.pointer, byteCount: box.count)
        box = copy
    }

    func withPointer<Result>(_ body: (UnsafeMutableRawPointer) -> Result) -> Result {
        body(box.pointer)
    }
}
