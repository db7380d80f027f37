public import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// A real HTTPS server on 127.0.0.1 for tests: serves a folder, speaks Range, ETag/If-None-Match,
/// If-Modified-Since and HEAD, and misbehaves on request (per path: error statuses, truncation,
/// resets, drips, stalls, redirects, lying headers, endless bodies). It records every request.
///
/// Built on swift-nio and swift-nio-ssl, with the committed test PKI (`Certificates/`).
public final class TestHTTPSServer: Sendable {
    /// A misbehaviour, applied to requests for one path.
    public enum Fault: Sendable, Hashable {
        /// Answer with this status (and a `Retry-After` value, if given) instead of the file.
        case status(Int, retryAfter: String? = nil)
        /// Redirect (`Location: to`).
        case redirect(to: String, status: Int = 302)
        /// Announce the full length, send this many body bytes, then drop the TCP connection.
        case truncate(after: Int)
        /// Send this many body bytes, then reset the connection (TCP RST).
        case reset(after: Int)
        /// Send the body slowly: `bytes` every `every`.
        case drip(bytes: Int, every: Duration)
        /// Send this many body bytes, then nothing, keeping the connection open.
        case stall(after: Int)
        /// Accept the request and never answer.
        case stallBeforeHeaders
        /// Announce this Content-Length whatever the body's real length, then close.
        case contentLength(Int)
        /// An endless body (chunked, never finished).
        case endless
        /// Answer a Range request with 200 and the whole file.
        case ignoreRange
        /// Answer a Range request with 206 but the whole file and a Content-Range starting at 0.
        case badContentRange
        /// Use this entity tag instead of the file's.
        case entityTag(String)
        /// Send neither ETag nor Last-Modified.
        case noValidators
        /// Wait this long before answering.
        case delay(Duration)
    }

    /// A request as the server received it.
    public struct Request: Sendable {
        public let method: String
        /// The path, without the query.
        public let path: String
        public let headers: [(name: String, value: String)]

        /// The first value of a header (case-insensitive name).
        public func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
    }

    /// Which certificate the server presents.
    public enum Identity: Sendable {
        /// Valid for 127.0.0.1 and localhost, signed by ``TestPKI/caFile``.
        case localhost
        /// Valid for `wrong.invalid` only, signed by the same CA: a host-name mismatch.
        case wrongHost
    }

    private struct FaultRule {
        var faults: [Fault]
        var remaining: Int?
    }

    private struct State {
        var rules: [String: FaultRule] = [:]
        var requests: [Request] = []
        var openConnections = 0
        /// Open connections, so that `stop()` can close them (ending stalls and drips).
        var connections: [ObjectIdentifier: any Channel] = [:]
        var connectionWaiters: [(id: UUID, atMost: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    /// The folder served at `/`.
    public let root: URL
    /// The port on 127.0.0.1.
    public let port: Int
    /// Whether the server speaks TLS (a plain-HTTP listener proves the client never uses it).
    public let usesTLS: Bool
    private let state = Mutex(State())
    private let serverChannel: any Channel
    private let acceptLoop = Mutex<Task<Void, Never>?>(nil)

    /// `https://127.0.0.1:<port>/` (or `http://` for a plain listener).
    public var baseURL: URL {
        URL(string: "\(usesTLS ? "https" : "http")://127.0.0.1:\(port)/")!
    }

    /// The URL of a path on this server (`"project.zip"` → `https://127.0.0.1:<port>/project.zip`).
    public func url(_ path: String) -> URL {
        baseURL.appending(path: path)
    }

    private init(root: URL, port: Int, usesTLS: Bool, serverChannel: any Channel) {
        self.root = root
        self.port = port
        self.usesTLS = usesTLS
        self.serverChannel = serverChannel
    }

    /// Starts a server on 127.0.0.1 on an ephemeral port.
    ///
    /// - Parameters:
    ///   - root: The folder to serve.
    ///   - identity: The certificate to present, or `nil` for plain HTTP.
    ///   - port: A fixed port, or 0 for an ephemeral one.
    public static func start(root: URL, identity: Identity? = .localhost, port: Int = 0) async throws -> TestHTTPSServer {
        let sslContext = try identity.map { try TestPKI.serverContext(for: $0) }
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(ConnectionDropHandler())
                    if let sslContext {
                        try pipeline.addHandler(NIOSSLServerHandler(context: sslContext))
                    }
                    try pipeline.configureHTTPServerPipeline(withErrorHandling: true)
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(
                        wrappingChannelSynchronously: channel)
                }
            }
        guard let boundPort = channel.channel.localAddress?.port else {
            throw TestFailure("the test server has no local port")
        }
        let server = TestHTTPSServer(root: root, port: boundPort, usesTLS: identity != nil, serverChannel: channel.channel)
        let loop = Task<Void, Never> {
            try? await channel.executeThenClose { connections in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in connections {
                        group.addTask { await server.serve(connection) }
                    }
                }
            }
        }
        server.acceptLoop.withLock { $0 = loop }
        return server
    }

    /// Runs `body` with a started server and stops the server afterwards, whatever happens.
    public static func with<Result>(
        root: URL, identity: Identity? = .localhost, _ body: (TestHTTPSServer) async throws -> Result
    ) async throws -> Result {
        let server = try await start(root: root, identity: identity)
        do {
            let result = try await body(server)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }

    /// Stops listening, closes every connection and waits until they are all served.
    ///
    /// Closing rather than cancelling the accept loop matters: every accepted connection must
    /// still pass through `executeThenClose`, or NIO traps on an unfinished writer.
    public func stop() async {
        try? await serverChannel.close()
        let open = state.withLock { Array($0.connections.values) }
        for channel in open {
            try? await channel.close()
        }
        await acceptLoop.withLock { $0 }?.value
    }

    // MARK: Faults and observations

    /// Applies `faults` to the next `times` requests for `path` (all of them when `nil`).
    public func inject(_ faults: [Fault], at path: String, times: Int? = nil) {
        let path = path.hasPrefix("/") ? path : "/" + path
        state.withLock { $0.rules[path] = FaultRule(faults: faults, remaining: times) }
    }

    /// Removes every fault.
    public func clearFaults() {
        state.withLock { $0.rules = [:] }
    }

    /// Every request received so far, in order.
    public var requests: [Request] {
        state.withLock { $0.requests }
    }

    /// The requests received for one path.
    public func requests(for path: String) -> [Request] {
        let path = path.hasPrefix("/") ? path : "/" + path
        return requests.filter { $0.path == path }
    }

    /// Connections currently open.
    public var openConnections: Int {
        state.withLock { $0.openConnections }
    }

    /// Waits until at most `count` connections are open (clients have closed theirs).
    ///
    /// - Throws: ``TestFailure`` after `timeout`.
    public func waitForOpenConnections(atMost count: Int, timeout: Duration = .seconds(10)) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.connectionCount(atMost: count) }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw TestFailure("still \(self.openConnections) open connections after \(timeout)")
            }
            try await group.next()
            group.cancelAll()
        }
    }

    private func connectionCount(atMost count: Int) async {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    if state.openConnections <= count || Task.isCancelled {
                        return true
                    }
                    state.connectionWaiters.append((id, count, continuation))
                    return false
                }
                if ready {
                    continuation.resume()
                }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                state.connectionWaiters.firstIndex { $0.id == id }.map { state.connectionWaiters.remove(at: $0) }
            }
            waiter?.continuation.resume()
        }
    }

    private func connectionsChanged(by delta: Int) {
        let ready = state.withLock { state in
            state.openConnections += delta
            let open = state.openConnections
            let ready = state.connectionWaiters.filter { open <= $0.atMost }
            state.connectionWaiters.removeAll { open <= $0.atMost }
            return ready
        }
        for waiter in ready {
            waiter.continuation.resume()
        }
    }

    private func takeFaults(for path: String) -> [Fault] {
        state.withLock { state in
            guard var rule = state.rules[path] else {
                return []
            }
            if let remaining = rule.remaining {
                rule.remaining = remaining - 1
                state.rules[path] = remaining - 1 > 0 ? rule : nil
            }
            return rule.faults
        }
    }

    // MARK: Serving

    private typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>
    private typealias Writer = NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>

    private func serve(_ connection: Connection) async {
        let id = ObjectIdentifier(connection.channel)
        state.withLock { $0.connections[id] = connection.channel }
        connectionsChanged(by: 1)
        defer {
            state.withLock { $0.connections[id] = nil }
            connectionsChanged(by: -1)
        }
        try? await connection.executeThenClose { inbound, outbound in
            var parts = inbound.makeAsyncIterator()
            while let part = try await parts.next() {
                guard case .head(let head) = part else { continue }
                while let part = try await parts.next() {
                    if case .end = part { break }
                }
                guard try await respond(to: head, outbound: outbound, channel: connection.channel) else {
                    return
                }
            }
        }
    }

    /// Answers one request; returns whether the connection may carry another.
    private func respond(to head: HTTPRequestHead, outbound: Writer, channel: any Channel) async throws -> Bool {
        let path = String(head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
        state.withLock {
            $0.requests.append(Request(method: head.method.rawValue, path: path, headers: head.headers.map { ($0.name, $0.value) }))
        }
        let faults = takeFaults(for: path)
        for case .delay(let delay) in faults {
            try await Task.sleep(for: delay)
        }
        if faults.contains(.stallBeforeHeaders) {
            try await channel.closeFuture.get()
            return false
        }
        for fault in faults {
            switch fault {
            case .status(let status, let retryAfter):
                var headers = HTTPHeaders()
                if let retryAfter { headers.add(name: "Retry-After", value: retryAfter) }
                try await writeSmall(status: status, headers: headers, body: "fault \(status)\n", head: head, outbound: outbound)
                return head.isKeepAlive
            case .redirect(let location, let status):
                try await writeSmall(status: status, headers: ["Location": location], body: "", head: head, outbound: outbound)
                return head.isKeepAlive
            default:
                continue
            }
        }

        guard let file = resolve(path), let attributes = try? FileManager.default.attributesOfItem(atPath: file.path),
              attributes[.type] as? FileAttributeType == .typeRegular,
              let size = (attributes[.size] as? NSNumber)?.int64Value,
              let modified = attributes[.modificationDate] as? Date
        else {
            try await writeSmall(status: 404, headers: [:], body: "not found\n", head: head, outbound: outbound)
            return head.isKeepAlive
        }

        if faults.contains(.endless) {
            var headers = HTTPHeaders([("Content-Type", "application/octet-stream")])
            headers.add(name: "Connection", value: "close")
            try await outbound.write(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers)))
            let buffer = ByteBuffer(repeating: 0x41, count: 64 << 10)
            while true {
                try await outbound.write(.body(.byteBuffer(buffer)))
            }
        }

        let entityTag = faults.lazy.compactMap { if case .entityTag(let tag) = $0 { tag } else { nil } }.first
            ?? "\"\(size)-\(Int64(modified.timeIntervalSince1970 * 1_000_000))\""
        let lastModified = Self.httpDate(modified)
        let sendValidators = !faults.contains(.noValidators)
        var headers = HTTPHeaders([("Accept-Ranges", "bytes"), ("Content-Type", "application/octet-stream")])
        if sendValidators {
            headers.add(name: "ETag", value: entityTag)
            headers.add(name: "Last-Modified", value: lastModified)
        }

        if sendValidators, let condition = head.headers.first(name: "If-None-Match") {
            if condition == "*" || condition.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }).contains(entityTag) {
                try await writeSmall(status: 304, headers: headers, body: nil, head: head, outbound: outbound)
                return head.isKeepAlive
            }
        } else if sendValidators, let since = head.headers.first(name: "If-Modified-Since"),
                  let date = Self.parseHTTPDate(since), modified.timeIntervalSince1970.rounded(.down) <= date.timeIntervalSince1970 {
            try await writeSmall(status: 304, headers: headers, body: nil, head: head, outbound: outbound)
            return head.isKeepAlive
        }

        var status = HTTPResponseStatus.ok
        var start: Int64 = 0
        var end = size  // exclusive
        if let rangeHeader = head.headers.first(name: "Range"), !faults.contains(.ignoreRange) {
            let ifRange = head.headers.first(name: "If-Range")
            if ifRange == nil || ifRange == entityTag || ifRange == lastModified {
                guard let range = Self.parseRange(rangeHeader, size: size) else {
                    headers.add(name: "Content-Range", value: "bytes */\(size)")
                    try await writeSmall(status: 416, headers: headers, body: "", head: head, outbound: outbound)
                    return head.isKeepAlive
                }
                status = .partialContent
                if faults.contains(.badContentRange) {
                    headers.add(name: "Content-Range", value: "bytes 0-\(size - 1)/\(size)")
                } else {
                    (start, end) = (range.lowerBound, range.upperBound + 1)
                    headers.add(name: "Content-Range", value: "bytes \(start)-\(end - 1)/\(size)")
                }
            }
        }

        var announced = end - start
        var closeAfter = !head.isKeepAlive
        for case .contentLength(let length) in faults {
            announced = Int64(length)
            closeAfter = true
        }
        headers.add(name: "Content-Length", value: String(announced))
        if closeAfter {
            headers.add(name: "Connection", value: "close")
        }
        try await outbound.write(.head(HTTPResponseHead(version: head.version, status: status, headers: headers)))
        if head.method == .HEAD {
            try await outbound.write(.end(nil))
            return !closeAfter
        }
        guard try await sendBody(of: file, from: start, to: end, faults: faults, outbound: outbound, channel: channel) else {
            return false
        }
        try await outbound.write(.end(nil))
        return !closeAfter
    }

    /// Sends `[start, end)` of a file, applying the body faults; returns `false` if it dropped
    /// the connection.
    private func sendBody(
        of file: URL, from start: Int64, to end: Int64, faults: [Fault], outbound: Writer, channel: any Channel
    ) async throws -> Bool {
        var limit: Int64?
        var dropWithReset = false
        var stallAt: Int64?
        var drip: (bytes: Int, every: Duration)?
        for fault in faults {
            switch fault {
            case .truncate(let after): limit = Int64(after)
            case .reset(let after): (limit, dropWithReset) = (Int64(after), true)
            case .stall(let after): stallAt = Int64(after)
            case .drip(let bytes, let every): drip = (bytes, every)
            default: break
            }
        }
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(start))
        var sent: Int64 = 0
        let total = end - start
        while sent < total {
            var piece = min(Int64(drip?.bytes ?? (256 << 10)), total - sent)
            if let cut = limit ?? stallAt {
                piece = min(piece, cut - sent)
            }
            if piece > 0 {
                guard let data = try handle.read(upToCount: Int(piece)), !data.isEmpty else { break }
                try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: data))))
                sent += Int64(data.count)
            }
            if let limit, sent >= limit {
                try await channel.triggerUserOutboundEvent(ConnectionDropHandler.Drop(reset: dropWithReset)).get()
                return false
            }
            if let stallAt, sent >= stallAt {
                try await channel.closeFuture.get()
                return false
            }
            if let drip {
                try await Task.sleep(for: drip.every)
            }
        }
        return true
    }

    private func writeSmall(status: Int, headers: HTTPHeaders, body: String?, head: HTTPRequestHead, outbound: Writer) async throws {
        var headers = headers
        if let body {
            headers.replaceOrAdd(name: "Content-Length", value: String(body.utf8.count))
        }
        if !head.isKeepAlive {
            headers.replaceOrAdd(name: "Connection", value: "close")
        }
        let responseHead = HTTPResponseHead(version: head.version, status: HTTPResponseStatus(statusCode: status), headers: headers)
        try await outbound.write(.head(responseHead))
        if let body, !body.isEmpty, head.method != .HEAD {
            try await outbound.write(.body(.byteBuffer(ByteBuffer(string: body))))
        }
        try await outbound.write(.end(nil))
    }

    /// The file for a request path, refusing anything that leaves the root.
    private func resolve(_ path: String) -> URL? {
        guard let decoded = path.removingPercentEncoding else { return nil }
        let components = decoded.split(separator: "/").map(String.init)
        guard !components.isEmpty, !components.contains(".."), !components.contains(".") else { return nil }
        return components.reduce(root) { $0.appending(path: $1) }
    }

    /// `bytes=a-b`, `bytes=a-` or `bytes=-n`, one range only; `nil` when unsatisfiable.
    static func parseRange(_ header: String, size: Int64) -> ClosedRange<Int64>? {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return nil }
        let spec = header.dropFirst("bytes=".count).split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard spec.count == 2 else { return nil }
        if spec[0].isEmpty {
            guard let suffix = Int64(spec[1]), suffix > 0, size > 0 else { return nil }
            return max(0, size - suffix)...(size - 1)
        }
        guard let first = Int64(spec[0]), first < size else { return nil }
        let last = spec[1].isEmpty ? size - 1 : min(Int64(spec[1]) ?? -1, size - 1)
        return last >= first ? first...last : nil
    }

    static func httpDate(_ date: Date) -> String {
        httpDateFormatter().string(from: date)
    }

    static func parseHTTPDate(_ text: String) -> Date? {
        httpDateFormatter().date(from: text)
    }

    private static func httpDateFormatter() -> DateFormatter {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter
    }
}

/// Sits nearest the socket, below TLS, so that a fault can cut the TCP connection itself (a
/// FIN without TLS close_notify, or an RST) rather than TLS closing it politely.
private final class ConnectionDropHandler: ChannelOutboundHandler, Sendable {
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    struct Drop: Sendable {
        let reset: Bool
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let drop = event as? Drop else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        if drop.reset {
            // SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            // On the event loop, NIO applies the option at once, so it precedes the close below.
            _ = (context.channel as? any SocketOptionProvider)?.setSoLinger(linger(l_onoff: 1, l_linger: 0))
        }
        context.close(promise: promise)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
    }
}
