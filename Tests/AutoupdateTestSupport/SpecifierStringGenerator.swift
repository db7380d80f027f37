/// Generates version specifier sets and nearby versions for the differential test against
/// `packaging`: every operator, wildcards, local labels, pre/post/dev releases in any spelling,
/// whitespace, the odd forms `~=` reads as written (`~=v2.2`, `~=2.2.RC1`), and invalid input.
/// Versions come from a small alphabet so that specifiers and versions meet often.
public struct SpecifierStringGenerator {
    private var random: SeededRandom
    private var spellings: VersionStringGenerator

    public init(seed: UInt64) {
        random = SeededRandom(seed: seed)
        spellings = VersionStringGenerator(seed: seed &+ 1)
    }

    /// A version near the ones specifiers name, in normalized or alternate spellings.
    public mutating func nearbyVersion() -> String {
        var text = ""
        if random.chance(0.05) { text += random.pick(["1!", "0!", "v"]) }
        text += (0..<Int.random(in: 1...3, using: &random)).map { _ in String(Int.random(in: 0...3, using: &random)) }
            .joined(separator: ".")
        if random.chance(0.3) {
            text += random.pick(["a", "b", "rc", "c", ".alpha", "-beta", "RC", "pre"])
            if random.chance(0.8) { text += String(Int.random(in: 0...2, using: &random)) }
        }
        if random.chance(0.2) { text += random.pick([".post", "-", "post", ".r", ".REV"]) + String(Int.random(in: 0...2, using: &random)) }
        if random.chance(0.2) { text += random.pick([".dev", "dev", "-dev"]) + String(Int.random(in: 0...2, using: &random)) }
        if random.chance(0.15) { text += "+" + random.pick(["local", "1", "abc.2", "ubuntu-1"]) }
        return text
    }

    /// One specifier: mostly valid, sometimes with whitespace, wildcards in the wrong place, a
    /// bad operator or an arbitrary `===` text.
    public mutating func specifier() -> String {
        let symbol = random.pick(["~=", "==", "!=", "<=", ">=", "<", ">", "===", "~=", "==", "!=", ">", "<", "=", "<>", "=>"])
        var version = random.chance(0.85) ? nearbyVersion() : spellings.next()
        if random.chance(0.2), let release = version.split(whereSeparator: { !"0123456789.!".contains($0) }).first {
            version = String(release) + ".*"
        }
        if random.chance(0.05) { version = random.pick(["", "foo", "1.0;x", "1.*.0", "1.0+", "v", "*", ".1"]) }
        let space = { (random: inout SeededRandom) in random.chance(0.15) ? random.pick([" ", "  ", "\t", "\u{A0}"]) : "" }
        return space(&random) + symbol + space(&random) + version + space(&random)
    }

    /// A set of zero to three specifiers joined by commas (an empty one now and then).
    public mutating func specifierSet() -> String {
        let count = random.pick([0, 1, 1, 1, 2, 2, 3])
        var parts = (0..<count).map { _ in specifier() }
        if random.chance(0.05) { parts.append(random.pick(["", " "])) }
        return parts.joined(separator: random.pick([",", ", ", " ,"]))
    }
}
