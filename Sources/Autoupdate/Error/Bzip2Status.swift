internal import CAutoupdateBzip2

/// A libbz2 status code, carried as the `underlying` cause of an ``AutoupdateError``.
///
/// The corresponding C values are `BZ_OK`, `BZ_DATA_ERROR`, ….
public struct Bzip2Status: RawRepresentable, Hashable, Error, Sendable, CustomStringConvertible {
    /// The C value.
    public let rawValue: Int32

    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    public var description: String {
        switch rawValue {
        case BZ_DATA_ERROR: "BZ_DATA_ERROR"
        case BZ_DATA_ERROR_MAGIC: "BZ_DATA_ERROR_MAGIC"
        case BZ_MEM_ERROR: "BZ_MEM_ERROR"
        case BZ_PARAM_ERROR: "BZ_PARAM_ERROR"
        case BZ_SEQUENCE_ERROR: "BZ_SEQUENCE_ERROR"
        default: "libbz2 status \(rawValue)"
        }
    }
}
