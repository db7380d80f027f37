extension Version {
    /// Parses and normalizes a PEP 440 version.
    ///
    /// Accepts exactly what `packaging.version.Version` accepts (its regular expression, matched
    /// in full, case-insensitively, after stripping Unicode whitespace from both ends), up to
    /// ``maximumTextLength``: a longer text, or one whose normalized form (with its newline) would
    /// not fit in that many bytes, is refused.
    ///
    /// - Parameter text: The version as written, such as `"v1.0-RC1"` or `" 2!1.0.post3+local.7 "`.
    /// - Throws: ``AutoupdateError`` with code ``AutoupdateError/Code/invalidVersion`` and a message
    ///   naming the text and where it stops being a version.
    public init(_ text: String) throws {
        guard text.utf8.count <= Self.maximumTextLength else {
            throw AutoupdateError(
                .invalidVersion, "\(quoted(text, limit: 40)) is not a valid version here: it is longer than \(Self.maximumTextLength) bytes"
            )
        }
        var parser = VersionParser(text)
        guard let version = parser.parse() else {
            throw AutoupdateError(.invalidVersion, Self.invalidMessage(text, parser: parser))
        }
        guard version.description.utf8.count < Self.maximumTextLength else {
            throw AutoupdateError(
                .invalidVersion,
                "\(quoted(text, limit: 40)) is not a valid version here: normalized, it is longer than \(Self.maximumTextLength - 1) bytes")
        }
        self = version
    }

    /// The longest version text autoupdate reads or writes anywhere (the server's and the
    /// installed `version.txt`, `.queue`, the records in the update folder), in bytes: 4096.
    /// One limit for reading and writing, so that whatever is installed can be read back.
    public static let maximumTextLength = 4096

    private static func invalidMessage(_ text: String, parser: VersionParser) -> String {
        let shown = quoted(text)
        let hint = "expected a PEP 440 version such as 1.2.3, 2.0rc1 or 1!2.0.post1+local"
        switch parser.failure {
        case .empty:
            return "\(shown) is not a valid PEP 440 version: it is empty (\(hint))"
        case .notASCII:
            return "\(shown) is not a valid PEP 440 version: it holds characters outside ASCII (\(hint))"
        case .noRelease:
            return "\(shown) is not a valid PEP 440 version: it does not start with a release number (\(hint))"
        case .unexpected(let offset):
            let rest = String(decoding: parser.bytes[offset...], as: UTF8.self)
            return "\(shown) is not a valid PEP 440 version: unexpected \(quoted(rest)) (\(hint))"
        case nil:
            return "\(shown) is not a valid PEP 440 version (\(hint))"
        }
    }
}

/// A deterministic left-to-right reading of `packaging`'s `VERSION_PATTERN`.
///
/// The pattern's optional parts are possessive (`?+`, `*+`), so each part either matches at the
/// current position, taking the first alternative in the pattern's order, or matches nothing;
/// no backtracking is ever needed. That makes a hand-written scanner exactly equivalent, which
/// the differential test against `packaging` checks.
struct VersionParser {
    enum Failure: Equatable {
        case empty
        case notASCII
        case noRelease
        case unexpected(at: Int)
    }

    /// The trimmed input, lowercased (the pattern is case-insensitive).
    private(set) var bytes: [UInt8] = []
    private(set) var failure: Failure?
    private var position = 0
    private let text: String

    init(_ text: String) {
        self.text = text
    }

    mutating func parse() -> Version? {
        let scalars = Array(text.unicodeScalars)
        var start = scalars.startIndex
        var end = scalars.endIndex
        while start < end, Self.isPythonWhitespace(scalars[start]) { start += 1 }
        while end > start, Self.isPythonWhitespace(scalars[end - 1]) { end -= 1 }
        guard start < end else {
            failure = .empty
            return nil
        }
        var lowered: [UInt8] = []
        lowered.reserveCapacity(end - start)
        for scalar in scalars[start..<end] {
            guard scalar.isASCII else {
                failure = .notASCII
                return nil
            }
            let byte = UInt8(scalar.value)
            lowered.append(byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte)
        }
        bytes = lowered
        return parseBody()
    }

    private mutating func parseBody() -> Version? {
        _ = consume("v")

        var epoch = Version.Number.zero
        let epochStart = position
        if let digits = scanDigits(), consume("!") {
            epoch = digits
        } else {
            position = epochStart
        }

        guard let first = scanDigits() else {
            failure = .noRelease
            return nil
        }
        var release = [first]
        while peek(0) == UInt8(ascii: "."), Self.isDigit(peek(1)) {
            position += 1
            if let next = scanDigits() {
                release.append(next)
            }
        }

        let preRelease = parsePreRelease()
        let postRelease = parsePostRelease()
        let devRelease = parseLetterPart(["dev"]).map { $0.number }
        guard let local = parseLocal() else {
            return nil
        }
        guard position == bytes.count else {
            failure = .unexpected(at: position)
            return nil
        }
        return Version(
            epoch: epoch, release: release,
            preRelease: preRelease, postRelease: postRelease, devRelease: devRelease,
            local: local.isEmpty ? nil : local
        )
    }

    /// `[._-]?+ (alpha|a|beta|b|preview|pre|c|rc) [._-]?+ [0-9]*`
    private mutating func parsePreRelease() -> Version.PreRelease? {
        guard let (spelling, number) = parseLetterPart(["alpha", "a", "beta", "b", "preview", "pre", "c", "rc"]) else {
            return nil
        }
        let kind: Version.PreReleaseKind =
            switch spelling {
            case "alpha", "a": .alpha
            case "beta", "b": .beta
            default: .releaseCandidate
            }
        return Version.PreRelease(kind: kind, number: number)
    }

    /// `-[0-9]+` (the implicit post-release) or `[._-]? (post|rev|r) [._-]? [0-9]*`.
    private mutating func parsePostRelease() -> Version.Number? {
        let start = position
        if consume("-"), let number = scanDigits() {
            return number
        }
        position = start
        return parseLetterPart(["post", "rev", "r"]).map { $0.number }
    }

    /// An optional separator, the first of `spellings` that matches, an optional separator and
    /// optional digits (0 when absent). Consumes nothing when no spelling matches.
    private mutating func parseLetterPart(_ spellings: [String]) -> (spelling: String, number: Version.Number)? {
        let start = position
        if Self.isSeparator(peek(0)) {
            position += 1
        }
        guard let spelling = spellings.first(where: { matches($0) }) else {
            position = start
            return nil
        }
        position += spelling.utf8.count
        if Self.isSeparator(peek(0)) {
            position += 1
        }
        return (spelling: spelling, number: scanDigits() ?? .zero)
    }

    /// `(\+ [a-z0-9]+ ([._-][a-z0-9]+)*)?`; `[]` when absent, `nil` (with `failure` set) when malformed.
    private mutating func parseLocal() -> [Version.LocalSegment]? {
        guard consume("+") else {
            return []
        }
        var segments: [Version.LocalSegment] = []
        while true {
            let start = position
            while Self.isAlphanumeric(peek(0)) {
                position += 1
            }
            guard position > start else {
                // `+` not followed by a label: the optional local part matches nothing, so the
                // text fails at the `+`.
                failure = .unexpected(at: start - 1)
                return nil
            }
            let segment = String(decoding: bytes[start..<position], as: UTF8.self)
            segments.append(Version.Number(digits: segment).map { .number($0) } ?? .text(segment))
            // Another segment only when a separator is followed by a label character.
            guard Self.isSeparator(peek(0)), Self.isAlphanumeric(peek(1)) else {
                break
            }
            position += 1
        }
        return segments
    }

    // MARK: Scanning

    private func peek(_ offset: Int) -> UInt8? {
        position + offset < bytes.count ? bytes[position + offset] : nil
    }

    private func matches(_ literal: String) -> Bool {
        let literal = Array(literal.utf8)
        guard position + literal.count <= bytes.count else {
            return false
        }
        return bytes[position..<(position + literal.count)].elementsEqual(literal)
    }

    private mutating func consume(_ character: Unicode.Scalar) -> Bool {
        guard peek(0) == UInt8(character.value) else {
            return false
        }
        position += 1
        return true
    }

    private mutating func scanDigits() -> Version.Number? {
        let start = position
        while Self.isDigit(peek(0)) {
            position += 1
        }
        guard position > start else {
            return nil
        }
        return Version.Number(digits: String(decoding: bytes[start..<position], as: UTF8.self))
    }

    private static func isDigit(_ byte: UInt8?) -> Bool {
        guard let byte else { return false }
        return byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private static func isAlphanumeric(_ byte: UInt8?) -> Bool {
        guard let byte else { return false }
        return isDigit(byte) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
    }

    private static func isSeparator(_ byte: UInt8?) -> Bool {
        byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }

    /// What Python's `\s` matches in a `str` pattern (`str.isspace()`): Unicode category Zs or
    /// bidirectional class WS, B or S. Wider than `Character.isWhitespace` (it has U+001C–U+001F).
    static func isPythonWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            true
        default:
            false
        }
    }
}
