/// Generates version strings for property and differential tests: every spelling PEP 440
/// allows (epochs, long releases, leading zeros, alternate pre/post/dev spellings, separators,
/// case, local labels, whitespace), numbers beyond 64 bits, and mutations that are mostly invalid.
public struct VersionStringGenerator {
    private var random: SeededRandom

    public init(seed: UInt64) {
        random = SeededRandom(seed: seed)
    }

    public mutating func next() -> String {
        var text = wellFormed()
        if random.chance(0.3) {
            text = mutate(text)
        }
        return text
    }

    private mutating func number() -> String {
        switch Int.random(in: 0..<10, using: &random) {
        case 0: return "0"
        case 1: return "0" + String(Int.random(in: 0...99, using: &random))  // leading zero
        case 2: return String((0..<Int.random(in: 20...30, using: &random)).map { _ in random.pick("0123456789") })
        default: return String(Int.random(in: 0...20, using: &random))
        }
    }

    private mutating func separator() -> String {
        random.pick(["", "", ".", "-", "_"])
    }

    private mutating func randomCase(_ text: String) -> String {
        String(text.map { random.chance(0.3) ? Character($0.uppercased()) : $0 })
    }

    private mutating func wellFormed() -> String {
        var text = ""
        if random.chance(0.1) { text += random.pick([" ", "\t", "\n", "  ", "\u{0B}", "\u{A0}", "\u{2003}", "\u{1C}"]) }
        if random.chance(0.15) { text += random.pick(["v", "V"]) }
        if random.chance(0.15) { text += number() + "!" }
        text += (0..<Int.random(in: 1...5, using: &random)).map { _ in
            random.chance(0.9) ? String(Int.random(in: 0...12, using: &random)) : number()
        }.joined(separator: ".")
        if random.chance(0.4) {
            let letter = random.pick(["a", "alpha", "b", "beta", "c", "rc", "pre", "preview"])
            text += separator() + randomCase(letter)
            if random.chance(0.8) { text += separator() + number() }
        }
        if random.chance(0.3) {
            if random.chance(0.3) {
                text += "-" + number()
            } else {
                text += separator() + randomCase(random.pick(["post", "rev", "r"]))
                if random.chance(0.8) { text += separator() + number() }
            }
        }
        if random.chance(0.3) {
            text += separator() + randomCase("dev")
            if random.chance(0.8) { text += separator() + number() }
        }
        if random.chance(0.25) {
            let segments = (0..<Int.random(in: 1...4, using: &random)).map { _ in
                random.chance(0.5) ? number() : randomCase(random.pick(["ubuntu", "abc", "x", "deb12u1", "local", "z9"]))
            }
            text += "+" + segments.joined(separator: random.pick([".", "-", "_"]))
        }
        if random.chance(0.1) { text += random.pick([" ", "\r\n", "\u{3000}", "\u{85}"]) }
        return text
    }

    private mutating func mutate(_ text: String) -> String {
        var characters = Array(text)
        let alphabet = Array("0123456789.-_+!vabcdeoprstvx ;,/~ä\u{200B}")
        for _ in 0..<Int.random(in: 1...3, using: &random) {
            let position = Int.random(in: 0...characters.count, using: &random)
            switch Int.random(in: 0..<3, using: &random) {
            case 0: characters.insert(random.pick(alphabet), at: position)
            case 1 where position < characters.count: characters.remove(at: position)
            default: if position < characters.count { characters[position] = random.pick(alphabet) }
            }
        }
        return String(characters)
    }
}
