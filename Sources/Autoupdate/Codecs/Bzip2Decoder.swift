import CAutoupdateBzip2

/// Decodes bzip2: every stream of a multi-stream file (pbzip2, lbzip2), block and stream CRCs
/// checked (by libbz2), and nothing after the last stream except zero padding.
final class Bzip2Decoder: StreamDecoder {
    private enum State {
        case streamStart(prefix: [UInt8])
        case inStream
        case trailingZeros
        case failed(AutoupdateError)
    }

    private let stream: Bzip2Stream
    private let buffer: UnsafeMutableRawBufferPointer
    private var state = State.streamStart(prefix: [])
    private var streams = 0
    private var offset: Int64 = 0

    init() throws {
        stream = try Bzip2Stream()
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
            case .streamStart(var prefix):
                if prefix.isEmpty, streams > 0, rest.first == 0 {
                    state = .trailingZeros
                    continue
                }
                let taken = min(4 - prefix.count, rest.count)
                prefix += rest.prefix(taken)
                rest = rest.dropFirst(taken)
                offset += Int64(taken)
                guard prefix.count == 4 else {
                    state = .streamStart(prefix: prefix)
                    return
                }
                // "BZh" and a block size from 1 to 9.
                guard prefix[0] == 0x42, prefix[1] == 0x5A, prefix[2] == 0x68, (0x31...0x39).contains(prefix[3]) else {
                    throw fail(
                        streams == 0
                            ? AutoupdateError.bzip2BadMagic(prefix)
                            : AutoupdateError(.corruptArchive, "unexpected data after bzip2 stream \(streams) at byte \(offset - 4)"))
                }
                if streams > 0 {
                    try stream.restart()
                }
                state = .inStream
                _ = try prefix.withUnsafeBytes { try decompress($0, output: output) }
            case .inStream:
                let consumed = try decompress(UnsafeRawBufferPointer(rebasing: rest), output: output)
                rest = rest.dropFirst(consumed)
            case .trailingZeros:
                guard let garbage = rest.firstIndex(where: { $0 != 0 }) else {
                    offset += Int64(rest.count)
                    return
                }
                throw fail(AutoupdateError.bzip2TrailingData(at: offset + Int64(garbage - rest.startIndex)))
            }
        }
    }

    func finish(output: (UnsafeRawBufferPointer) throws -> Void) throws {
        switch state {
        case .failed(let error):
            throw error
        case .streamStart(let prefix) where streams == 0 || !prefix.isEmpty:
            throw fail(
                AutoupdateError(
                    .corruptArchive,
                    streams == 0 && prefix.isEmpty
                        ? "the bzip2 stream is empty"
                        : "the bzip2 stream is truncated (in the header of stream \(streams + 1))"))
        case .inStream:
            throw fail(AutoupdateError.bzip2Truncated(stream: streams + 1, at: offset))
        case .streamStart, .trailingZeros:
            return
        }
    }

    @discardableResult
    private func decompress(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        do {
            let (consumed, ended) = try stream.decompress(input, buffer: buffer, emit: output)
            offset += Int64(consumed)
            if ended {
                streams += 1
                state = .streamStart(prefix: [])
            }
            return consumed
        } catch let status as Bzip2Status {
            let number = streams + 1
            throw fail(
                status.rawValue == BZ_DATA_ERROR
                    ? AutoupdateError.bzip2Corrupt(stream: number, near: offset, status: status)
                    : AutoupdateError(
                        .corruptArchive, "bzip2 stream \(number) is corrupt near byte \(offset) (\(status))", underlying: status))
        }
    }

    private func fail(_ error: AutoupdateError) -> AutoupdateError {
        state = .failed(error)
        return error
    }
}
