/// Decodes gzip (RFC 1952): every member of a multi-member file, each trailer's CRC-32 and
/// length checked (by zlib), and nothing after the last member except zero padding.
final class GzipDecoder: StreamDecoder {
    private enum State {
        /// Before a member: its first three bytes (magic and method) are collected and checked.
        case memberStart(prefix: [UInt8])
        case inMember
        /// After the last member, zero padding (tape blocks) is allowed, nothing else.
        case trailingZeros
        case failed(AutoupdateError)
    }

    private static let magic: [UInt8] = [0x1F, 0x8B, 0x08]
    private let stream: InflateStream
    private let buffer: UnsafeMutableRawBufferPointer
    private var state = State.memberStart(prefix: [])
    private var members = 0
    /// Compressed bytes consumed, for messages.
    private var offset: Int64 = 0

    init() throws {
        stream = try InflateStream(windowBits: 15 + 16)
        buffer = .allocate(byteCount: decoderBufferSize, alignment: 16)
    }

    deinit {
        buffer.deallocate()
    }

    func decode(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        var rest = input[...]
        while !rest.isEmpty {
            switch state {
            case .failed(let error):
                throw error
            case .memberStart(var prefix):
                if prefix.isEmpty, members > 0, rest.first == 0 {
                    state = .trailingZeros
                    continue
                }
                let taken = min(Self.magic.count - prefix.count, rest.count)
                prefix += rest.prefix(taken)
                rest = rest.dropFirst(taken)
                offset += Int64(taken)
                guard prefix.count == Self.magic.count else {
                    state = .memberStart(prefix: prefix)
                    return
                }
                guard prefix == Self.magic else {
                    throw fail(
                        members == 0
                            ? AutoupdateError(.corruptArchive, "not a gzip stream: bad magic bytes \(hex(prefix)) (expected 1f 8b 08)")
                            : AutoupdateError(.corruptArchive, "unexpected data after gzip member \(members) at byte \(offset - 3)"))
                }
                if members > 0 {
                    stream.reset()
                }
                state = .inMember
                _ = try prefix.withUnsafeBytes { try inflate($0, output: output) }
            case .inMember:
                let consumed = try inflate(UnsafeRawBufferPointer(rebasing: rest), output: output)
                rest = rest.dropFirst(consumed)
            case .trailingZeros:
                guard let garbage = rest.firstIndex(where: { $0 != 0 }) else {
                    offset += Int64(rest.count)
                    return
                }
                throw fail(
                    AutoupdateError(
                        .corruptArchive, "unexpected data after the gzip stream at byte \(offset + Int64(garbage - rest.startIndex))"))
            }
        }
    }

    func finish(output: (UnsafeRawBufferPointer) throws -> Void) throws {
        switch state {
        case .failed(let error):
            throw error
        case .memberStart(let prefix) where members == 0 || !prefix.isEmpty:
            throw fail(
                AutoupdateError(
                    .corruptArchive,
                    members == 0 && prefix.isEmpty
                        ? "the gzip stream is empty"
                        : "the gzip stream is truncated (in the header of member \(members + 1))"))
        case .inMember:
            throw fail(
                AutoupdateError(
                    .corruptArchive, "the gzip stream is truncated: member \(members + 1) ends early, at byte \(offset)"))
        case .memberStart, .trailingZeros:
            return
        }
    }

    /// Feeds one member's bytes to zlib; returns how many were consumed.
    @discardableResult
    private func inflate(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        do {
            let (consumed, ended) = try stream.inflate(input, buffer: buffer, emit: output)
            offset += Int64(consumed)
            if ended {
                members += 1
                state = .memberStart(prefix: [])
            }
            return consumed
        } catch let failure as InflateFailure {
            let member = members + 1
            throw fail(
                failure.isChecksumMismatch
                    ? AutoupdateError(
                        .checksumMismatch, "gzip member \(member) is corrupt: \(failure.message) (CRC-32 or length mismatch)",
                        underlying: failure.status)
                    : AutoupdateError(
                        .corruptArchive, "gzip member \(member) is corrupt near byte \(offset): \(failure.message)",
                        underlying: failure.status))
        }
    }

    private func fail(_ error: AutoupdateError) -> AutoupdateError {
        state = .failed(error)
        return error
    }
}

/// Bytes as hex for messages ("1f 8b 08").
func hex(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined(separator: " ")
}
