/// One PEP 440 version specifier, such as `>=2.1`, `~=2.1`, `==2.*` or `!=2.3.1`, matching
/// exactly as Python's `packaging.specifiers.Specifier` does.
///
/// Specifiers are usually combined in a ``VersionSpecifierSet``; parse one of those instead.
public struct VersionSpecifier: Sendable, Hashable, CustomStringConvertible {
    /// The comparison a specifier makes.
    public enum Operator: String, Sendable, Hashable, CaseIterable {
        /// `~=V`: at least V, and within V's series (`~=2.2` is `>=2.2, ==2.*`).
        case compatible = "~="
        /// `==V`, or `==V.*` for a prefix match; a local label matters only when V has one.
        case equal = "=="
        /// `!=V` or `!=V.*`.
        case notEqual = "!="
        /// `<=V`.
        case lessThanOrEqual = "<="
        /// `>=V`.
        case greaterThanOrEqual = ">="
        /// `<V`, which excludes V's own pre-releases unless V is one.
        case lessThan = "<"
        /// `>V`, which excludes V's post-releases and local versions unless V is a post-release.
        case greaterThan = ">"
        /// `===V`: the text, compared case-insensitively, not as a version.
        case arbitrary = "==="
    }

    /// The operator.
    public let `operator`: Operator
    /// The version text after the operator, as written (without surrounding whitespace).
    public let version: String

    /// The parsed version for every operator but `===` and the wildcard forms.
    private let parsedVersion: Version?
    /// For `==V.*`, `!=V.*` and `~=V`: the prefix a version must start with, split as
    /// `packaging` splits it (epoch first, then each dot-separated part).
    private let wildcardPrefix: [String]?

    /// `packaging`'s `Specifier.prereleases`: whether this specifier, on its own, lets
    /// pre-releases through a ``VersionSpecifierSet/filter(_:preReleases:version:)``.
    /// `nil` when it cannot say (`===` with text that is not a version).
    public var allowsPreReleases: Bool? {
        switch self.operator {
        case .notEqual:
            return false
        case .equal where wildcardPrefix != nil:
            return false
        case .arbitrary:
            return (try? Version(version))?.isPreRelease
        default:
            return parsedVersion?.isPreRelease ?? false
        }
    }

    /// The operator followed by the version, as `packaging` prints it.
    public var description: String { self.operator.rawValue + version }

    /// Parses one specifier. Whitespace around it and between the operator and the version is
    /// allowed; everything else must be what PEP 440 (as `packaging` reads it) allows for the
    /// operator: no local label or wildcard on `<`, `<=`, `>`, `>=`, `~=`; at least two release
    /// numbers on `~=`.
    ///
    /// - Throws: ``AutoupdateError`` with code ``AutoupdateError/Code/invalidVersion``.
    public init(_ text: String) throws {
        let trimmed = VersionSpecifier.strippingPythonWhitespace(text)
        let failure = { (reason: String) in
            AutoupdateError(
                .invalidVersion,
                "\(quoted(text)) is not a valid version specifier: \(reason) (expected an operator and a version, such as >=2.1, ~=2.1, ==2.* or !=2.3.1)"
            )
        }
        let scalars = trimmed.unicodeScalars
        let leading = { (count: Int) in String(String.UnicodeScalarView(scalars.prefix(count))) }
        let symbol: Operator
        if leading(3) == "===" {
            symbol = .arbitrary
        } else if let two = Operator(rawValue: leading(2)) {
            symbol = two
        } else if let one = Operator(rawValue: leading(1)) {
            symbol = one
        } else {
            throw failure("it does not start with ~=, ==, !=, <=, >=, <, > or ===")
        }
        let body = VersionSpecifier.strippingPythonWhitespace(
            String(String.UnicodeScalarView(scalars.dropFirst(symbol.rawValue.unicodeScalars.count))))
        self.operator = symbol
        self.version = body

        if symbol == .arbitrary {
            guard !body.unicodeScalars.contains(where: { VersionParser.isPythonWhitespace($0) || $0 == ";" || $0 == ")" }) else {
                throw failure("the text after === holds whitespace, ';' or ')'")
            }
            parsedVersion = nil
            wildcardPrefix = nil
            return
        }
        guard let shape = SpecifierVersionScanner(body).scan(allowingWildcardAndLocal: symbol == .equal || symbol == .notEqual) else {
            throw failure("\(quoted(body)) is not a version this operator accepts")
        }
        if symbol == .compatible, shape.releaseCount < 2 {
            throw failure("~= needs a release of at least two numbers, such as ~=2.1")
        }
        if shape.isWildcard {
            let prefix = try Version(String(body.dropLast(2)))
            parsedVersion = nil
            wildcardPrefix = SpecifierText.split(prefix.description)
            return
        }
        let parsed = try Version(body)
        parsedVersion = parsed
        wildcardPrefix = symbol == .compatible ? SpecifierText.compatiblePrefix(body) : nil
    }

    /// Whether `version` satisfies this specifier on its own, without any pre-release rule.
    /// `text` is what `===` compares: the version as the caller wrote it.
    func matches(_ version: Version?, text: String) -> Bool {
        switch self.operator {
        case .arbitrary:
            return text.lowercased() == self.version.lowercased()
        case _ where version == nil:
            return false
        default:
            break
        }
        let prospective = version!
        switch self.operator {
        case .compatible:
            return prospective.public >= parsedVersion! && matchesPrefix(prospective)
        case .equal:
            return isEqual(prospective)
        case .notEqual:
            return !isEqual(prospective)
        case .lessThanOrEqual:
            return prospective.public <= parsedVersion!
        case .greaterThanOrEqual:
            return prospective.public >= parsedVersion!
        case .lessThan:
            let spec = parsedVersion!
            guard prospective < spec else { return false }
            // "<V must not allow a pre-release of V unless V is itself a pre-release."
            return spec.isPreRelease || !prospective.isPreRelease || prospective < spec.earliestPreRelease
        case .greaterThan:
            let spec = parsedVersion!
            guard prospective > spec else { return false }
            // ">V must not allow a post-release of V unless V is one, nor a local version of V."
            if spec.postRelease == nil, prospective.postRelease != nil, prospective.postBase == spec {
                return false
            }
            return prospective.local == nil || prospective.public != spec
        case .arbitrary:
            return false
        }
    }

    private func isEqual(_ prospective: Version) -> Bool {
        if wildcardPrefix != nil {
            return matchesPrefix(prospective)
        }
        let spec = parsedVersion!
        return (spec.local == nil ? prospective.public : prospective) == spec
    }

    /// `packaging`'s prefix match: both sides split into parts, the candidate's release padded
    /// with zeros to the prefix's length, then compared part by part as text.
    private func matchesPrefix(_ prospective: Version) -> Bool {
        let prefix = wildcardPrefix!
        let candidate = SpecifierText.split(prospective.public.description)
        let padded = SpecifierText.leftPad(candidate, toNumericCount: SpecifierText.numericPrefixCount(prefix))
        return Array(padded.prefix(prefix.count)) == prefix
    }

    static func strippingPythonWhitespace(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var start = 0
        var end = scalars.count
        while start < end, VersionParser.isPythonWhitespace(scalars[start]) { start += 1 }
        while end > start, VersionParser.isPythonWhitespace(scalars[end - 1]) { end -= 1 }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[start..<end])
        return String(view)
    }
}

extension Version {
    /// The version without its local label (`packaging`'s `public` version).
    var `public`: Version {
        local == nil
            ? self
            : Version(epoch: epoch, release: release, preRelease: preRelease, postRelease: postRelease, devRelease: devRelease, local: nil)
    }

    /// The earliest pre-release of this version: `1.2` → `1.2.dev0`, `1.2.post1` → `1.2.post1.dev0`.
    var earliestPreRelease: Version {
        Version(epoch: epoch, release: release, preRelease: preRelease, postRelease: postRelease, devRelease: .zero, local: nil)
    }

    /// The version a post-release is a post-release of: `1.0.post1` → `1.0`.
    var postBase: Version {
        Version(epoch: epoch, release: release, preRelease: preRelease, postRelease: nil, devRelease: nil, local: nil)
    }

}

/// `packaging`'s text helpers for prefix matching (`_version_split`, `_is_not_suffix`,
/// `_left_pad`), ported literally because `~=` applies them to the specifier as written.
enum SpecifierText {
    /// `"1!2.3rc1.post2"` → `["1", "2", "3", "rc1", "post2"]`; the epoch defaults to `"0"`.
    static func split(_ text: String) -> [String] {
        let epoch: Substring
        let rest: Substring
        if let bang = text.lastIndex(of: "!") {
            epoch = text[..<bang]
            rest = text[text.index(after: bang)...]
        } else {
            (epoch, rest) = ("", text[...])
        }
        var parts = [epoch.isEmpty ? "0" : String(epoch)]
        for item in rest.split(separator: ".", omittingEmptySubsequences: false) {
            parts.append(contentsOf: splitNumberAndPreRelease(item))
        }
        return parts
    }

    /// `([0-9]+)((?:a|b|c|rc)[0-9]+)` matched in full splits `"2rc1"` into `"2"` and `"rc1"`.
    private static func splitNumberAndPreRelease(_ item: Substring) -> [String] {
        let bytes = Array(item.utf8)
        let digits = bytes.prefix(while: isDigit).count
        guard digits > 0 else { return [String(item)] }
        let rest = bytes[digits...]
        for marker in ["rc", "a", "b", "c"] {
            let markerBytes = Array(marker.utf8)
            if rest.starts(with: markerBytes) {
                let number = rest.dropFirst(markerBytes.count)
                if !number.isEmpty, number.allSatisfy(isDigit) {
                    return [String(decoding: bytes[..<digits], as: UTF8.self), String(decoding: rest, as: UTF8.self)]
                }
            }
        }
        return [String(item)]
    }

    /// The `==P.*` prefix `~=V` implies: `V` split, cut at its first suffix part, less its last
    /// release part; made canonical when it parses as a version (`packaging` keeps it as written
    /// when it does not, which then matches nothing).
    static func compatiblePrefix(_ written: String) -> [String] {
        let parts = split(written).prefix(while: { part in
            !["dev", "a", "b", "rc", "post"].contains(where: { part.hasPrefix($0) })
        }).dropLast()
        let joined = (parts.first ?? "0") + "!" + parts.dropFirst().joined(separator: ".")
        let canonical = (try? Version(joined))?.description ?? joined
        return split(canonical)
    }

    static func numericPrefixCount(_ parts: [String]) -> Int {
        parts.prefix(while: { !$0.isEmpty && $0.utf8.allSatisfy(isDigit) }).count
    }

    static func leftPad(_ parts: [String], toNumericCount target: Int) -> [String] {
        let numeric = numericPrefixCount(parts)
        guard target > numeric else { return parts }
        return Array(parts[..<numeric]) + Array(repeating: "0", count: target - numeric) + Array(parts[numeric...])
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }
}

/// Checks a specifier's version text against `packaging`'s specifier grammar for its operator
/// (`v?`, an epoch, the release, then `.*` or pre, post, dev and local parts), case-insensitively.
/// Each optional part either matches where it stands or is skipped, which accepts exactly what
/// the backtracking regular expression accepts: no part can start with what ends the one before.
struct SpecifierVersionScanner {
    struct Shape {
        var releaseCount = 0
        var isWildcard = false
    }

    private let bytes: [UInt8]
    private var position = 0

    init(_ text: String) {
        bytes =
            text.unicodeScalars.allSatisfy(\.isASCII)
            ? text.utf8.map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 | 0x20 : $0 } : []
    }

    consuming func scan(allowingWildcardAndLocal: Bool) -> Shape? {
        var shape = Shape()
        _ = consume("v")
        let epochStart = position
        if digits() > 0, consume("!") {
            // an epoch
        } else {
            position = epochStart
        }
        guard digits() > 0 else { return nil }
        shape.releaseCount = 1
        while peek(0) == UInt8(ascii: "."), isDigit(peek(1)) {
            position += 1
            _ = digits()
            shape.releaseCount += 1
        }
        if allowingWildcardAndLocal, peek(0) == UInt8(ascii: "."), peek(1) == UInt8(ascii: "*") {
            position += 2
            shape.isWildcard = true
            return position == bytes.count ? shape : nil
        }
        letterPart(["alpha", "beta", "preview", "pre", "a", "b", "c", "rc"])
        if peek(0) == UInt8(ascii: "-"), isDigit(peek(1)) {
            position += 1
            _ = digits()
        } else {
            letterPart(["post", "rev", "r"])
        }
        letterPart(["dev"])
        if allowingWildcardAndLocal, consume("+") {
            guard localSegment() else { return nil }
            while let separator = peek(0), isSeparator(separator), isLocalCharacter(peek(1)) {
                position += 1
                _ = localSegment()
            }
        }
        return position == bytes.count ? shape : nil
    }

    /// `[-_.]?(keyword)[-_.]?[0-9]*`, or nothing (the position unchanged) when no keyword follows.
    private mutating func letterPart(_ keywords: [String]) {
        let start = position
        if let byte = peek(0), isSeparator(byte) { position += 1 }
        guard let keyword = keywords.first(where: { bytes[position...].starts(with: $0.utf8) }) else {
            position = start
            return
        }
        position += keyword.utf8.count
        if let byte = peek(0), isSeparator(byte) { position += 1 }
        _ = digits()
    }

    private mutating func localSegment() -> Bool {
        let start = position
        while isLocalCharacter(peek(0)) { position += 1 }
        return position > start
    }

    private mutating func digits() -> Int {
        let start = position
        while isDigit(peek(0)) { position += 1 }
        return position - start
    }

    private mutating func consume(_ character: Character) -> Bool {
        guard peek(0) == character.asciiValue else { return false }
        position += 1
        return true
    }

    private func peek(_ offset: Int) -> UInt8? {
        position + offset < bytes.count ? bytes[position + offset] : nil
    }

    private func isDigit(_ byte: UInt8?) -> Bool {
        guard let byte else { return false }
        return byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private func isSeparator(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
    }

    private func isLocalCharacter(_ byte: UInt8?) -> Bool {
        guard let byte else { return false }
        return isDigit(byte) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
    }
}
