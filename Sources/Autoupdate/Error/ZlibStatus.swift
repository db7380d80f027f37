internal import CAutoupdateZlib

/// A zlib status code, carried as the `underlying` cause of an ``AutoupdateError``
/// (`error.underlying as? ZlibStatus`), as `Errno` is for a system call.
///
/// The corresponding C values are `Z_OK`, `Z_DATA_ERROR`, ….
public struct ZlibStatus: RawRepresentable, Hashable, Error, Sendable, CustomStringConvertible {
    /// The C value.
    public let rawValue: Int32

    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    public static let dataError = ZlibStatus(rawValue: Z_DATA_ERROR)
    public static let memoryError = ZlibStatus(rawValue: Z_MEM_ERROR)
    public static let needDictionary = ZlibStatus(rawValue: Z_NEED_DICT)

    public var description: String {
        switch rawValue {
        case Z_DATA_ERROR: "Z_DATA_ERROR"
        case Z_MEM_ERROR: "Z_MEM_ERROR"
        case Z_NEED_DICT: "Z_NEED_DICT"
        case Z_STREAM_ERROR: "Z_STREAM_ERROR"
        case Z_BUF_ERROR: "Z_BUF_ERROR"
        case Z_VERSION_ERROR: "Z_VERSION_ERROR"
        default: "zlib status \(rawValue)"
        }
    }
}
