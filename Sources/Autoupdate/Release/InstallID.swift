#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension AppFolder {
    /// The environment variable that overrides the install id (a fleet that names its machines).
    static let installIDVariable = "AUTOUPDATE_INSTALL_ID"

    /// This install's random id, for staged rollouts: 32 hex digits made at first use and kept
    /// in the update folder (`install-id`), or the value of `AUTOUPDATE_INSTALL_ID` when set.
    ///
    /// A missing or damaged `install-id` is made anew (the install then draws again: it may
    /// enter or leave a rollout once, which is all a damaged file can cost).
    ///
    /// - Throws: ``AutoupdateError`` `.invalidArgument` for an override that is not 1 to 128
    ///   letters, digits, `.`, `_` or `-`; `.fileSystem` when the id cannot be kept.
    func installID(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        if let override = environment[Self.installIDVariable] {
            guard Self.isValidInstallID(override) else {
                throw AutoupdateError.invalidEnvironment(
                    Self.installIDVariable, "an install id is 1 to 128 letters, digits, '.', '_' or '-'")
            }
            return override
        }
        let path = updateDirectory + "/install-id"
        if let data = FileManager.default.contents(atPath: path) {
            let text = String(String(decoding: data, as: UTF8.self).split(whereSeparator: \.isWhitespace).first ?? "")
            if Self.isValidInstallID(text) {
                return text
            }
        }
        let id = (0..<16).map { _ in UInt8.random(in: 0...255) }.map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }.joined()
        try FileManager.default.createDirectory(atPath: updateDirectory, withIntermediateDirectories: true)
        try AtomicFile.write(Array((id + "\n").utf8), to: path)
        return id
    }

    static func isValidInstallID(_ text: String) -> Bool {
        (1...128).contains(text.utf8.count)
            && text.unicodeScalars.allSatisfy {
                $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || ".-_".unicodeScalars.contains($0))
            }
    }
}
