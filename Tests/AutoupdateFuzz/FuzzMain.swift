@_spi(Internals) import Autoupdate
import Foundation

/// libFuzzer targets for the archive readers and decoders (`make fuzz`).
///
/// Built with `--sanitize=fuzzer --sanitize=address -DAUTOUPDATE_FUZZING`, libFuzzer's own
/// `main` drives ``LLVMFuzzerTestOneInput`` for the target named by `AUTOUPDATE_FUZZ_TARGET`
/// (`tar`, `tgz`, `tbz2`, `zip`, `gzip`, `bzip2`, `compress`). Built normally, it replays inputs instead:
///
///     AutoupdateFuzz <target> <files or folders>
///
/// The invariant checked: any input either scans or fails with an ``AutoupdateError``; a crash,
/// a hang or any other error is a bug. The `compress` target checks the compressors instead:
/// any input, cut into any pieces, compresses (gzip and bzip2) and decodes back to itself.
#if AUTOUPDATE_FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzOne(data, size)
}
#else
@main
struct FuzzMain {
    static func main() {
        let arguments = CommandLine.arguments
        guard arguments.count >= 2, FuzzTarget.selected != nil else {
            FileHandle.standardError.write(
                Data("usage: AutoupdateFuzz <\(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|"))> [inputs]\n".utf8))
            exit(64)
        }
        var replayed = 0
        for path in arguments.dropFirst(2) {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: path)).map { $0.map { path + "/" + $0 } } ?? [path]
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                _ = data.withUnsafeBytes { fuzzOne($0.baseAddress?.assumingMemoryBound(to: UInt8.self), $0.count) }
                replayed += 1
            }
        }
        print("replayed \(replayed) inputs")
    }
}
#endif

enum FuzzTarget: String, CaseIterable {
    case tar, tgz, tbz2, zip, gzip, bzip2, compress

    /// `AUTOUPDATE_FUZZ_TARGET` under libFuzzer, else the first argument.
    static let selected: FuzzTarget? = {
        if let name = ProcessInfo.processInfo.environment["AUTOUPDATE_FUZZ_TARGET"] {
            return FuzzTarget(rawValue: name)
        }
        return CommandLine.arguments.count >= 2 ? FuzzTarget(rawValue: CommandLine.arguments[1]) : nil
    }()

    /// A folder for zip spools, made once.
    static let spoolFolder: String = {
        let path = NSTemporaryDirectory() + "autoupdate-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()
}

/// One input: the first byte picks the chunk size, so chunk boundaries are fuzzed too.
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0, let target = FuzzTarget.selected else { return 0 }
    let chunkSize = Int(data[0]) * 61 + 1
    let input = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    if target == .compress {
        compressRoundTrip(input, pattern: data[0])
        return 0
    }
    do {
        switch target {
        case .tar: _ = try ArchiveScanner.scan(input, format: .tar, chunkSize: chunkSize)
        case .tgz: _ = try ArchiveScanner.scan(input, format: .tarGzip, chunkSize: chunkSize)
        case .tbz2: _ = try ArchiveScanner.scan(input, format: .tarBzip2, chunkSize: chunkSize)
        case .zip: _ = try ArchiveScanner.scan(input, format: .zip, chunkSize: chunkSize, spoolFolder: FuzzTarget.spoolFolder)
        case .gzip: _ = try ArchiveScanner.decode(input, format: .tarGzip, chunkSize: chunkSize)
        case .bzip2: _ = try ArchiveScanner.decode(input, format: .tarBzip2, chunkSize: chunkSize)
        case .compress: break
        }
    } catch is AutoupdateError {
        // Refusing bad input is the expected outcome.
    } catch {
        FileHandle.standardError.write(Data("unexpected error type \(type(of: error)): \(error)\n".utf8))
        abort()
    }
    return 0
}

/// Compresses `input` in pieces chosen by `pattern` (empty pieces among them), decodes it, and
/// aborts unless the result is `input` exactly.
func compressRoundTrip(_ input: UnsafeRawBufferPointer, pattern: UInt8) {
    let pieceSizes = [Int(pattern) * 37 + 1, 0, 512, Int(pattern & 0x0F), 0]
    for format in [ArchiveFormat.tarGzip, .tarBzip2] {
        do {
            let compressed = try ArchiveScanner.compressed(input, format: format, pieceSizes: pieceSizes)
            let decoded = try compressed.withUnsafeBytes { try ArchiveScanner.decoded($0, format: format) }
            guard decoded.elementsEqual(input) else {
                FileHandle.standardError.write(Data("\(format) round trip changed \(input.count) bytes into \(decoded.count)\n".utf8))
                abort()
            }
        } catch {
            FileHandle.standardError.write(Data("\(format) round trip failed: \(error)\n".utf8))
            abort()
        }
    }
}
