public import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOConcurrencyHelpers

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
        /// Answer a request for several ranges with 200 and the whole file (as S3 does), one
        /// range still with 206.
        case singleRangesOnly
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
        /// Which connection it came on: connections are numbered from 1 as they open.
        public var connection = 0

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
        /// A certificate chain and key from PEM files (`make demo` makes its own).
        case files(certificate: String, key: String)
    }

    /// Faults for the next requests, one set each, then `repeating` for all later ones.
    private struct FaultRule {
        var queue: [[Fault]]
        var repeating: [Fault]?
    }

    private struct State {
        var rules: [String: FaultRule] = [:]
        var requests: [Request] = []
        var openConnections = 0
        /// Open connections, so that `stop()` can close them (ending stalls and drips).
        var connections: [ObjectIdentifier: any Channel] = [:]
        var connectionWaiters: [(id: UUID, atMost: Int, continuation: CheckedContinuation<Void, Never>)] = []
        var closeTimes: [ContinuousClock.Instant] = []
        var connectionNumbers: [ObjectIdentifier: Int] = [:]
        var connectionsOpened = 0
    }

    /// The folder served at `/`.
    public let root: URL
    /// The port on 127.0.0.1.
    public let port: Int
    /// Whether the server speaks TLS (a plain-HTTP listener proves the client never uses it).
    public let usesTLS: Bool
    private let state = NIOLockedValueBox(State())
    private let serverChannel = NIOLockedValueBox<(any Channel)?>(nil)

    /// `https://127.0.0.1:<port>/` (or `http://` for a plain listener).
    public var baseURL: URL {
        URL(string: "\(usesTLS ? "https" : "http")://127.0.0.1:\(port)/")!
    }

    /// The URL of a path on this server (`"project.zip"` → `https://127.0.0.1:<port>/project.zip`).
    public func url(_ path: String) -> URL {
        baseURL.appending(path: path)
    }

    private init(root: URL, port: Int, usesTLS: Bool) {
        self.root = root
        self.port = port
        self.usesTLS = usesTLS
    }

    /// Starts a server on 127.0.0.1.
    ///
    /// Everything runs on swift-nio's event-loop threads, never on Swift's cooperative pool, so
    /// the server answers promptly whatever the tests around it keep busy.
    ///
    /// - Parameters:
    ///   - root: The folder to serve.
    ///   - identity: The certificate to present, or `nil` for plain HTTP.
    ///   - port: A fixed port, or 0 for an ephemeral one.
    public static func start(root: URL, identity: Identity? = .localhost, port: Int = 0) async throws -> TestHTTPSServer {
        let sslContext = try identity.map { try TestPKI.serverContext(for: $0) }
        let handlerServer = NIOLockedValueBox<TestHTTPSServer?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let server = handlerServer.withLockedValue({ $0 }) else { return }
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(ConnectionDropHandler())
                    if let sslContext {
                        try pipeline.addHandler(NIOSSLServerHandler(context: sslContext))
                    }
                    try pipeline.configureHTTPServerPipeline(withErrorHandling: true)
                    try pipeline.addHandler(ConnectionHandler(server: server))
                }
            }
            .bind(host: "127.0.0.1", port: port)
            .get()
        guard let boundPort = channel.localAddress?.port else {
            throw TestFailure("the test server has no local port")
        }
        let server = TestHTTPSServer(root: root, port: boundPort, usesTLS: identity != nil)
        server.serverChannel.withLockedValue { $0 = channel }
        handlerServer.withLockedValue { $0 = server }
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

    /// Stops listening and closes every connection.
    public func stop() async {
        if let channel = serverChannel.withLockedValue({ $0 }) {
            try? await channel.close()
        }
        let open = state.withLockedValue { Array($0.connections.values) }
        for channel in open {
            try? await channel.close()
        }
    }

    // MARK: Faults and observations

    /// Applies `faults` to the next `times` requests for `path` (all of them when `nil`).
    public func inject(_ faults: [Fault], at path: String, times: Int? = nil) {
        let rule =
            times.map { FaultRule(queue: Array(repeating: faults, count: $0), repeating: nil) }
            ?? FaultRule(queue: [], repeating: faults)
        state.withLockedValue { $0.rules[Self.normalized(path)] = rule }
    }

    /// Applies each set of faults to one request for `path`, in order; later requests get none.
    public func inject(sequence: [[Fault]], at path: String) {
        state.withLockedValue { $0.rules[Self.normalized(path)] = FaultRule(queue: sequence, repeating: nil) }
    }

    private static func normalized(_ path: String) -> String {
        path.hasPrefix("/") ? path : "/" + path
    }

    /// Removes every fault.
    public func clearFaults() {
        state.withLockedValue { $0.rules = [:] }
    }

    /// Every request received so far, in order.
    public var requests: [Request] {
        state.withLockedValue { $0.requests }
    }

    /// The requests received for one path.
    public func requests(for path: String) -> [Request] {
        let path = path.hasPrefix("/") ? path : "/" + path
        return requests.filter { $0.path == path }
    }

    /// Connections currently open.
    public var openConnections: Int {
        state.withLockedValue { $0.openConnections }
    }

    /// When each closed connection closed, as the server saw it (on its event loop, whatever
    /// the tests keep busy): the moment a client's socket really went away.
    public var connectionCloseTimes: [ContinuousClock.Instant] {
        state.withLockedValue { $0.closeTimes }
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
                let ready = state.withLockedValue { state -> Bool in
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
            let waiter = state.withLockedValue { state in
                state.connectionWaiters.firstIndex { $0.id == id }.map { state.connectionWaiters.remove(at: $0) }
            }
            waiter?.continuation.resume()
        }
    }

    fileprivate func connectionOpened(_ channel: any Channel) {
        state.withLockedValue {
            $0.connections[ObjectIdentifier(channel)] = channel
            $0.connectionsOpened += 1
            $0.connectionNumbers[ObjectIdentifier(channel)] = $0.connectionsOpened
        }
        connectionsChanged(by: 1)
    }

    fileprivate func connectionClosed(_ channel: any Channel) {
        let now = ContinuousClock.now
        state.withLockedValue {
            $0.connections[ObjectIdentifier(channel)] = nil
            $0.closeTimes.append(now)
        }
        connectionsChanged(by: -1)
    }

    private func connectionsChanged(by delta: Int) {
        let ready = state.withLockedValue { state in
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

    fileprivate func record(_ head: HTTPRequestHead, connection: ObjectIdentifier?) -> (path: String, faults: [Fault]) {
        let path = String(head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
        let faults = state.withLockedValue { state -> [Fault] in
            var request = Request(method: head.method.rawValue, path: path, headers: head.headers.map { ($0.name, $0.value) })
            request.connection = connection.flatMap { state.connectionNumbers[$0] } ?? 0
            state.requests.append(request)
            guard var rule = state.rules[path] else {
                return []
            }
            guard !rule.queue.isEmpty else {
                return rule.repeating ?? []
            }
            let faults = rule.queue.removeFirst()
            state.rules[path] = rule
            return faults
        }
        return (path, faults)
    }

    // MARK: Planning a response

    /// What to send for one request: decided at once, then carried out by the connection handler.
    fileprivate struct Plan {
        enum Body {
            case none
            case text(String)
            case file(URL, start: Int64, end: Int64)
            case endless
        }

        var delay: Duration?
        var neverAnswer = false
        var status: HTTPResponseStatus = .ok
        var headers = HTTPHeaders()
        var body = Body.none
        var isHead = false
        var closeAfter = false
        /// Body faults: drop the connection after this many bytes (with an RST if `reset`), stop
        /// sending after `stallAt`, or send `drip.bytes` every `drip.every`.
        var dropAfter: Int64?
        var reset = false
        var stallAt: Int64?
        var drip: (bytes: Int, every: Duration)?
        /// The body's file was made for this response (a multipart answer): removed once opened.
        var temporaryFile = false
    }

    fileprivate func plan(_ head: HTTPRequestHead, connection: ObjectIdentifier? = nil) -> Plan {
        let (path, faults) = record(head, connection: connection)
        var plan = Plan()
        plan.isHead = head.method == .HEAD
        plan.closeAfter = !head.isKeepAlive
        for case .delay(let delay) in faults {
            plan.delay = delay
        }
        if faults.contains(.stallBeforeHeaders) {
            plan.neverAnswer = true
            return plan
        }
        for fault in faults {
            switch fault {
            case .status(let status, let retryAfter):
                plan.status = HTTPResponseStatus(statusCode: status)
                if let retryAfter { plan.headers.add(name: "Retry-After", value: retryAfter) }
                plan.body = .text("fault \(status)\n")
                return plan
            case .redirect(let location, let status):
                plan.status = HTTPResponseStatus(statusCode: status)
                plan.headers.add(name: "Location", value: location)
                plan.body = .text("")
                return plan
            default:
                continue
            }
        }
        guard let file = resolve(path), let attributes = try? FileManager.default.attributesOfItem(atPath: file.path),
            attributes[.type] as? FileAttributeType == .typeRegular,
            let size = (attributes[.size] as? NSNumber)?.int64Value,
            let modified = attributes[.modificationDate] as? Date
        else {
            plan.status = .notFound
            plan.body = .text("not found\n")
            return plan
        }
        if faults.contains(.endless) {
            plan.headers.add(name: "Content-Type", value: "application/octet-stream")
            plan.body = .endless
            plan.closeAfter = true
            return plan
        }

        let entityTag =
            faults.lazy.compactMap { if case .entityTag(let tag) = $0 { tag } else { nil } }.first
            ?? "\"\(size)-\(Int64(modified.timeIntervalSince1970 * 1_000_000))\""
        let lastModified = Self.httpDate(modified)
        let sendValidators = !faults.contains(.noValidators)
        plan.headers.add(name: "Accept-Ranges", value: "bytes")
        plan.headers.add(name: "Content-Type", value: "application/octet-stream")
        if sendValidators {
            plan.headers.add(name: "ETag", value: entityTag)
            plan.headers.add(name: "Last-Modified", value: lastModified)
        }
        if sendValidators, let condition = head.headers.first(name: "If-None-Match") {
            if condition == "*" || condition.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }).contains(entityTag) {
                plan.status = .notModified
                return plan
            }
        } else if sendValidators, let since = head.headers.first(name: "If-Modified-Since"),
            let date = Self.parseHTTPDate(since), modified.timeIntervalSince1970.rounded(.down) <= date.timeIntervalSince1970
        {
            plan.status = .notModified
            return plan
        }

        var start: Int64 = 0
        var end = size
        if let rangeHeader = head.headers.first(name: "Range"), !faults.contains(.ignoreRange) {
            let ifRange = head.headers.first(name: "If-Range")
            if rangeHeader.contains(","), !faults.contains(.singleRangesOnly) {
                // Several ranges: a multipart/byteranges body, made into a file of its own so that
                // every body fault applies to it as to a file.
                guard let ranges = Self.parseRanges(rangeHeader, size: size), let body = Self.multipart(file, ranges, size: size)
                else {
                    plan.status = .rangeNotSatisfiable
                    plan.headers.add(name: "Content-Range", value: "bytes */\(size)")
                    plan.body = .text("")
                    return plan
                }
                plan.status = .partialContent
                plan.headers.replaceOrAdd(name: "Content-Type", value: "multipart/byteranges; boundary=\(Self.boundary)")
                plan.temporaryFile = true
                return finishPlan(plan, faults: faults, body: body.url, start: 0, end: body.size)
            }
            if ifRange == nil || ifRange == entityTag || ifRange == lastModified, !rangeHeader.contains(",") {
                guard let range = Self.parseRange(rangeHeader, size: size) else {
                    plan.status = .rangeNotSatisfiable
                    plan.headers.add(name: "Content-Range", value: "bytes */\(size)")
                    plan.body = .text("")
                    return plan
                }
                plan.status = .partialContent
                if faults.contains(.badContentRange) {
                    plan.headers.add(name: "Content-Range", value: "bytes 0-\(size - 1)/\(size)")
                } else {
                    (start, end) = (range.lowerBound, range.upperBound + 1)
                    plan.headers.add(name: "Content-Range", value: "bytes \(start)-\(end - 1)/\(size)")
                }
            }
        }
        return finishPlan(plan, faults: faults, body: file, start: start, end: end)
    }

    /// The body faults, the length and the body of a plan that sends bytes `start..<end` of a file.
    private func finishPlan(_ plan: Plan, faults: [Fault], body file: URL, start: Int64, end: Int64) -> Plan {
        var plan = plan
        var announced = end - start
        for fault in faults {
            switch fault {
            case .contentLength(let length):
                announced = Int64(length)
                plan.closeAfter = true
            case .truncate(let after): plan.dropAfter = Int64(after)
            case .reset(let after): (plan.dropAfter, plan.reset) = (Int64(after), true)
            case .stall(let after): plan.stallAt = Int64(after)
            case .drip(let bytes, let every): plan.drip = (bytes, every)
            default: break
            }
        }
        plan.headers.add(name: "Content-Length", value: String(announced))
        plan.body = .file(file, start: start, end: end)
        return plan
    }

    /// The file for a request path, refusing anything that leaves the root.
    private func resolve(_ path: String) -> URL? {
        guard let decoded = path.removingPercentEncoding else { return nil }
        let components = decoded.split(separator: "/").map(String.init)
        guard !components.isEmpty, !components.contains(".."), !components.contains(".") else { return nil }
        return components.reduce(root) { $0.appending(path: $1) }
    }

    static let boundary = "autoupdate-test-3d6f1c"

    /// `bytes=a-b,c-d,…` (each `a-b` form), ascending and apart; `nil` otherwise.
    static func parseRanges(_ header: String, size: Int64) -> [ClosedRange<Int64>]? {
        guard header.hasPrefix("bytes=") else { return nil }
        var ranges: [ClosedRange<Int64>] = []
        for spec in header.dropFirst("bytes=".count).split(separator: ",") {
            let bounds = spec.trimmingCharacters(in: .whitespaces).split(separator: "-", omittingEmptySubsequences: false)
            guard bounds.count == 2, let first = Int64(bounds[0]), let last = Int64(bounds[1]), first <= last, last < size,
                ranges.last.map({ $0.upperBound < first }) ?? true
            else { return nil }
            ranges.append(first...last)
        }
        return ranges.count >= 2 ? ranges : nil
    }

    /// A multipart/byteranges body of `ranges` of `file`, as nginx writes it, in a temporary file.
    static func multipart(_ file: URL, _ ranges: [ClosedRange<Int64>], size: Int64) -> (url: URL, size: Int64)? {
        guard let handle = try? FileHandle(forReadingFrom: file) else { return nil }
        defer { try? handle.close() }
        var body = Data()
        for range in ranges {
            body += Data(
                "\r\n--\(boundary)\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes \(range.lowerBound)-\(range.upperBound)/\(size)\r\n\r\n"
                    .utf8)
            guard (try? handle.seek(toOffset: UInt64(range.lowerBound))) != nil,
                let data = try? handle.read(upToCount: Int(range.upperBound - range.lowerBound + 1))
            else { return nil }
            body += data
        }
        body += Data("\r\n--\(boundary)--\r\n".utf8)
        let url = FileManager.default.temporaryDirectory.appending(path: "multipart-\(UUID().uuidString)")
        guard (try? body.write(to: url)) != nil else { return nil }
        return (url, Int64(body.count))
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

/// Serves one connection on its event loop: plans each response, then writes it as fast as the
/// channel is writable (or as slowly as a fault says), request after request.
private final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let server: TestHTTPSServer
    private var head: HTTPRequestHead?
    private var plan: TestHTTPSServer.Plan?
    private var file: FileHandle?
    private var position: Int64 = 0
    private var sent: Int64 = 0
    private var waitingForTimer = false
    private var pumping = false

    init(server: TestHTTPSServer) {
        self.server = server
    }

    func channelActive(context: ChannelHandlerContext) {
        server.connectionOpened(context.channel)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        server.connectionClosed(context.channel)
        try? file?.close()
        file = nil
        plan = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head else { return }
            self.head = nil
            let plan = server.plan(head, connection: ObjectIdentifier(context.channel))
            if let delay = plan.delay {
                let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                context.eventLoop.assumeIsolated().scheduleTask(
                    in: .nanoseconds(Int64(delay.components.seconds * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000))
                ) {
                    self.begin(loopBound.value, plan)
                }
            } else {
                begin(context, plan)
            }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            pump(context)
        }
        context.fireChannelWritabilityChanged()
    }

    private func begin(_ context: ChannelHandlerContext, _ plan: TestHTTPSServer.Plan) {
        guard !plan.neverAnswer else {
            return  // The connection stays open until the client gives up.
        }
        var headers = plan.headers
        switch plan.body {
        case .text(let text):
            headers.replaceOrAdd(name: "Content-Length", value: String(text.utf8.count))
        case .none:
            if plan.status != .notModified {
                headers.replaceOrAdd(name: "Content-Length", value: "0")
            }
        default:
            break
        }
        if plan.closeAfter {
            headers.replaceOrAdd(name: "Connection", value: "close")
        }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: plan.status, headers: headers))), promise: nil)
        switch plan.body {
        case .text(let text) where !plan.isHead && !text.isEmpty:
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
            finish(context, plan)
        case .file(let url, let start, _) where !plan.isHead:
            guard let handle = try? FileHandle(forReadingFrom: url), (try? handle.seek(toOffset: UInt64(start))) != nil else {
                context.close(promise: nil)
                return
            }
            if plan.temporaryFile {
                try? FileManager.default.removeItem(at: url)
            }
            file = handle
            position = start
            sent = 0
            self.plan = plan
            context.flush()
            pump(context)
        case .endless:
            self.plan = plan
            context.flush()
            pump(context)
        default:
            finish(context, plan)
        }
    }

    /// Writes body pieces while the channel is writable, applying the plan's faults.
    ///
    /// Not re-entrant: a write can fire `channelWritabilityChanged` synchronously, and a nested
    /// pump would finish the response under the outer loop's feet. The outer loop re-checks
    /// writability itself, so a nested call has nothing to add.
    private func pump(_ context: ChannelHandlerContext) {
        guard !pumping, !waitingForTimer, let plan else { return }
        pumping = true
        defer { pumping = false }
        if case .endless = plan.body {
            let buffer = ByteBuffer(repeating: 0x41, count: 64 << 10)
            while context.channel.isWritable, self.plan != nil {
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            }
            return
        }
        guard case .file(_, _, let end) = plan.body else { return }
        while context.channel.isWritable, self.plan != nil, let file {
            var piece = min(Int64(plan.drip?.bytes ?? (256 << 10)), end - position)
            if let cut = plan.dropAfter ?? plan.stallAt {
                piece = min(piece, cut - sent)
            }
            if piece > 0 {
                guard let data = try? file.read(upToCount: Int(piece)), !data.isEmpty else {
                    context.close(promise: nil)
                    return
                }
                position += Int64(data.count)
                sent += Int64(data.count)
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: data)))), promise: nil)
            }
            if let limit = plan.dropAfter, sent >= limit {
                self.plan = nil
                context.triggerUserOutboundEvent(ConnectionDropHandler.Drop(reset: plan.reset), promise: nil)
                return
            }
            if let stallAt = plan.stallAt, sent >= stallAt {
                self.plan = nil
                return  // Silence; the client closes when it gives up.
            }
            if position >= end {
                try? file.close()
                self.file = nil
                finish(context, plan)
                return
            }
            if let drip = plan.drip {
                waitingForTimer = true
                let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                let nanoseconds = drip.every.components.seconds * 1_000_000_000 + drip.every.components.attoseconds / 1_000_000_000
                context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(nanoseconds)) {
                    self.waitingForTimer = false
                    self.pump(loopBound.value)
                }
                return
            }
        }
    }

    private func finish(_ context: ChannelHandlerContext, _ plan: TestHTTPSServer.Plan) {
        self.plan = nil
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        if plan.closeAfter {
            // Close once the response is on its way, not before.
            let channel = context.channel
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
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
