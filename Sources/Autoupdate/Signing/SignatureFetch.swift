#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension Downloader {
    /// Fetches and parses a `.minisig` file (at most 16 KiB).
    ///
    /// - Throws: ``AutoupdateError`` `.signature` when it is missing (404) or malformed; other
    ///   download errors as they are.
    func signature(at url: URL) async throws -> Minisign.Signature {
        let body: [UInt8]
        do {
            guard case .modified(let fetched, _) = try await fetch(url, maxBytes: 16 << 10) else {
                throw AutoupdateError(.signature, "the server answered 304 to an unconditional request for \(url.displayString)")
            }
            body = fetched
        } catch let error as AutoupdateError where error.httpStatus == 404 {
            throw AutoupdateError(
                .signature, "the signature \(url.displayString) is missing (404), and a signature is required", underlying: error)
        }
        do {
            return try Minisign.Signature(text: String(decoding: body, as: UTF8.self))
        } catch let error as AutoupdateError {
            throw error.adding(context: "reading \(url.displayString)")
        }
    }
}
