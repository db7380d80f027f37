import ArgumentParser
import Autoupdate
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct KeygenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make a minisign key pair for signing releases.",
        discussion: """
            The secret key is written unencrypted (as 'minisign -G -W' does), readable by you \
            only (mode 600): keep it off the server, in your CI's secret store. Give the public \
            key to clients (--public-key). Existing files are never overwritten.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "Where to write the secret key.")
    var secretKey: String

    @Option(help: "Where to write the public key.")
    var publicKey: String

    func run() async throws {
        global.bootstrapLogging()
        try await Failure.reporting {
            for path in [secretKey, publicKey] where FileManager.default.fileExists(atPath: path) {
                throw AutoupdateError(.invalidArgument, "\(path) exists; not overwriting a key (remove it first)")
            }
            let key = Minisign.generateKeyPair()
            try write(key.fileText, to: secretKey, mode: 0o600)
            try write(key.publicKey.fileText, to: publicKey, mode: 0o644)
            print("key \(key.publicKey.keyIDHex): secret key \(secretKey), public key \(publicKey)")
            print("public key (for --public-key, or minisign -P): \(key.publicKey.base64)")
        }
    }

    private func write(_ text: String, to path: String, mode: mode_t) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else {
            throw AutoupdateError(.fileSystem, "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        let handle = OpenFile(taking: FileDescriptor(rawValue: descriptor))
        try handle.write(contentsOf: Data(text.utf8))
        try handle.synchronize()
    }
}

struct SignCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Sign a file with a minisign secret key: FILE.minisig.",
        discussion: """
            The signature is minisign's (prehashed, 'ED'); 'minisign -V' checks it. The trusted \
            comment defaults to 'timestamp:T<tab>file:NAME', plus 'version:V' and the file's \
            'size:N' with --version, 'expires:E' with --expires-in and 'app:NAME' with --app (as \
            given to publish); release.json's also names its 'serial:N'. Re-signing on a schedule \
            for clients that require freshness: autoupdate sign SERVER_DIR/version.txt --secret-key \
            SK --expires-in 604800 [--app NAME], and the same for SERVER_DIR/release.json.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The file to sign.")
    var file: String

    @Option(help: "The secret key file.")
    var secretKey: String

    @Option(help: "The trusted comment (one line), instead of the default.")
    var trustedComment: String?

    @Option(help: "The release this file belongs to, named in the trusted comment (clients require it on archives).")
    var version: String?

    @Option(help: "Seconds from now until which the signature may be trusted (named in the trusted comment).")
    var expiresIn: Double?

    @Option(help: "The app this file is for, named in the trusted comment (clients refuse another app's); as given to publish.")
    var app: String?

    func validate() throws {
        if trustedComment != nil, version != nil || expiresIn != nil || app != nil {
            throw ValidationError(
                "--trusted-comment replaces the default comment; do not combine it with --version, --expires-in or --app.")
        }
        if let expiresIn, !(expiresIn > 0 && expiresIn.isFinite) {
            throw ValidationError("--expires-in must be a positive number of seconds.")
        }
    }

    func run() async throws {
        global.bootstrapLogging()
        try await Failure.reporting {
            let key = try Minisign.SecretKey(file: secretKey)
            let name = URL(fileURLWithPath: file).lastPathComponent
            let now = Date()
            if let app { try ReleaseComment.validate(app: app) }
            let size = version == nil ? nil : (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int).map(Int64.init)
            // A release index's signature names its serial, which clients check.
            let serial =
                name == Publisher.indexName
                ? try FileManager.default.contents(atPath: file).map { try ReleaseIndex.decode(Array($0), source: file).serial } : nil
            let comment =
                try trustedComment
                ?? ReleaseComment.make(
                    file: name, version: version.map { try Version($0) }, timestamp: now,
                    expires: expiresIn.map { now.addingTimeInterval($0) }, app: app, size: size, serial: serial)
            let signature = try Minisign.sign(prehash: try Minisign.prehash(ofFile: file), with: key, trustedComment: comment)
            let output = file + ".minisig"
            do {
                try Data(signature.fileText.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
            } catch {
                throw AutoupdateError(.fileSystem, "cannot write \(output): \(describeFileError(error))", underlying: error)
            }
            print("signed \(file) with key \(key.publicKey.keyIDHex): \(output)")
        }
    }
}

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a file's minisign signature (FILE.minisig) against a public key.",
        discussion: "Prints the trusted comment when the signature is valid; exit 1 otherwise, naming what failed."
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The signed file.")
    var file: String

    @Option(name: .customLong("public-key"), help: "A public key file or the one-line key; repeat it to accept any of several.")
    var publicKeys: [String]

    @Option(help: "The signature file. Default: FILE.minisig.")
    var signature: String?

    func run() async throws {
        global.bootstrapLogging()
        try await Failure.reporting {
            let keys = try publicKeys.map(Minisign.PublicKey.init(fileOrKey:))
            let signaturePath = signature ?? file + ".minisig"
            guard let text = FileManager.default.contents(atPath: signaturePath) else {
                throw AutoupdateError(.signature, "cannot read the signature \(signaturePath)")
            }
            let parsed: Minisign.Signature
            do {
                parsed = try Minisign.Signature(text: String(decoding: text, as: UTF8.self))
            } catch let error as AutoupdateError {
                throw error.adding(context: signaturePath)
            }
            let verified: Minisign.Verified
            switch parsed.algorithm {
            case .prehashed:
                verified = try Minisign.verify(parsed, prehash: try Minisign.prehash(ofFile: file), trusting: keys)
            case .legacy:
                guard let message = FileManager.default.contents(atPath: file) else {
                    throw AutoupdateError(.fileSystem, "cannot read \(file)")
                }
                verified = try Minisign.verify(parsed, prehash: nil, message: [UInt8](message), trusting: keys)
            }
            print("signature OK: \(file), key \(verified.key.keyIDHex)")
            print("trusted comment: \(verified.trustedComment)")
        }
    }
}
