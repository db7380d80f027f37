/// A PEP 440 version specifier set such as `>=2,<3`, `~=2.1` or `==2.*,!=2.3.1`, with the
/// matching and pre-release rules of Python's `packaging.specifiers.SpecifierSet`.
///
/// ```swift
/// let pin = try VersionSpecifierSet("~=2.1, !=2.3.1")
/// pin.contains(try Version("2.4"))    // true
/// pin.contains(try Version("3.0"))    // false
/// pin.filter(["2.1", "2.5rc1"])       // ["2.1"]: pre-releases only when nothing else matches
/// ```
///
/// `contains` asks about one version, so (as in `packaging`) a pre-release that satisfies every
/// specifier is contained. `filter` chooses among several: pre-releases are dropped when a final
/// release also matches, unless a specifier names a pre-release (`>=2.1rc1`) or the caller asks
/// for them.
public struct VersionSpecifierSet: Sendable, Hashable, CustomStringConvertible {
    /// The specifiers, in the order written; a version must satisfy all of them.
    public let specifiers: [VersionSpecifier]

    /// Parses a comma-separated list of specifiers; the empty text is the empty set, which
    /// contains every version.
    ///
    /// - Throws: ``AutoupdateError`` with code ``AutoupdateError/Code/invalidVersion`` naming the
    ///   specifier at fault.
    public init(_ text: String) throws {
        specifiers = try text.split(separator: ",", omittingEmptySubsequences: false)
            .map { VersionSpecifier.strippingPythonWhitespace(String($0)) }
            .filter { !$0.isEmpty }
            .map(VersionSpecifier.init)
    }

    /// The specifiers sorted and joined by commas, as `packaging` prints a set.
    public var description: String {
        specifiers.map(\.description).sorted().joined(separator: ",")
    }

    /// `packaging`'s `SpecifierSet.prereleases`: `true` when some specifier names a
    /// pre-release, otherwise `nil` (decided by what is available).
    public var allowsPreReleases: Bool? {
        specifiers.contains { $0.allowsPreReleases == true } ? true : nil
    }

    /// Whether the version satisfies every specifier.
    public func contains(_ version: Version) -> Bool {
        matches(Candidate(version: version, text: version.description))
    }

    /// Whether the text, read as a version, satisfies every specifier; text that is not a
    /// version can still match `===text`.
    public func contains(_ text: String) -> Bool {
        matches(Candidate(version: try? Version(text), text: text))
    }

    /// The elements whose versions satisfy every specifier, in their order, with PEP 440's
    /// pre-release rule: `preReleases` `true` keeps pre-releases, `false` drops them, and `nil`
    /// (the default) keeps them only when a specifier names one or no final release matches.
    public func filter<Element>(_ elements: some Sequence<Element>, preReleases: Bool? = nil, version: (Element) -> Version) -> [Element] {
        filterCandidates(
            elements.map { element in
                let version = version(element)
                return (element, Candidate(version: version, text: version.description))
            }, preReleases: preReleases)
    }

    /// ``filter(_:preReleases:version:)`` over version texts; text that is not a version is
    /// kept only when `===` matches it, and never counts as a pre-release.
    public func filter(_ texts: some Sequence<String>, preReleases: Bool? = nil) -> [String] {
        filterCandidates(texts.map { ($0, Candidate(version: try? Version($0), text: $0)) }, preReleases: preReleases)
    }

    private struct Candidate {
        let version: Version?
        let text: String
    }

    private func matches(_ candidate: Candidate) -> Bool {
        specifiers.allSatisfy { $0.matches(candidate.version, text: candidate.text) }
    }

    private func filterCandidates<Element>(_ candidates: [(Element, Candidate)], preReleases requested: Bool?) -> [Element] {
        let preReleases = requested ?? allowsPreReleases
        let matching = candidates.filter { _, candidate in
            matches(candidate) && (preReleases != false || candidate.version?.isPreRelease != true)
        }
        guard preReleases == nil else { return matching.map(\.0) }
        // PEP 440: pre-releases only when no final release matched. Text that is not a version
        // counts as neither and is kept either way.
        if matching.contains(where: { $0.1.version?.isPreRelease == false }) {
            return matching.filter { $0.1.version?.isPreRelease != true }.map(\.0)
        }
        return matching.map(\.0)
    }
}
