/// A zip entry's data as the archive holds it (raw deflate), with what its local header declares:
/// independent of every other entry, so it can be inflated on any thread, in any order.
///
/// ``inflate(with:output:)`` applies exactly the checks ``ZipReader`` applies to an entry it
/// inflates itself: the output stops at the declared size (a bomb cannot run on), the deflate
/// stream must end exactly at the declared compressed size, and the CRC-32 and size must be the
/// declared ones. The central directory was checked against the declared values by the reader.
struct ZipDeflatedEntry: Sendable {
    let name: String
    /// The local header's offset in the archive.
    let offset: Int64
    let compressed: [UInt8]
    let crc: UInt32
    let uncompressedSize: Int64

    /// Inflates the data with `decoder` (reset first), handing the output on in pieces.
    ///
    /// - Throws: ``AutoupdateError`` naming the entry when the data is corrupt or disagrees with
    ///   its header, or what `output` throws.
    func inflate(with decoder: RawDeflateDecoder, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        decoder.reset()
        var verifier = ZipEntryVerifier(
            name: name, offset: offset, method: 8,
            declared: ZipEntryVerifier.Declared(crc: crc, compressedSize: Int64(compressed.count), uncompressedSize: uncompressedSize))
        let (consumed, ended) = try compressed.withUnsafeBytes { input in
            do {
                return try decoder.decode(input) { bytes in
                    try verifier.produced(bytes)
                    try output(bytes)
                }
            } catch let corrupt as RawDeflateDecoder.Corrupt {
                throw AutoupdateError(
                    .corruptArchive, "the deflate data of zip entry \(quoted(name)) is corrupt: \(corrupt.message)", underlying: corrupt.status)
            }
        }
        guard ended else {
            throw AutoupdateError.zipDeflateIncomplete(name)
        }
        guard consumed == compressed.count else {
            throw AutoupdateError(
                .corruptArchive, "the deflate data of zip entry \(quoted(name)) ends before its compressed size of \(compressed.count) bytes")
        }
        try verifier.verifyData()
    }
}
