import Autoupdate
import AutoupdateTestSupport
import CAutoupdateSodium
import Foundation
import Testing

/// Legacy (`Ed`) minisign signatures made here with libsodium, bytes and all, so that a test can
/// alter a signature and still give it a valid global signature.
private struct LegacySigner {
    let keyID: [UInt8] = (0..<8).map { _ in UInt8.random(in: 0...255) }
    var publicBytes = [UInt8](repeating: 0, count: 32)
    var secret = [UInt8](repeating: 0, count: 64)

    init() {
        _ = sodium_init()
        crypto_sign_keypair(&publicBytes, &secret)
    }

    var publicKey: Minisign.PublicKey {
        get throws { try Minisign.PublicKey(text: Data([0x45, 0x64] + keyID + publicBytes).base64EncodedString()) }
    }

    func sign(_ message: [UInt8]) -> [UInt8] {
        var signature = [UInt8](repeating: 0, count: 64)
        crypto_sign_detached(&signature, nil, message, UInt64(message.count), secret)
        return signature
    }

    /// A `.minisig` holding `signature`, with a valid global signature over it and `comment`.
    func minisig(_ signature: [UInt8], comment: String) throws -> Minisign.Signature {
        let global = sign(signature + Array(comment.utf8))
        return try Minisign.Signature(
            text: """
                untrusted comment: test
                \(Data([0x45, 0x64] + keyID + signature).base64EncodedString())
                trusted comment: \(comment)
                \(Data(global).base64EncodedString())

                """)
    }
}

/// Runs Debian's `minisign` in `folder`.
private func minisign(_ arguments: [String], in folder: TemporaryDirectory) async throws -> ChildProcess.Result {
    try await ChildProcess.run("/usr/bin/minisign", arguments, currentDirectory: folder.path)
}

@Suite("Minisign: interoperable with the minisign tool, strict on every check")
struct MinisignTests {
    @Test("keys and signatures made by minisign verify here, and ours verify with minisign")
    func interoperability() async throws {
        let folder = try TemporaryDirectory(prefix: "minisign")
        let file = folder.url.appending(path: "release.tar.gz")
        try Data((0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }).write(to: file)

        // Theirs → ours: a key pair from `minisign -G -W`, a prehashed and a legacy signature.
        #expect(try await minisign(["-G", "-W", "-p", "their.pub", "-s", "their.key"], in: folder).status == 0)
        #expect(try await minisign(["-S", "-s", "their.key", "-m", file.path, "-t", "version:1.0"], in: folder).status == 0)
        let theirKey = try Minisign.PublicKey(fileOrKey: folder.url.appending(path: "their.pub").path)
        let signature = try Minisign.Signature(text: String(contentsOf: file.appendingPathExtension("minisig"), encoding: .utf8))
        #expect(signature.algorithm == .prehashed)
        let verified = try Minisign.verify(signature, prehash: try Minisign.prehash(ofFile: file.path), trusting: [theirKey])
        #expect(verified.trustedComment == "version:1.0")
        #expect(verified.key == theirKey)
        #expect(try await minisign(["-S", "-l", "-s", "their.key", "-m", file.path, "-x", "legacy.minisig"], in: folder).status == 0)
        let legacy = try Minisign.Signature(text: String(contentsOf: folder.url.appending(path: "legacy.minisig"), encoding: .utf8))
        #expect(legacy.algorithm == .legacy)
        _ = try Minisign.verify(legacy, prehash: nil, message: [UInt8](try Data(contentsOf: file)), trusting: [theirKey])
        let streamed = #expect(throws: AutoupdateError.self) {
            try Minisign.verify(legacy, prehash: try Minisign.prehash(ofFile: file.path), trusting: [theirKey])
        }
        #expect(streamed?.message.contains("legacy") == true)
        // Their unencrypted secret key signs here too.
        let theirSecret = try Minisign.SecretKey(file: folder.url.appending(path: "their.key").path)
        #expect(theirSecret.publicKey == theirKey)

        // Ours → theirs: our key files and signatures, checked by `minisign -V`.
        let ours = Minisign.generateKeyPair()
        try Data(ours.fileText.utf8).write(to: folder.url.appending(path: "our.key"))
        try Data(ours.publicKey.fileText.utf8).write(to: folder.url.appending(path: "our.pub"))
        let ourSignature = try Minisign.sign(
            prehash: try Minisign.prehash(ofFile: file.path), with: ours,
            trustedComment: "timestamp:1\tfile:release.tar.gz\tversion:2.0\thashed")
        try Data(ourSignature.fileText.utf8).write(to: folder.url.appending(path: "ours.minisig"))
        let checked = try await minisign(["-V", "-p", "our.pub", "-m", file.path, "-x", "ours.minisig"], in: folder)
        #expect(checked.status == 0, "\(checked.stderr)")
        #expect(checked.stdout.contains("Trusted comment: timestamp:1\tfile:release.tar.gz\tversion:2.0\thashed"))
        #expect(
            try await minisign(["-V", "-H", "-P", ours.publicKey.base64, "-m", file.path, "-x", "ours.minisig", "-q"], in: folder).status
                == 0)
        // Our secret key file is one minisign reads.
        #expect(try await minisign(["-S", "-W", "-s", "our.key", "-m", file.path, "-x", "by-tool.minisig"], in: folder).status == 0)
        #expect(try await minisign(["-V", "-p", "our.pub", "-m", file.path, "-x", "by-tool.minisig", "-q"], in: folder).status == 0)
        #expect(try Minisign.SecretKey(text: ours.fileText).publicKey == ours.publicKey)
        #expect(try Minisign.PublicKey(text: ours.publicKey.base64) == ours.publicKey)
    }

    @Test("altered bytes, an altered trusted comment and an unknown key are each refused, named")
    func refusals() throws {
        let key = Minisign.generateKeyPair()
        let other = Minisign.generateKeyPair()
        let message = Array("the release".utf8)
        let signature = try Minisign.sign(prehash: hash(message), with: key, trustedComment: "version:1.0")
        _ = try Minisign.verify(signature, prehash: hash(message), trusting: [key.publicKey])
        _ = try Minisign.verify(signature, prehash: nil, message: message, trusting: [other.publicKey, key.publicKey])

        let altered = #expect(throws: AutoupdateError.self) {
            try Minisign.verify(signature, prehash: hash(message + [0]), trusting: [key.publicKey])
        }
        #expect(altered?.code == .signature)
        #expect(altered?.message.contains("does not match the file's bytes") == true)

        let forged = try Minisign.Signature(
            text: signature.fileText.replacingOccurrences(of: "trusted comment: version:1.0", with: "trusted comment: version:9.0"))
        let comment = #expect(throws: AutoupdateError.self) {
            try Minisign.verify(forged, prehash: hash(message), trusting: [key.publicKey])
        }
        #expect(comment?.message.contains("trusted comment") == true && comment?.message.contains("altered") == true)

        let stranger = #expect(throws: AutoupdateError.self) {
            try Minisign.verify(signature, prehash: hash(message), trusting: [other.publicKey])
        }
        #expect(
            stranger?.message
                == "signed by key \(key.publicKey.keyIDHex), which is not a trusted key (trusted: \(other.publicKey.keyIDHex))")

        for text in [
            "", "untrusted comment: x\nnot base64\ntrusted comment: y\nAAAA\n", String(signature.fileText.dropLast(30)), "RWQ",
            key.fileText,
        ] {
            #expect(throws: AutoupdateError.self) { try Minisign.Signature(text: text) }
        }
        #expect(throws: AutoupdateError.self) { try Minisign.PublicKey(text: "RWQ=") }
        #expect(throws: AutoupdateError.self) { try Minisign.SecretKey(text: key.publicKey.fileText) }
        // A secret key whose stored public half was tampered with.
        var bytes = [UInt8](Data(base64Encoded: String(key.fileText.split(separator: "\n")[1]))!)
        bytes[120] ^= 1
        let corrupted = "untrusted comment: x\n" + Data(bytes).base64EncodedString() + "\n"
        #expect(throws: AutoupdateError.self) { try Minisign.SecretKey(text: corrupted) }
    }

    @Test("streamed: legacy signatures by minisign -l and prehashed ones verify at any chunking; altered bytes do not")
    func streamed() async throws {
        let folder = try TemporaryDirectory(prefix: "minisign")
        let ours = Minisign.generateKeyPair()
        try Data(ours.fileText.utf8).write(to: folder.url.appending(path: "our.key"))
        for (index, size) in [0, 1, 63, 64, 65, 127, 128, 129, 100_000].enumerated() {
            let bytes = Fixtures.randomBytes(count: size, seed: UInt64(size))
            let file = folder.url.appending(path: "file-\(index)")
            try Data(bytes).write(to: file)
            for legacy in [true, false] {
                let made = try await minisign(
                    ["-S", "-W"] + (legacy ? ["-l"] : []) + ["-s", "our.key", "-m", file.path, "-x", "s.minisig"], in: folder)
                try #require(made.status == 0, "\(made.stderr)")
                let signature = try Minisign.Signature(text: String(contentsOf: folder.url.appending(path: "s.minisig"), encoding: .utf8))
                #expect(signature.algorithm == (legacy ? .legacy : .prehashed))
                var random = SeededRandom(seed: UInt64(size) + 1)
                func stream(_ bytes: [UInt8]) throws -> Minisign.Verified {
                    var verifier = try Minisign.StreamVerifier(signature, trusting: [ours.publicKey])
                    var offset = 0
                    while offset < bytes.count {
                        let end = min(bytes.count, offset + Int(random.next() % 700) + 1)
                        bytes[offset..<end].withUnsafeBytes { verifier.update($0) }
                        offset = end
                    }
                    return try verifier.finalize()
                }
                #expect(try stream(bytes).key == ours.publicKey)
                let altered = #expect(throws: AutoupdateError.self) { try stream(bytes + [0]) }
                #expect(altered?.message.contains("does not match the file's bytes") == true)
            }
        }
    }

    @Test("the streamed Ed25519 check agrees with libsodium's on valid, altered and malleated signatures")
    func streamedDifferential() throws {
        var random = SeededRandom(seed: 77)
        // The group order L, little-endian: S + L is the classic malleation.
        let order: [UInt8] =
            [0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14]
            + [UInt8](repeating: 0, count: 15) + [0x10]
        var accepted = 0
        for round in 0..<40 {
            let key = LegacySigner()
            let message = Fixtures.randomBytes(count: Int(random.next() % 3000), seed: UInt64(round))
            let good = key.sign(message)
            var candidates = [good]
            for flip in [0, 31, 32, 63] {  // R's and S's first and last bytes
                var bytes = good
                bytes[flip] ^= UInt8(1 << (random.next() % 8))
                candidates.append(bytes)
            }
            var malleated = good
            var carry = 0
            for index in 0..<32 {
                let sum = Int(malleated[32 + index]) + Int(order[index]) + carry
                malleated[32 + index] = UInt8(sum & 0xFF)
                carry = sum >> 8
            }
            candidates.append(malleated)
            for bytes in candidates {
                // The global signature is made afresh, so that only the Ed25519 check can refuse.
                let signature = try key.minisig(bytes, comment: "round \(round)")
                let whole = (try? Minisign.verify(signature, prehash: nil, message: message, trusting: [key.publicKey])) != nil
                var verifier = try Minisign.StreamVerifier(signature, trusting: [key.publicKey])
                message.withUnsafeBytes { verifier.update($0) }
                let streamed = (try? verifier.finalize()) != nil
                #expect(whole == streamed, "round \(round): libsodium says \(whole), the streamed check \(streamed)")
                accepted += whole ? 1 : 0
            }
        }
        #expect(accepted == 40, "exactly the unaltered signatures hold")
    }

    @Test("release comments bind the version and the archive")
    func releaseComments() {
        let comment = ReleaseComment(
            ReleaseComment.make(file: "project.zip", version: try? Version("2.0"), timestamp: Date(timeIntervalSince1970: 1_700_000_000)))
        #expect(comment.fields == ["timestamp": "1700000000", "file": "project.zip", "version": "2.0", "hashed": ""])
        #expect(comment.timestamp == Date(timeIntervalSince1970: 1_700_000_000))
        #expect(comment.expires == nil)
    }

    private func hash(_ bytes: [UInt8]) -> [UInt8] {
        var prehash = Minisign.Prehash()
        prehash.update(bytes)
        return prehash.finalize()
    }
}
