extension Version {
    /// A non-negative integer of any size, as PEP 440 allows in every numeric part of a version.
    ///
    /// PEP 440 sets no upper bound (`1.20260101123456789012` is valid), so numbers are kept as
    /// their decimal digits rather than a fixed-width integer that would overflow.
    public struct Number: Sendable, Hashable, Comparable, CustomStringConvertible, ExpressibleByIntegerLiteral {
        /// Decimal digits without leading zeros; "0" for zero.
        private let digits: String

        /// Parses ASCII decimal digits (leading zeros allowed); `nil` for anything else.
        init?(digits text: some StringProtocol) {
            guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                return nil
            }
            let significant = text.drop(while: { $0 == "0" })
            digits = significant.isEmpty ? "0" : String(significant)
        }

        /// Creates a number from a machine integer.
        public init(_ value: UInt64) {
            digits = String(value)
        }

        public init(integerLiteral value: UInt64) {
            self.init(value)
        }

        /// Zero, the value of an omitted pre-release, post-release or dev number.
        public static let zero = Number(0)

        /// Whether this number is zero.
        public var isZero: Bool { digits == "0" }

        /// The value as a `UInt64`, or `nil` when it does not fit.
        public var uint64Value: UInt64? { UInt64(digits) }

        /// The decimal digits without leading zeros.
        public var description: String { digits }

        public static func < (lhs: Number, rhs: Number) -> Bool {
            // No leading zeros, so more digits means larger; equal lengths compare digit by digit.
            if lhs.digits.utf8.count != rhs.digits.utf8.count {
                return lhs.digits.utf8.count < rhs.digits.utf8.count
            }
            return lhs.digits.utf8.lexicographicallyPrecedes(rhs.digits.utf8)
        }
    }
}
