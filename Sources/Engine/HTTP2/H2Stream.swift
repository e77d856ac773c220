import CLibEV
import ConfigModel
import Glibc
import HTTP1

/// One HTTP/2 stream and the `HTTPSession` that serves its request. The session sees an HTTP/1.1
/// client: the stream hands it the request as an HTTP/1.1 head (RFC 9113 §8: pseudo-headers to
/// the request line and Host, cookie crumbs joined, chunked framing when the length is unknown)
/// followed by the DATA frames' bytes, and takes what the session writes back through strata's
/// own HTTP/1 response parser: the head becomes HEADERS (connection-specific fields dropped),
/// the de-chunked body DATA, a chunked trailer section trailing HEADERS.
///
/// The session reads and writes through `read`, `write` and `shutdownWrite` in place of a
/// socket, and the stream wakes it with events fed to its (never started) watcher.
final class H2Stream {
    let id: Int32
    /// 1 for the connection's first stream, 2 for the next…: `http-reuse safe` lets the streams
    /// after the first ride idle server connections, as the requests after a keep-alive
    /// connection's first do.
    let ordinal: Int
    /// Nil once the connection closed: the session then sees a reset.
    private(set) var connection: H2Connection?
    private(set) var session: HTTPSession?

    // The request as it arrives.
    private var method: [UInt8] = []
    private var path: [UInt8] = []
    private var authority: [UInt8] = []
    private var fields: [UInt8] = []
    private var cookies: [UInt8] = []
    private var hasContentLength = false
    private var hasHost = false
    private var headerBytes = 0
    private var headerCount = 0
    /// The HTTP/1.1 bytes for the session, and how far it has read them.
    private var request = H2InboundMessage()
    private var requestDone = false
    /// The client reset the stream, or the connection ended.
    private(set) var reset = false

    // The response as the session writes it.
    private var parser: HTTPResponseParser
    private var responseIn: [UInt8] = []
    private(set) var responseStarted = false
    /// The answer's body as DATA frames (its trailers after).
    private var body = H2OutboundBody()
    /// What the session waits for (EV_READ: request bytes, EV_WRITE: room for its answer).
    private var interest: Int32 = 0


    init(id: Int32, connection: H2Connection, ordinal: Int) {
        self.id = id
        self.ordinal = ordinal
        self.connection = connection
        parser = HTTPResponseParser(limits: HTTPParserLimits(maxHeadSize: max(connection.headerListLimit, 16384),
                                                             maxFieldCount: connection.maxHeaders, maxChunkLineSize: 4096))
    }

    // MARK: the request, from libnghttp2's callbacks

    /// One header field (libnghttp2 has checked its characters and the pseudo-headers' rules).
    func header(_ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) -> Int32 {
        guard let connection else { return 0 }
        headerBytes += name.count + value.count + 32
        headerCount += 1
        if headerBytes > connection.headerListLimit || headerCount > connection.maxHeaders {
            // An HPACK bomb or a head too large for a buffer, as an HTTP/1 head would be.
            connection.counters.add(.oversizedHeaders)
            return Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
        if name.first == UInt8(ascii: ":") {
            if H2Stream.equals(name, ":method") {
                method = Array(value)
            } else if H2Stream.equals(name, ":path") {
                path = Array(value)
            } else if H2Stream.equals(name, ":authority") {
                authority = Array(value)
            }
            return 0
        }
        if H2Stream.equals(name, "cookie") {
            // RFC 9113 §8.2.3: crumbs join with "; " into one field for HTTP/1.1.
            if !cookies.isEmpty { cookies.append(contentsOf: "; ".utf8) }
            cookies.append(contentsOf: value)
            return 0
        }
        if H2Stream.equals(name, "host") {
            // :authority, when present, says the same and takes its place.
            hasHost = true
        }
        if H2Stream.equals(name, "content-length") { hasContentLength = true }
        // `te` (only "trailers", checked by libnghttp2) goes into the head: hop-by-hop there, it
        // is removed before an HTTP/1.1 server and said again to an HTTP/2 one.
        fields.append(contentsOf: name)
        fields.append(contentsOf: ": ".utf8)
        fields.append(contentsOf: value)
        fields.append(contentsOf: "\r\n".utf8)
        return 0
    }

    /// The request's HEADERS ended: its HTTP/1.1 head is made and a session starts on it.
    func headersComplete(endStream: Bool) {
        guard let connection, let session = connection.session else { return }
        guard !method.isEmpty, !path.isEmpty, !H2Stream.equals(method, "CONNECT") else {
            // CONNECT (RFC 9113 §8.5) has no tunnel in strata's HTTP/2 yet.
            nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, NGHTTP2_REFUSED_STREAM.rawValue)
            connection.counters.add(.resetsSent)
            connection.scheduleFlush()
            return
        }
        guard let frontend = connection.listener.frontend, frontend.proxy.mode == .http else {
            nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, NGHTTP2_REFUSED_STREAM.rawValue)
            connection.counters.add(.resetsSent)
            connection.scheduleFlush()
            return
        }
        var head: [UInt8] = []
        head.reserveCapacity(method.count + path.count + fields.count + authority.count + cookies.count + 64)
        head.append(contentsOf: method)
        head.append(UInt8(ascii: " "))
        head.append(contentsOf: path)
        head.append(contentsOf: " HTTP/1.1\r\n".utf8)
        if !authority.isEmpty {
            head.append(contentsOf: "host: ".utf8)
            head.append(contentsOf: authority)
            head.append(contentsOf: "\r\n".utf8)
            if hasHost { fields = H2Stream.removingHost(fields) }
        }
        head.append(contentsOf: fields)
        if !cookies.isEmpty {
            head.append(contentsOf: "cookie: ".utf8)
            head.append(contentsOf: cookies)
            head.append(contentsOf: "\r\n".utf8)
        }
        if !endStream && !hasContentLength {
            // A body of unknown length: HTTP/1.1 carries it chunked.
            request.chunked = true
            head.append(contentsOf: "transfer-encoding: chunked\r\n".utf8)
        } else if endStream && !hasContentLength && H2Stream.methodExpectsBody(method) {
            head.append(contentsOf: "content-length: 0\r\n".utf8)
        }
        head.append(contentsOf: "\r\n".utf8)
        request.append(head: head)
        requestDone = endStream
        fields = []
        cookies = []
        if connection.tracker == nil, frontend.generation.tracksStickCounters { connection.tracker = StickTracker() }
        let s = HTTPSession(worker: connection.worker, listener: connection.listener, frontend: frontend, clientFD: connection.fd,
                            clientAddress: connection.clientAddress, localAddress: connection.localAddress, tls: connection.tls,
                            tracker: connection.tracker, stream: self)
        self.session = s
        s.receivedProxyHeader = connection.receivedProxyHeader
        // The rules' per-request storage (a few buffers) is the connection's, lent to its streams.
        s.scratch = connection.scratches.popLast()
        if s.scratch == nil { s.startVariables(connection.sessionVariables) }
        s.start()
    }

    func body(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard !bytes.isEmpty, session != nil else {
            if let s = connection?.session { nghttp2_session_consume(s, id, bytes.count) }
            return
        }
        request.append(data: bytes)
        wake(EV_READ_MASK)
    }

    /// END_STREAM: no more request bytes.
    func requestEnded() {
        guard !requestDone else { return }
        requestDone = true
        request.endChunks()
        wake(EV_READ_MASK)
    }

    /// libnghttp2 closed the stream: answered, or reset by the client.
    func closed(errorCode: UInt32) {
        if !(body.done && body.isDrained && responseStarted) || errorCode != NGHTTP2_NO_ERROR.rawValue {
            reset = true
        }
        connection = nil
        wake(EV_READ_MASK | EV_WRITE_MASK)
    }

    func connectionClosed() {
        reset = true
        connection = nil
        wake(EV_READ_MASK | EV_WRITE_MASK)
    }

    // MARK: the session's transport

    /// Request bytes for the session: a count, or -1 with EAGAIN (more to come); 0 once reset.
    func read(_ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
        if reset { return 0 }
        guard request.available > 0 else {
            errno = EAGAIN
            return -1
        }
        let (n, acknowledge) = request.take(buffer, count)
        if acknowledge > 0, let connection, let s = connection.session {
            nghttp2_session_consume(s, id, acknowledge)
            connection.scheduleFlush()
        }
        return n
    }

    /// Response bytes from the session, parsed as HTTP/1.1 and framed as HTTP/2.
    func write(_ bytes: UnsafeRawPointer, _ count: Int) -> Int {
        guard !reset, let connection, let session = connection.session else {
            errno = EPIPE
            return -1
        }
        if body.isFull {
            body.writerWaiting = true
            errno = EAGAIN
            return -1
        }
        responseIn.append(contentsOf: UnsafeRawBufferPointer(start: bytes, count: count))
        let method = self.session?.transaction.method ?? .get
        var consumedTotal = 0
        let failed = responseIn.withUnsafeBytes { all -> Bool in
            while true {
                let input = UnsafeRawBufferPointer(rebasing: all[consumedTotal...])
                let action = parser.parse(input, requestMethod: method)
                switch action {
                case .needMore:
                    return false
                case .error:
                    return true
                case .headersComplete(let length):
                    if !parser.head.isInformational { submitHead(input, session: session) }
                    consumedTotal += length
                case .body(let range):
                    body.append(UnsafeRawBufferPointer(rebasing: input[range]))
                    consumedTotal += range.upperBound
                case .chunkHeader, .chunkDataEnd:
                    consumedTotal += action.consumed
                case .messageComplete(let framing):
                    if responseStarted {
                        for f in parser.trailerFields {
                            body.trailers.append((H2Stream.lowercased(input[f.name]), Array(input[f.value])))
                        }
                        body.done = true
                        consumedTotal += framing
                        return false
                    }
                    // An interim answer (100 Continue) ended: the final one follows.
                    consumedTotal += framing
                }
            }
        }
        responseIn.removeFirst(consumedTotal)
        if failed {
            resetStream(NGHTTP2_INTERNAL_ERROR)
            errno = EPIPE
            return -1
        }
        resume()
        return count
    }

    /// The session is done writing (the end of a body delimited by the close, or a tunnel's end).
    func shutdownWrite() {
        finishResponse()
    }

    /// The session closed: a response left incomplete ends the stream with a reset.
    func sessionClosed() {
        finishResponse()
        if let scratch = session?.scratch, let connection, connection.scratches.count < connection.settings.maxConcurrentStreams {
            connection.scratches.append(scratch)
        }
        session = nil
        if let connection {
            if !body.done { resetStream(NGHTTP2_INTERNAL_ERROR) }
            connection.streamSessionEnded()
        }
    }

    private func finishResponse() {
        guard !body.done, responseStarted else { return }
        if case .messageComplete? = parser.inputEnded() {
            body.done = true
            resume()
        }
    }

    /// The session says what it waits for; bytes or room already there wake it at once.
    func setInterest(_ events: Int32) {
        interest = events
        var ready: Int32 = 0
        if events & EV_READ_MASK != 0 && (reset || request.available > 0) { ready |= EV_READ_MASK }
        if events & EV_WRITE_MASK != 0 && (reset || !body.isFull) { ready |= EV_WRITE_MASK }
        if ready != 0, let s = session { ev_feed_event(s.loop.raw, s.clientIO.raw, ready) }
    }

    private func wake(_ events: Int32) {
        guard let s = session else { return }
        let ready = events & interest
        if ready != 0 { ev_feed_event(s.loop.raw, s.clientIO.raw, ready) }
    }

    // MARK: the response to libnghttp2

    private func submitHead(_ input: UnsafeRawBufferPointer, session: OpaquePointer) {
        let head = parser.head
        var headers: [(name: [UInt8], value: [UInt8])] = [(Array(":status".utf8), Array(String(head.status).utf8))]
        // RFC 9113 §8.2.2: no connection-specific field (and no chunked framing) on HTTP/2.
        for f in head.fields where !f.knownName.isHopByHop && f.knownName != .transferEncoding && !head.isHopByHop(f, in: input) {
            headers.append((H2Stream.lowercased(input[f.name]), Array(input[f.value])))
        }
        let noBody = head.framing == .noBody || head.framing == .contentLength(0)
        responseStarted = true
        if noBody { body.done = true }
        H2Stream.withNameValues(headers) { nva, count in
            if noBody {
                _ = nghttp2_submit_response(session, id, nva, count, nil)
            } else {
                var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: h2ReadBody)
                _ = nghttp2_submit_response(session, id, nva, count, &provider)
            }
        }
        connection?.scheduleFlush()
    }

    /// libnghttp2 wants up to `length` body bytes for a DATA frame.
    fileprivate func readBody(_ buffer: UnsafeMutablePointer<UInt8>, _ length: Int, _ flags: UnsafeMutablePointer<UInt32>) -> Int {
        let (result, wakeWriter, submitTrailers) = body.read(buffer, length, flags)
        if wakeWriter { wake(EV_WRITE_MASK) }
        if submitTrailers, let connection, let session = connection.session {
            H2Stream.withNameValues(body.trailers) { nva, count in _ = nghttp2_submit_trailer(session, id, nva, count) }
            body.trailers = []
        }
        return result
    }

    /// `fields` as libnghttp2's name/value array, valid during `body` (libnghttp2 copies them).
    static func withNameValues<R>(_ fields: [(name: [UInt8], value: [UInt8])],
                                  _ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
        var storage: [UInt8] = []
        var spans: [(name: Range<Int>, value: Range<Int>)] = []
        for (name, value) in fields {
            let n = storage.count
            storage.append(contentsOf: name)
            let v = storage.count
            storage.append(contentsOf: value)
            spans.append((n..<v, v..<storage.count))
        }
        return storage.withUnsafeMutableBufferPointer { bytes in
            let base = bytes.baseAddress!
            let nva = spans.map { span in
                nghttp2_nv(name: base + span.name.lowerBound, value: base + span.value.lowerBound, namelen: span.name.count,
                           valuelen: span.value.count, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            }
            return nva.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
        }
    }

    private func resume() {
        guard body.deferred, let connection, let session = connection.session else { return }
        body.deferred = false
        nghttp2_session_resume_data(session, id)
        connection.scheduleFlush()
    }

    private func resetStream(_ code: nghttp2_error_code) {
        guard let connection, let session = connection.session, !reset else { return }
        reset = true
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, code.rawValue)
        connection.counters.add(.resetsSent)
        connection.scheduleFlush()
    }

    // MARK: bytes

    static func equals(_ a: UnsafeBufferPointer<UInt8>, _ b: StaticString) -> Bool {
        HTTPRuleBytes.equals(UnsafeRawBufferPointer(a), HTTPRuleBytes.literal(b))
    }

    static func equals(_ a: [UInt8], _ b: StaticString) -> Bool {
        a.withUnsafeBufferPointer { equals($0, b) }
    }

    static func lowercased<C: Collection>(_ bytes: C) -> [UInt8] where C.Element == UInt8 {
        bytes.map(HTTPByte.lowercased)
    }

    static func methodExpectsBody(_ method: [UInt8]) -> Bool {
        equals(method, "POST") || equals(method, "PUT") || equals(method, "PATCH")
    }

    /// The `host` field lines of an HTTP/1.1 field block, taken out.
    static func removingHost(_ fields: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var lineStart = 0
        var i = 0
        while i + 1 < fields.count {
            if fields[i] == 13 && fields[i + 1] == 10 {
                let line = fields[lineStart..<i + 2]
                let isHost = line.count > 5 && line.withUnsafeBufferPointer { equals(UnsafeBufferPointer(rebasing: $0[..<5]), "host:") }
                if !isHost { out.append(contentsOf: line) }
                lineStart = i + 2
                i += 2
            } else {
                i += 1
            }
        }
        return out
    }
}

private let h2ReadBody: nghttp2_data_source_read_callback = { _, streamID, buffer, length, flags, _, user in
    guard let buffer, let flags, let user else { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
    let c = Unmanaged<H2Connection>.fromOpaque(user).takeUnretainedValue()
    guard let stream = c.streams[streamID] else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
    return stream.readBody(buffer, length, flags)
}
