/// A PEP 440 version: parsed, normalized and ordered exactly as Python's
/// `packaging.version.Version` does.
///
/// Every form PEP 440 allows is accepted: an epoch (`1!2.0`), a release of any length, pre-releases
/// with their alternate spellings (`1.0alpha1`, `1.0-B2`, `1.0c3`, `1.0preview`), post-releases
/// (`1.0.post1`, `1.0-r2`, the implicit `1.0-1`), dev releases, local versions (`1.0+ubuntu.1`),
/// a leading `v`, any of `.`, `-`, `_` as separators, any case, and surrounding whitespace.
/// Anything else is an error, never a guess.
///
/// ```swift
/// let candidate = try Version("1.0-RC1")
/// print(candidate)                        // "1.0rc1", the normalized form
/// try candidate < Version("1.0")          // true: dev < pre-release < final < post-release
/// try Version("1.0") == Version("1.0.0")  // true: trailing zeros do not count
/// ```
///
/// Equality and hashing follow the ordering, so `1.0` and `1.0.0` are equal (and hash alike)
/// although their ``description``s differ, as in `packaging`.
public struct Version: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The kind of a pre-release, in its normalized spelling.
    public enum PreReleaseKind: String, Sendable, Hashable, Comparable {
        /// `a`; also spelled `alpha`.
        case alpha = "a"
        /// `b`; also spelled `beta`.
        case beta = "b"
        /// `rc`; also spelled `c`, `pre` and `preview`.
        case releaseCandidate = "rc"

        /// Alpha before beta before release candidate.
        fileprivate var rank: Int {
            switch self {
            case .alpha: 0
            case .beta: 1
            case .releaseCandidate: 2
            }
        }

        public static func < (lhs: PreReleaseKind, rhs: PreReleaseKind) -> Bool {
            lhs.rank < rhs.rank
        }
    }

    /// A pre-release marker such as `rc1`.
    public struct PreRelease: Sendable, Hashable {
        /// Alpha, beta or release candidate.
        public let kind: PreReleaseKind
        /// The pre-release number; 0 when the version omits it (`1.0a` is `1.0a0`).
        public let number: Number
    }

    /// One dot-separated part of a local version label (`ubuntu` and `1` in `+ubuntu.1`).
    public enum LocalSegment: Sendable, Hashable, Comparable, CustomStringConvertible {
        /// A segment of digits only, compared numerically.
        case number(Number)
        /// Any other segment, lowercased, compared as text.
        case text(String)

        public var description: String {
            switch self {
            case .number(let number): number.description
            case .text(let text): text
            }
        }

        /// PEP 440: text sorts before numbers; texts compare lexicographically, numbers numerically.
        public static func < (lhs: LocalSegment, rhs: LocalSegment) -> Bool {
            switch (lhs, rhs) {
            case (.number(let left), .number(let right)): left < right
            case (.text(let left), .text(let right)): left.utf8.lexicographicallyPrecedes(right.utf8)
            case (.text, .number): true
            case (.number, .text): false
            }
        }
    }

    /// The epoch (`1` in `1!2.0`); 0 when omitted.
    public let epoch: Number
    /// The release segment, as written (`[1, 0, 0]` for `1.0.0`); never empty.
    public let release: [Number]
    /// The pre-release marker, if any.
    public let preRelease: PreRelease?
    /// The post-release number, if any (`1.0-1` and `1.0.post1` both give 1).
    public let postRelease: Number?
    /// The dev-release number, if any.
    public let devRelease: Number?
    /// The local version label's segments, if any.
    public let local: [LocalSegment]?

    /// Whether this is a pre-release or a dev release, as `packaging`'s `is_prerelease`.
    public var isPreRelease: Bool { preRelease != nil || devRelease != nil }

    /// The normalized form defined by PEP 440: `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`.
    public var description: String {
        var text = release.map(\.description).joined(separator: ".")
        if !epoch.isZero {
            text = "\(epoch)!" + text
        }
        if let preRelease {
            text += "\(preRelease.kind.rawValue)\(preRelease.number)"
        }
        if let postRelease {
            text += ".post\(postRelease)"
        }
        if let devRelease {
            text += ".dev\(devRelease)"
        }
        if let local {
            text += "+" + local.map(\.description).joined(separator: ".")
        }
        return text
    }

    init(
        epoch: Number, release: [Number], preRelease: PreRelease?, postRelease: Number?,
        devRelease: Number?, local: [LocalSegment]?
    ) {
        self.epoch = epoch
        self.release = release
        self.preRelease = preRelease
        self.postRelease = postRelease
        self.devRelease = devRelease
        self.local = local
    }

    // MARK: Ordering

    /// The release without trailing zeros, so that `1.0.0` compares equal to `1`.
    private var trimmedRelease: ArraySlice<Number> {
        var end = release.endIndex
        while end > release.startIndex, release[end - 1].isZero {
            end -= 1
        }
        return release[..<end]
    }

    /// Pre-release, post-release and dev-release as one tuple of ranks and numbers, the
    /// `packaging` sort key: `(preRank, preNumber, postRank, postNumber, devRank, devNumber)`.
    private var suffixKey: (Int, Number, Int, Number, Int, Number) {
        let preRank: Int
        let preNumber: Number
        if let preRelease {
            (preRank, preNumber) = (preRelease.kind.rank, preRelease.number)
        } else if postRelease == nil, devRelease != nil {
            // A dev release of the final version (`1.0.dev1`) sorts before all its pre-releases.
            (preRank, preNumber) = (-1, .zero)
        } else {
            // No pre-release: after every `rc`.
            (preRank, preNumber) = (3, .zero)
        }
        return (
            preRank, preNumber,
            postRelease == nil ? 0 : 1, postRelease ?? .zero,
            devRelease == nil ? 1 : 0, devRelease ?? .zero
        )
    }

    public static func < (lhs: Version, rhs: Version) -> Bool {
        compare(lhs, rhs) < 0
    }

    public static func == (lhs: Version, rhs: Version) -> Bool {
        compare(lhs, rhs) == 0
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(epoch)
        for number in trimmedRelease {
            hasher.combine(number)
        }
        let suffix = suffixKey
        hasher.combine(suffix.0)
        hasher.combine(suffix.1)
        hasher.combine(suffix.2)
        hasher.combine(suffix.3)
        hasher.combine(suffix.4)
        hasher.combine(suffix.5)
        hasher.combine(local)
    }

    /// Three-way comparison of the `packaging` keys: negative, zero or positive.
    private static func compare(_ lhs: Version, _ rhs: Version) -> Int {
        if lhs.epoch != rhs.epoch {
            return lhs.epoch < rhs.epoch ? -1 : 1
        }
        let release = threeWay(lhs.trimmedRelease, rhs.trimmedRelease)
        if release != 0 {
            return release
        }
        let (left, right) = (lhs.suffixKey, rhs.suffixKey)
        if left.0 != right.0 { return left.0 < right.0 ? -1 : 1 }
        if left.1 != right.1 { return left.1 < right.1 ? -1 : 1 }
        if left.2 != right.2 { return left.2 < right.2 ? -1 : 1 }
        if left.3 != right.3 { return left.3 < right.3 ? -1 : 1 }
        if left.4 != right.4 { return left.4 < right.4 ? -1 : 1 }
        if left.5 != right.5 { return left.5 < right.5 ? -1 : 1 }
        switch (lhs.local, rhs.local) {
        case (nil, nil): return 0
        case (nil, _): return -1  // a version without a local label sorts first
        case (_, nil): return 1
        case (let left?, let right?): return threeWay(left[...], right[...])
        }
    }

    /// Tuple-style comparison: element by element, then the shorter sequence first.
    private static func threeWay<Element: Comparable>(_ lhs: ArraySlice<Element>, _ rhs: ArraySlice<Element>) -> Int {
        for (left, right) in zip(lhs, rhs) where left != right {
            return left < right ? -1 : 1
        }
        return lhs.count == rhs.count ? 0 : (lhs.count < rhs.count ? -1 : 1)
    }
}
