@testable import Autoupdate
import Testing

/// Every transition of the download hand-off, without threads: consumers are plain tokens.
@Suite("Transfer state machine")
struct TransferStateMachineTests {
    typealias Machine = TransferStateMachine<Int>

    static func chunk(_ size: Int) -> DownloadChunk {
        DownloadChunk(bytes: [UInt8](repeating: 1, count: size), progress: DownloadProgress(receivedBytes: 0, totalBytes: nil, bytesPerSecond: 0))
    }

    @Test("a waiting consumer gets the chunk directly")
    func directHandOff() {
        var machine = Machine(bufferLimit: 100)
        guard case .suspend = machine.next(1) else { Issue.record("expected suspend"); return }
        guard case .resumeConsumer(1, let chunk) = machine.chunkProduced(Self.chunk(10)) else {
            Issue.record("expected resume of consumer 1"); return
        }
        #expect(chunk.bytes.count == 10)
    }

    @Test("the producer must wait at the limit and is woken at half of it")
    func backpressure() {
        var machine = Machine(bufferLimit: 100)
        guard case .buffered = machine.chunkProduced(Self.chunk(40)) else { Issue.record("expected buffered"); return }
        guard case .buffered = machine.chunkProduced(Self.chunk(40)) else { Issue.record("expected buffered"); return }
        guard case .bufferedMustWait = machine.chunkProduced(Self.chunk(40)) else { Issue.record("expected must wait"); return }
        // 120 buffered: taking one leaves 80 (> 50): no wake-up yet.
        guard case .resume(_, wakeProducer: false) = machine.next(1) else { Issue.record("expected no wake-up"); return }
        // 40 left (<= 50): wake the producer, exactly once.
        guard case .resume(_, wakeProducer: true) = machine.next(1) else { Issue.record("expected wake-up"); return }
        guard case .resume(_, wakeProducer: false) = machine.next(1) else { Issue.record("expected no second wake-up"); return }
        guard case .suspend = machine.next(1) else { Issue.record("expected suspend"); return }
    }

    @Test("the consumer drains the buffer before it sees the end or the failure")
    func drainThenOutcome() {
        var machine = Machine(bufferLimit: 100)
        _ = machine.chunkProduced(Self.chunk(5))
        guard case .none = machine.producerFinished(failure: AutoupdateError(.network, "boom")) else {
            Issue.record("expected none"); return
        }
        guard case .resume = machine.next(1) else { Issue.record("expected the buffered chunk"); return }
        guard case .fail(let error as AutoupdateError) = machine.next(1), error.code == .network else {
            Issue.record("expected the failure"); return
        }
        guard case .finish = machine.next(1) else { Issue.record("expected finish afterwards"); return }
    }

    @Test("a waiting consumer is resumed with the end")
    func endResumesWaiter() {
        var machine = Machine(bufferLimit: 100)
        _ = machine.next(7)
        guard case .resumeConsumer(7, .success(nil)) = machine.producerFinished(failure: nil) else {
            Issue.record("expected consumer 7 resumed with nil"); return
        }
    }

    @Test("cancelling keeps a waiting consumer until the producer has finished")
    func cancelWaitsForProducer() {
        var machine = Machine(bufferLimit: 100)
        _ = machine.next(3)
        guard case .stopProducer = machine.cancel() else { Issue.record("expected stop"); return }
        #expect(machine.isCancelled)
        guard case .stop = machine.chunkProduced(Self.chunk(1)) else { Issue.record("producer told to stop"); return }
        guard case .resumeConsumer(3, .failure(let error)) = machine.producerFinished(failure: nil), error is CancellationError else {
            Issue.record("expected CancellationError for consumer 3"); return
        }
        guard case .fail(let again) = machine.next(3), again is CancellationError else {
            Issue.record("expected CancellationError afterwards"); return
        }
    }

    @Test("a consumer arriving after cancellation waits for the producer too")
    func lateConsumerAfterCancel() {
        var machine = Machine(bufferLimit: 100)
        _ = machine.cancel()
        guard case .suspend = machine.next(4) else { Issue.record("expected suspend"); return }
        guard case .resumeConsumer(4, .failure) = machine.producerFinished(failure: nil) else {
            Issue.record("expected consumer 4 resumed"); return
        }
    }

    @Test("cancelling after the producer finished drops the buffer")
    func cancelAfterFinish() {
        var machine = Machine(bufferLimit: 100)
        _ = machine.chunkProduced(Self.chunk(5))
        _ = machine.producerFinished(failure: nil)
        guard case .none = machine.cancel() else { Issue.record("nothing to stop"); return }
        guard case .fail(let error) = machine.next(1), error is CancellationError else {
            Issue.record("expected CancellationError"); return
        }
    }

    @Test("two concurrent consumers are refused")
    func twoConsumers() {
        var machine = Machine(bufferLimit: 100)
        _ = machine.next(1)
        guard case .fail(let error as AutoupdateError) = machine.next(2), error.code == .invalidArgument else {
            Issue.record("expected a refusal"); return
        }
    }
}

@Suite("Response headers")
struct ResponseHeadersTests {
    @Test("Content-Range", arguments: [
        ("bytes 0-9/100", ContentRange(first: 0, last: 9, completeLength: 100)),
        ("bytes 50-99/*", ContentRange(first: 50, last: 99, completeLength: nil)),
        ("BYTES 1-1/2", ContentRange(first: 1, last: 1, completeLength: 2)),
    ] as [(String, ContentRange)])
    func contentRange(header: String, expected: ContentRange) {
        #expect(ContentRange(header: header) == expected)
    }

    @Test("malformed Content-Range", arguments: ["bytes 9-0/100", "bytes 0-99/50", "bytes */100", "items 0-1/2", "bytes 0-1", "bytes a-b/c", ""])
    func malformedContentRange(header: String) {
        #expect(ContentRange(header: header) == nil)
    }

    @Test("Retry-After as seconds or an HTTP date")
    func retryAfter() {
        var headers = ResponseHeaders()
        headers.take(line: "HTTP/1.1 503 Service Unavailable\r\n")
        headers.take(line: "Retry-After: 120\r\n")
        #expect(headers.retryAfter() == .seconds(120))

        let now = HTTPDate.parse("Wed, 21 Oct 2026 07:28:00 GMT")!
        headers.take(line: "retry-after: Wed, 21 Oct 2026 07:28:30 GMT\r\n")
        #expect(headers.retryAfter(now: now) == .seconds(30))
        headers.take(line: "Retry-After: soon\r\n")
        #expect(headers.retryAfter(now: now) == nil)
    }

    @Test("Retry-After is capped at a day, whatever the server says", arguments: [
        ("9223372036854775807", 86_400), ("99999999999999999999999", 86_400), ("31536000", 86_400), ("86401", 86_400),
        ("Fri, 01 Jan 2099 00:00:00 GMT", 86_400), ("Thu, 01 Jan 1970 00:00:00 GMT", 0), ("0", 0), ("3600", 3600),
    ] as [(String, Int64)])
    func retryAfterCap(header: String, seconds: Int64) {
        var headers = ResponseHeaders()
        headers.take(line: "Retry-After: \(header)\r\n")
        #expect(headers.retryAfter() == .seconds(seconds))
    }

    @Test("the next check honours Retry-After within bounds", arguments: [
        // (Retry-After, backoff, interval, expected)
        (nil, 2, 300, 2), (1, 2, 300, 2), (60, 2, 300, 60), (86_400, 2, 300, 1200), (86_400, 2, 60_000, 86_400),
    ] as [(Int64?, Int64, Int64, Int64)])
    func retryPolicy(retryAfter: Int64?, backoff: Int64, interval: Int64, expected: Int64) {
        let delay = delayHonouringRetryAfter(retryAfter.map { .seconds($0) }, backoff: .seconds(backoff), interval: .seconds(interval))
        #expect(delay == .seconds(expected))
    }

    @Test("a status line starts a new response (redirects)")
    func statusLineResets() {
        var headers = ResponseHeaders()
        headers.take(line: "HTTP/1.1 302 Found\r\n")
        headers.take(line: "ETag: \"old\"\r\n")
        headers.take(line: "HTTP/1.1 200 OK\r\n")
        headers.take(line: "Last-Modified: Wed, 21 Oct 2026 07:28:00 GMT\r\n")
        #expect(headers.validator == HTTPValidator(entityTag: nil, lastModified: "Wed, 21 Oct 2026 07:28:00 GMT"))
    }

    @Test("validators match only the same representation")
    func validatorMatching() {
        let strong = HTTPValidator(entityTag: "\"a\"", lastModified: "x")
        #expect(strong.matches(HTTPValidator(entityTag: "\"a\"", lastModified: "y")))
        #expect(!strong.matches(HTTPValidator(entityTag: "\"b\"", lastModified: "x")))
        let weak = HTTPValidator(entityTag: "W/\"a\"", lastModified: "x")
        #expect(weak.ifRangeValue == "x", "weak tags are not used for ranges")
        #expect(weak.matches(HTTPValidator(entityTag: nil, lastModified: "x")))
        #expect(!HTTPValidator().matches(HTTPValidator()))
    }
}
