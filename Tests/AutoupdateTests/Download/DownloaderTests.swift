import Autoupdate
import AutoupdateTestSupport
import Foundation
import Testing

/// Expects `body` to throw an ``AutoupdateError`` with `code` whose message contains `fragment`.
func expectFailure(
    _ code: AutoupdateError.Code, containing fragment: String = "", sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async {
    do {
        try await body()
        Issue.record("expected a \(code) error, got success", sourceLocation: sourceLocation)
    } catch let error as AutoupdateError {
        #expect(error.code == code, "\(error.debugDescription)", sourceLocation: sourceLocation)
        if !fragment.isEmpty {
            #expect(error.message.contains(fragment), "\(error.message)", sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("expected an AutoupdateError, got \(error)", sourceLocation: sourceLocation)
    }
}

@Suite("Downloader against the HTTPS test server")
struct DownloaderTests {
    let folder: TemporaryDirectory
    let file: [UInt8]
    static let size = 3 << 20

    init() throws {
        folder = try TemporaryDirectory()
        file = try Fixtures.writeRandomFile("a.bin", in: folder.url, count: Self.size)
        try Data("2.0\n".utf8).write(to: folder.url.appending(path: "version.txt"))
    }

    @Test("downloads a file byte for byte, in bounded chunks, with progress")
    func downloads() async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            let downloader = Downloader(configuration: .forTests())
            var body: [UInt8] = []
            var last: DownloadProgress?
            for try await chunk in downloader.bytes(from: server.url("a.bin")) {
                #expect(!chunk.bytes.isEmpty && chunk.bytes.count <= downloader.configuration.bufferLimit / 2)
                body += chunk.bytes
                #expect(chunk.progress.receivedBytes == Int64(body.count))
                last = chunk.progress
            }
            #expect(body == file)
            #expect(last?.totalBytes == Int64(Self.size))
            #expect(last?.fractionCompleted == 1)
            let request = try #require(server.requests(for: "a.bin").first)
            #expect(request.header("User-Agent") == "autoupdate/\(AutoupdateInfo.version)")
            #expect(request.header("Range") == nil)
            #expect(downloader.activeTransferCount == 0)
        }
    }

    @Test("a fast transfer hands on larger chunks, never more than half the buffer limit")
    func growsChunksWhenFast() async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            var configuration = DownloadConfiguration.forTests()
            configuration.chunkSize = 4 << 10
            configuration.bufferLimit = 256 << 10
            let downloader = Downloader(configuration: configuration)
            var body: [UInt8] = []
            var sizes: Set<Int> = []
            for try await chunk in downloader.bytes(from: server.url("a.bin")) {
                body += chunk.bytes
                sizes.insert(chunk.bytes.count)
            }
            #expect(body == file)
            // Loopback delivers far more than 4 KiB a millisecond: the chunks grow from 4 KiB.
            #expect(sizes.max() ?? 0 > configuration.chunkSize)
            #expect(sizes.max() ?? 0 <= configuration.bufferLimit / 2)
        }
    }

    /// The transfer reuses the arrays of chunks the consumer has let go: one it still holds must
    /// keep its bytes however many chunks come after it.
    @Test("chunks the consumer keeps stay intact while the transfer reuses the memory of released ones")
    func keptChunksStayIntact() async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            var configuration = DownloadConfiguration.forTests()
            configuration.chunkSize = 4 << 10
            configuration.bufferLimit = 64 << 10
            let downloader = Downloader(configuration: configuration)
            // Every other chunk kept, with where it starts; the rest released at once (their
            // arrays come back to the transfer).
            var kept: [(start: Int, bytes: [UInt8])] = []
            var body: [UInt8] = []
            for try await chunk in downloader.bytes(from: server.url("a.bin")) {
                if kept.count * 2 <= body.count / configuration.chunkSize {
                    kept.append((Int(chunk.progress.receivedBytes) - chunk.bytes.count, chunk.bytes))
                }
                body += chunk.bytes
            }
            #expect(body == file)
            #expect(kept.count > 8, "enough chunks kept to outlive the transfer's reuse of arrays")
            for (start, bytes) in kept where file[start..<(start + bytes.count)].elementsEqual(bytes) == false {
                Issue.record("the chunk kept from byte \(start) (\(bytes.count) bytes) no longer holds the file's bytes")
            }
        }
    }

    @Test("an http URL is upgraded to https")
    func upgradesHTTP() async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            let downloader = Downloader(configuration: .forTests())
            let plain = URL(string: "http://127.0.0.1:\(server.port)/version.txt")!
            let body = try await downloader.collect(plain)
            #expect(body == Array("2.0\n".utf8))
        }
    }

    @Test("never speaks plain HTTP: an upgraded URL to a plain listener fails TLS, the listener sees no request")
    func neverPlainHTTP() async throws {
        try await TestHTTPSServer.with(root: folder.url, identity: nil) { plain in
            let downloader = Downloader(configuration: .forTests(maxRetries: 0))
            await expectFailure(.tls) {
                _ = try await downloader.collect(plain.url("version.txt"))
            }
            #expect(plain.requests.isEmpty)
        }
    }

    @Test("other schemes are refused")
    func refusesOtherSchemes() async throws {
        let downloader = Downloader(configuration: .forTests())
        await expectFailure(.invalidURL, containing: "only https") {
            _ = try await downloader.collect(URL(string: "ftp://127.0.0.1/x")!)
        }
        await expectFailure(.invalidURL) {
            _ = try await downloader.collect(URL(fileURLWithPath: "/etc/passwd"))
        }
    }

    @Test("an untrusted certificate is refused", arguments: [nil, TestPKI.otherCAFile] as [String?])
    func untrusted(caFile: String?) async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            let downloader = Downloader(configuration: .forTests(maxRetries: 0, caFile: caFile))
            await expectFailure(.tls, containing: "not trusted") {
                _ = try await downloader.collect(server.url("version.txt"))
            }
            #expect(server.requests.isEmpty, "nothing is sent before the certificate is trusted")
            // The cause, as a public type a caller can branch on.
            let error = await #expect(throws: AutoupdateError.self) { _ = try await downloader.collect(server.url("version.txt")) }
            #expect(error?.underlying as? CurlCode == .peerFailedVerification)
        }
    }

    @Test("a certificate for another host is refused")
    func wrongHost() async throws {
        try await TestHTTPSServer.with(root: folder.url, identity: .wrongHost) { server in
            let downloader = Downloader(configuration: .forTests(maxRetries: 0))
            await expectFailure(.tls) {
                _ = try await downloader.collect(server.url("version.txt"))
            }
            #expect(server.requests.isEmpty)
        }
    }

    @Test("HTTP errors carry the status and the URL", arguments: [404, 500, 403])
    func httpErrors(status: Int) async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            server.inject([.status(status)], at: "a.bin")
            let downloader = Downloader(configuration: .forTests())
            do {
                _ = try await downloader.collect(server.url("a.bin"))
                Issue.record("expected HTTP \(status)")
            } catch let error as AutoupdateError {
                #expect(error.code == .httpStatus)
                #expect(error.httpStatus == status)
                #expect(error.message.contains("HTTP \(status)"))
                #expect(error.message.contains(server.url("a.bin").absoluteString))
            }
            #expect(server.requests(for: "a.bin").count == 1, "HTTP errors are not retried")
        }
    }

    @Test("429 and 503 carry Retry-After", arguments: [(429, "7", 7), (503, "120", 120)] as [(Int, String, Int64)])
    func retryAfter(status: Int, header: String, seconds: Int64) async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            server.inject([.status(status, retryAfter: header)], at: "a.bin")
            let downloader = Downloader(configuration: .forTests())
            do {
                _ = try await downloader.collect(server.url("a.bin"))
                Issue.record("expected HTTP \(status)")
            } catch let error as AutoupdateError {
                #expect(error.httpStatus == status)
                #expect(error.retryAfter == .seconds(seconds))
                #expect(error.message.contains("retry after \(seconds) s"))
            }
        }
    }

    @Test("follows a redirect to another https path")
    func redirect() async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            server.inject([.redirect(to: server.url("a.bin").absoluteString)], at: "latest.bin")
            let downloader = Downloader(configuration: .forTests())
            let body = try await downloader.collect(server.url("latest.bin"))
            #expect(body == file)
        }
    }

    @Test("refuses a redirect to http; the plain listener sees nothing")
    func redirectToHTTP() async throws {
        try await TestHTTPSServer.with(root: folder.url, identity: nil) { plain in
            try await TestHTTPSServer.with(root: folder.url) { server in
                server.inject([.redirect(to: plain.url("a.bin").absoluteString)], at: "a.bin")
                let downloader = Downloader(configuration: .forTests())
                await expectFailure(.network, containing: "only https is allowed") {
                    _ = try await downloader.collect(server.url("a.bin"))
                }
                #expect(plain.requests.isEmpty)
            }
        }
    }

    @Test("a redirect loop ends at the redirect limit")
    func redirectLoop() async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            server.inject([.redirect(to: server.url("loop2").absoluteString)], at: "loop1")
            server.inject([.redirect(to: server.url("loop1").absoluteString)], at: "loop2")
            let downloader = Downloader(configuration: .forTests())
            await expectFailure(.network, containing: "more than 5 redirects") {
                _ = try await downloader.collect(server.url("loop1"))
            }
            #expect(server.requests.count == 6)
        }
    }

    @Test(
        "resumes after a dropped connection with Range and If-Range",
        arguments: [
            TestHTTPSServer.Fault.truncate(after: 1_000_000), .reset(after: 1_000_000),
        ])
    func resumes(fault: TestHTTPSServer.Fault) async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            server.inject([fault], at: "a.bin", times: 1)
            let downloader = Downloader(configuration: .forTests())
            let body = try await downloader.collect(server.url("a.bin"))
            #expect(body == file)
            let requests = server.requests(for: "a.bin")
            #expect(requests.count == 2)
            let resumed = try #require(requests.last)
            let offset = Int(resumed.header("Range")?.dropFirst("bytes=".count).dropLast() ?? "") ?? -1
            #expect(offset > 0 && offset <= 1_000_000, "resumed at byte \(offset)")
            #expect(resumed.header("If-Range")?.hasPrefix("\"") == true)
        }
    }

    @Test("a server that truncates every response still delivers the file, piece by piece")
    func truncatesEveryTime() async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            server.inject([.truncate(after: 1 << 20)], at: "a.bin")
            let downloader = Downloader(configuration: .forTests())
            let body = try await downloader.collect(server.url("a.bin"))
            #expect(body == file)
            #expect(server.requests(for: "a.bin").count >= 3)
        }
    }

    @Test("a connection that drops before any byte fails after the bounded retries")
    func retriesAreBounded() async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            server.inject([.reset(after: 0)], at: "a.bin")
            let downloader = Downloader(configuration: .forTests(maxRetries: 2))
            await expectFailure(.network, containing: "connection failed after 0 bytes") {
                _ = try await downloader.collect(server.url("a.bin"))
            }
            #expect(server.requests(for: "a.bin").count == 3)
        }
    }

    @Test("a ranged request gets exactly its bytes, resumed after a drop; a server that ignores Range or answers another fails at once")
    func ranges() async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            let downloader = Downloader(configuration: .forTests())
            let size = Int64(Self.size)
            @Sendable func collect(_ range: ClosedRange<Int64>, completeLength: Int64? = nil) async throws -> [UInt8] {
                var body: [UInt8] = []
                for try await chunk in downloader.bytes(from: server.url("a.bin"), range: range, completeLength: completeLength ?? size) {
                    body += chunk.bytes
                }
                return body
            }
            let middle = try await collect(1000...1999)
            #expect(middle == Array(file[1000...1999]))
            let first = try await collect(0...0)
            #expect(first == [file[0]])
            let last = size - 1
            let tail = try await collect((last - 9)...last)
            #expect(tail == Array(file[(Self.size - 10)...]))
            #expect(server.requests(for: "a.bin").last?.header("Range") == "bytes=\(last - 9)-\(last)")

            // Dropped after 200,000 bytes: the rest of the range is asked for, nothing twice.
            server.inject(sequence: [[.truncate(after: 200_000)]], at: "a.bin")
            let resumed = try await collect(500_000...1_499_999)
            #expect(resumed == Array(file[500_000...1_499_999]))
            #expect(server.requests(for: "a.bin").last?.header("Range") == "bytes=700000-1499999")

            let before = server.requests(for: "a.bin").count
            server.inject([.ignoreRange], at: "a.bin", times: 1)
            await expectFailure(
                .rangeNotHonoured, containing: "does not honour Range: asked for bytes 1000-1999/3145728, it answered HTTP 200"
            ) {
                _ = try await collect(1000...1999)
            }
            server.inject([.badContentRange], at: "a.bin", times: 1)
            await expectFailure(.rangeNotHonoured, containing: "does not honour Range") { _ = try await collect(1000...1999) }
            await expectFailure(.rangeNotHonoured, containing: "does not honour Range") {
                _ = try await collect(1000...1999, completeLength: 5000)
            }
            #expect(server.requests(for: "a.bin").count == before + 3, "never retried")
            await expectFailure(.rangeNotHonoured, containing: "has no bytes") { _ = try await collect(size...(size + 10)) }
        }
    }

    @Test("a 200 answer to a resume is spliced without duplicates")
    func resumeIgnoredRange() async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            server.inject(sequence: [[.truncate(after: 1_000_000)], [.ignoreRange]], at: "a.bin")
            let downloader = Downloader(configuration: .forTests())
            let body = try await downloader.collect(server.url("a.bin"))
            #expect(body == file)
            let requests = server.requests(for: "a.bin")
            try #require(requests.count == 2)
            #expect(requests[1].header("Range") != nil, "asked for a range, got the whole file")
        }
    }

    @Test("a wrong Content-Range restarts from zero without duplicates")
    func badContentRange() async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            server.inject(sequence: [[.truncate(after: 1_000_000)], [.badContentRange]], at: "a.bin")
            let downloader = Downloader(configuration: .forTests())
            let body = try await downloader.collect(server.url("a.bin"))
            #expect(body == file)
            let requests = server.requests(for: "a.bin")
            try #require(requests.count == 3)
            #expect(requests[1].header("Range") != nil)
            #expect(requests[2].header("Range") == nil, "restarted from zero")
        }
    }

    @Test("without validators a resume restarts from zero and skips what was delivered")
    func resumeWithoutValidators() async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            server.inject([.noValidators, .truncate(after: 1_000_000)], at: "a.bin", times: 1)
            let downloader = Downloader(configuration: .forTests())
            let body = try await downloader.collect(server.url("a.bin"))
            #expect(body == file)
            let requests = server.requests(for: "a.bin")
            try #require(requests.count == 2)
            #expect(requests[1].header("Range") == nil, "no Range without a validator for If-Range")
        }
    }

    @Test("a file that changed on the server during the download fails; nothing is spliced")
    func changedDuringDownload() async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            server.inject([.entityTag("\"old\""), .truncate(after: 1_000_000)], at: "a.bin", times: 1)
            let downloader = Downloader(configuration: .forTests())
            await expectFailure(.network, containing: "changed on the server") {
                _ = try await downloader.collect(server.url("a.bin"))
            }
            #expect(server.requests(for: "a.bin").last?.header("If-Range") == "\"old\"")
        }
    }

    @Test("a Content-Length that lies about the length fails clearly")
    func lyingContentLength() async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            server.inject([.contentLength(Self.size - 1000)], at: "a.bin")
            let downloader = Downloader(configuration: .forTests())
            await expectFailure(.checksumMismatch, containing: "announced \(Self.size - 1000) bytes, expected \(Self.size)") {
                _ = try await downloader.collect(server.url("a.bin"), expectedLength: Int64(Self.size))
            }
            server.inject([.contentLength(Self.size + 1000)], at: "a.bin")
            await expectFailure(.network, containing: "\(Self.size + 1000)") {
                _ = try await downloader.collect(server.url("a.bin"))
            }
        }
    }

    @Test("an endless body stops at the byte cap")
    func endless() async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            server.inject([.endless], at: "a.bin")
            let downloader = Downloader(configuration: .forTests(maxBytes: 5 << 20))
            await expectFailure(.sizeLimitExceeded, containing: "limit of \(5 << 20) bytes") {
                _ = try await downloader.collect(server.url("a.bin"))
            }
            await expectFailure(.sizeLimitExceeded) {
                _ = try await downloader.collect(server.url("version.txt"), expectedLength: 2)
            }
        }
    }

    @Test(
        "a server that drips, stalls or never answers fails within the low-speed window",
        arguments: [
            TestHTTPSServer.Fault.drip(bytes: 100, every: .milliseconds(200)), .stall(after: 100_000), .stallBeforeHeaders,
        ])
    func slowServers(fault: TestHTTPSServer.Fault) async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            server.inject([fault], at: "a.bin")
            let downloader = Downloader(configuration: .forTests(lowSpeedWindow: .seconds(1), maxRetries: 1))
            let clock = ContinuousClock()
            let start = clock.now
            await expectFailure(.timeout, containing: "fewer than 1024 bytes/s") {
                _ = try await downloader.collect(server.url("a.bin"))
            }
            // Two attempts of one window each, plus backoff and poll granularity, plus the
            // handshakes of a debug-built TLS server on two loaded cores (the full suite runs
            // updates and compressions alongside: 18 s was seen). Retries are bounded: at most two
            // requests (fewer when a sanitizer slows a TLS handshake past the window, so that an
            // attempt never reaches the server).
            #expect(clock.now - start < TestTiming.bound(.seconds(30)))
            #expect(server.requests(for: "a.bin").count <= 2)
            try await server.waitForOpenConnections(atMost: 0)
        }
    }

    @Test("a server that drips and reconnects before each window ends still fails: the floor spans attempts")
    func drippingReconnects() async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            // 30 bytes every 150 ms (200 bytes/s, below the floor of 1024), and the connection
            // dropped after 90: every attempt makes some progress, none lasts a whole window.
            // An attempt takes about 0.3 s, a fifth of a window (a loaded machine once slowed a
            // third past one); the floor trips after maxRetries + 1 = 5 slow windows (7.5 s),
            // well before the 41 attempts that 4 retries allow (about 12 s of attempts).
            server.inject([.drip(bytes: 30, every: .milliseconds(150)), .truncate(after: 90)], at: "a.bin")
            let downloader = Downloader(configuration: .forTests(lowSpeedWindow: .milliseconds(1500), maxRetries: 4))
            let clock = ContinuousClock()
            let start = clock.now
            await expectFailure(.timeout, containing: "in 5 windows of 1.5 s in a row, over any number of connections") {
                _ = try await downloader.collect(server.url("a.bin"))
            }
            // Five windows, plus reconnections and debug-built TLS handshakes on two loaded cores
            // (ThreadSanitizer's slowed them to 27 s a time bound); without a floor across
            // attempts, the retries alone would run on.
            #expect(clock.now - start < TestTiming.bound(.seconds(30)))
            #expect(server.requests(for: "a.bin").count > 5, "it did reconnect")
        }
    }

    @Test("a server just fast enough is still bounded by the deadline")
    func deadline() async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            server.inject([.drip(bytes: 4096, every: .milliseconds(100))], at: "a.bin")
            let downloader = Downloader(configuration: .forTests(lowSpeedWindow: .seconds(1), deadline: .seconds(2)))
            await expectFailure(.timeout, containing: "deadline of 2 s") {
                _ = try await downloader.collect(server.url("a.bin"))
            }
        }
    }

    @Test("a closed port fails with a network error")
    func connectionRefused() async throws {
        let port = try await TestHTTPSServer.with(root: folder.url) { $0.port }
        let downloader = Downloader(configuration: .forTests(maxRetries: 1))
        await expectFailure(.network, containing: "127.0.0.1") {
            _ = try await downloader.collect(URL(string: "https://127.0.0.1:\(port)/a.bin")!)
        }
    }

    @Test("conditional fetches cost a 304 when nothing changed")
    func conditionalFetch() async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            let downloader = Downloader(configuration: .forTests())
            guard case .modified(let body, let validator?) = try await downloader.fetch(server.url("version.txt")) else {
                Issue.record("expected a body with a validator")
                return
            }
            #expect(body == Array("2.0\n".utf8))
            guard case .notModified = try await downloader.fetch(server.url("version.txt"), validator: validator) else {
                Issue.record("expected 304")
                return
            }
            #expect(server.requests(for: "version.txt").last?.header("If-None-Match") == validator.entityTag)

            try Data("3.0\n".utf8).write(to: folder.url.appending(path: "version.txt"))
            guard case .modified(let newer, _) = try await downloader.fetch(server.url("version.txt"), validator: validator) else {
                Issue.record("expected the new body")
                return
            }
            #expect(newer == Array("3.0\n".utf8))

            await expectFailure(.sizeLimitExceeded) {
                _ = try await downloader.fetch(server.url("a.bin"), maxBytes: 1000)
            }
        }
    }

    @Test("cancelling the consuming task aborts the transfer at once and leaves nothing behind")
    func cancellation() async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            server.inject([.drip(bytes: 1000, every: .milliseconds(50))], at: "a.bin")
            let downloader = Downloader(configuration: .forTests(lowSpeedLimit: 1))
            let firstChunk = AsyncStream<Void>.makeStream()
            let consumer = Task {
                var iterator = downloader.bytes(from: server.url("a.bin")).makeAsyncIterator()
                _ = try await iterator.next()
                firstChunk.continuation.yield()
                while try await iterator.next() != nil {}
            }
            var signals = firstChunk.stream.makeAsyncIterator()
            await signals.next()
            #expect(downloader.activeTransferCount == 1)
            let cancelled = ContinuousClock.now
            consumer.cancel()
            let result = await consumer.result
            #expect(throws: CancellationError.self) { try result.get() }
            #expect(downloader.activeTransferCount == 0, "the transfer thread has released its handles")
            try await server.waitForOpenConnections(atMost: 0)
            // Measured where the socket really closed: the server's event loop.
            let closed = try #require(server.connectionCloseTimes.last)
            let elapsed = closed - cancelled
            print("download cancellation: the connection closed \(elapsed) after cancel()")
            #expect(elapsed < TestTiming.bound(.milliseconds(500)), "the connection closed \(elapsed) after cancel()")
        }
    }

    @Test("breaking out of the loop stops the transfer")
    func breakStops() async throws {
        try await TestHTTPSServer.with(root: folder.url) { server in
            server.inject([.drip(bytes: 1000, every: .milliseconds(50))], at: "a.bin")
            let downloader = Downloader(configuration: .forTests(lowSpeedLimit: 1))
            for try await _ in downloader.bytes(from: server.url("a.bin")) {
                break
            }
            try await server.waitForOpenConnections(atMost: 0)
        }
    }

    @Test("a 100 MB download through a slow consumer keeps memory bounded")
    func boundedMemory() async throws {
        try Fixtures.writeLargeFile("big.bin", in: folder.url, mebibytes: 100)
        try await TestHTTPSServer.with(root: folder.url) { server in
            let result = try await ChildProcess.run(
                BuiltProducts.directory.appending(path: "AutoupdateTestHelper").path,
                [
                    "slow-download", server.url("big.bin").absoluteString, "--ca-file", TestPKI.caFile,
                    "--delay-microseconds", "1000",
                ])
            try #require(result.status == 0, "\(result.stderr)")
            let fields = Dictionary(
                uniqueKeysWithValues: result.stdout.split(whereSeparator: \.isWhitespace).compactMap { pair in
                    let parts = pair.split(separator: "=")
                    return parts.count == 2 ? (String(parts[0]), Int(parts[1]) ?? -1) : nil
                })
            #expect(fields["bytes"] == 100 << 20)
            let growth = try #require(fields["peak-growth-kib"])
            print("peak RSS growth for a 100 MiB download with a slow consumer: \(growth) KiB")
            #expect(growth < 40 << 10, "peak RSS grew by \(growth) KiB")
        }
    }
}
