import CLibEV
import ConfigModel
import Glibc
import HTTP1

/// One request's stream on an `H2ServerConnection`, seen by its session as an HTTP/1.1 server
/// behind a `ServerConnection` without a socket (`carrier`, whose `h2` is this stream). What the
/// session writes (strata's rewritten request head, then the body) is parsed with strata's own
/// HTTP/1 parser and sent as HEADERS and DATA (RFC 9113 §8: Host to `:authority`, connection-
/// specific fields dropped, `te: trailers` kept, chunked framing undone, trailers as a trailing
/// HEADERS). The answer comes back as HTTP/1.1 bytes: the status line and fields, Content-Length
/// when the server sent one, else chunked framing, whose trailer section carries the server's
/// trailing HEADERS (gRPC's `grpc-status`).
final class H2ServerStream {
    /// Nil once the session let go of the stream, or the connection closed.
    private(set) var connection: H2ServerConnection?
    /// Weak: the stream outlives its carrier when its session leaves before the server's last
    /// frame (libnghttp2 keeps the stream until it closes).
    private weak var carrier: ServerConnection?
    private let scheme: StaticString
    private(set) var id: Int32 = 0

    // The request, as the session writes it.
    private var parser = HTTPRequestParser(limits: HTTPParserLimits(maxHeadSize: 65536, maxFieldCount: 1000, maxChunkLineSize: 4096))
    private var requestIn: [UInt8] = []
    private var submitted = false
    private var isHead = false
    /// The request's body as DATA frames (its trailers after).
    private var body = H2OutboundBody()
    /// The session wrote the whole request.
    private var requestDone = false

    // The answer, as HTTP/1.1 bytes for the session.
    private var response = H2InboundMessage()
    private var status = 0
    private var fields: [UInt8] = []
    private var hasContentLength = false
    private var headerBytes = 0
    private var headerCount = 0
    private var finalHeadSeen = false
    private var ended = false
    /// The server reset the stream, or the connection ended: the session reads EOF.
    private(set) var reset = false
    private var interest: Int32 = 0

    /// The stream window announced to servers: what one stream's answer may hold in memory
    /// before its client reads it. (The connection's window is `connectionWindowSize`.)
    static let windowSize = 256 * 1024
    static let connectionWindowSize: Int32 = 4 << 20

    init(connection: H2ServerConnection, carrier: ServerConnection, scheme: StaticString) {
        self.connection = connection
        self.carrier = carrier
        self.scheme = scheme
    }

    // MARK: the carrier's connect

    /// The connection's connect, as the session's connector sees it.
    var connectProgress: ServerConnection.ConnectProgress {
        switch connection?.phase {
        case .ready: .established
        case .connecting: .inProgress
        case .failed where connection?.choseHTTP1 == true: .reopen
        case .failed, .closed, nil: .failed(.socket(errno: ECONNREFUSED))
        }
    }

    /// The connection is up, or failed: the session waiting for it learns which.
    func connectionReady() { wake(EV_WRITE_MASK | EV_READ_MASK) }

    // MARK: the session's transport

    /// The session's request bytes: parsed, and sent as HEADERS and DATA.
    func write(_ bytes: UnsafeRawPointer, _ count: Int) -> Int {
        guard !reset, let connection, connection.phase == .ready else {
            errno = EPIPE
            return -1
        }
        if body.isFull {
            body.writerWaiting = true
            errno = EAGAIN
            return -1
        }
        if requestDone { return count }  // (nothing follows a request the session sends)
        requestIn.append(contentsOf: UnsafeRawBufferPointer(start: bytes, count: count))
        var consumed = 0
        let failed = requestIn.withUnsafeBytes { all -> Bool in
            while !requestDone {
                let input = UnsafeRawBufferPointer(rebasing: all[consumed...])
                let action = parser.parse(input)
                switch action {
                case .needMore:
                    return false
                case .error:
                    return true
                case .headersComplete(let length):
                    guard submitHead(input, connection: connection) else { return true }
                    consumed += length
                case .body(let range):
                    body.append(UnsafeRawBufferPointer(rebasing: input[range]))
                    consumed += range.upperBound
                case .chunkHeader, .chunkDataEnd:
                    consumed += action.consumed
                case .messageComplete(let framing):
                    for f in parser.trailerFields where !f.knownName.isHopByHop {
                        body.trailers.append((H2Stream.lowercased(input[f.name]), Array(input[f.value])))
                    }
                    requestDone = true
                    body.done = true
                    consumed += framing
                }
            }
            return false
        }
        requestIn.removeFirst(consumed)
        if failed {
            resetStream(NGHTTP2_INTERNAL_ERROR)
            errno = EPIPE
            return -1
        }
        resume()
        return count
    }

    /// Answer bytes for the session: a count, -1 with EAGAIN (more to come), 0 once reset.
    func read(_ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
        guard response.available > 0 else {
            if reset { return 0 }
            errno = EAGAIN
            return -1
        }
        let (n, acknowledge) = response.take(buffer, count)
        if acknowledge > 0, let connection, let session = connection.session {
            nghttp2_session_consume(session, id, acknowledge)
            connection.scheduleFlush()
        }
        return n
    }

    /// The session ended its request's input (an HTTP/1 tunnel's end): nothing more to send.
    func shutdownWrite() {
        guard !requestDone else { return }
        requestDone = true
        body.done = true
        resume()
    }

    /// The session says what it waits for; bytes or room already there wake it at once.
    func setInterest(_ events: Int32) {
        interest = events
        var ready: Int32 = 0
        if events & EV_READ_MASK != 0 && (reset || response.available > 0) { ready |= EV_READ_MASK }
        if events & EV_WRITE_MASK != 0 && connection?.phase != .connecting && (reset || !body.isFull) { ready |= EV_WRITE_MASK }
        if ready != 0 { carrier?.feed(ready) }
    }

    private func wake(_ events: Int32) {
        let ready = events & interest
        if ready != 0, let carrier, carrier.owner != nil { carrier.feed(ready) }
    }

    /// A session reads the stream (false once it let go).
    var isAttached: Bool { connection != nil && carrier != nil }

    /// The session let go of the stream (answered, failed, timed out): an unfinished stream is
    /// cancelled, so the server stops working on it.
    func detach() {
        guard let connection else { return }
        if submitted && !(ended && requestDone) { resetStream(NGHTTP2_CANCEL) }
        self.connection = nil
        connection.detach(self)
    }

    // MARK: the request to libnghttp2

    /// The request head as HEADERS: false when it cannot go (no connection, a malformed target).
    private func submitHead(_ input: UnsafeRawBufferPointer, connection: H2ServerConnection) -> Bool {
        let head = parser.head
        if head.method == .connect || head.isUpgradeRequest { return false }  // no tunnels over a server's h2 (yet)
        isHead = head.method == .head
        var path = Array(input[head.target])
        var authority: [UInt8] = head.host.map { Array(input[$0]) } ?? []
        if head.targetForm == .absolute, let a = head.targetAuthority {
            // `GET http://name/path`: the authority and the path are the target's.
            authority = Array(input[a])
            path = a.upperBound < head.target.upperBound ? Array(input[a.upperBound..<head.target.upperBound]) : Array("/".utf8)
        }
        var headers: [(name: [UInt8], value: [UInt8])] = [
            (Array(":method".utf8), Array(input[head.methodRange])),
            (Array(":scheme".utf8), H2ServerStream.bytes(scheme)),
            (Array(":path".utf8), path),
        ]
        if !authority.isEmpty { headers.append((Array(":authority".utf8), authority)) }
        for f in head.fields {
            switch f.knownName {
            case .host, .transferEncoding, .te:
                continue
            default:
                if head.isHopByHop(f, in: input) { continue }
            }
            headers.append((H2Stream.lowercased(input[f.name]), Array(input[f.value])))
        }
        if let session = carrier?.owner as? HTTPSession, session.transaction.acceptsTrailers {
            // The only TE HTTP/2 allows (RFC 9113 §8.2.2), which gRPC servers look for.
            headers.append((Array("te".utf8), Array("trailers".utf8)))
        }
        let hasBody = !(head.framing == .noBody || head.framing == .contentLength(0))
        if !hasBody {
            requestDone = true
            body.done = true
        }
        let id = H2Stream.withNameValues(headers) { nva, count in connection.submit(self, nva, count, hasBody: hasBody) }
        guard let id else { return false }
        self.id = id
        submitted = true
        return true
    }

    /// libnghttp2 wants up to `length` request body bytes for a DATA frame.
    func readBody(_ buffer: UnsafeMutablePointer<UInt8>, _ length: Int, _ flags: UnsafeMutablePointer<UInt32>) -> Int {
        let (result, wakeWriter, submitTrailers) = body.read(buffer, length, flags)
        if wakeWriter { wake(EV_WRITE_MASK) }
        if submitTrailers, let session = connection?.session {
            H2Stream.withNameValues(body.trailers) { nva, count in _ = nghttp2_submit_trailer(session, id, nva, count) }
            body.trailers = []
        }
        return result
    }

    private func resume() {
        guard body.deferred, submitted, let connection, let session = connection.session else { return }
        body.deferred = false
        nghttp2_session_resume_data(session, id)
        connection.scheduleFlush()
    }

    private func resetStream(_ code: nghttp2_error_code) {
        guard submitted, !reset, let connection, let session = connection.session else { return }
        reset = true
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, code.rawValue)
        connection.scheduleFlush()
    }

    // MARK: the answer, from libnghttp2's callbacks

    /// One field of the answer's head or trailers (libnghttp2 checked its characters).
    func header(_ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) -> Int32 {
        guard let connection else { return 0 }
        headerBytes += name.count + value.count + 32
        headerCount += 1
        if headerBytes > connection.headerListLimit || headerCount > connection.maxHeaders {
            // The answer's head would not fit strata's buffer as HTTP/1.1: the stream fails.
            connection.counters.add(.oversizedHeaders)
            return Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
        if name.first == UInt8(ascii: ":") {
            if H2Stream.equals(name, ":status") { status = H2ServerStream.integer(value) }
            return 0
        }
        if H2Stream.equals(name, "content-length") {
            if finalHeadSeen { return 0 }  // (not in trailers)
            hasContentLength = true
        }
        if H2Stream.equals(name, "connection") || H2Stream.equals(name, "transfer-encoding") { return 0 }
        fields.append(contentsOf: name)
        fields.append(contentsOf: ": ".utf8)
        fields.append(contentsOf: value)
        fields.append(contentsOf: "\r\n".utf8)
        return 0
    }

    /// A HEADERS frame ended: an interim answer, the final head, or the trailers.
    func headersComplete(endStream: Bool) {
        defer {
            fields.removeAll(keepingCapacity: true)
            headerBytes = 0
            headerCount = 0
        }
        if finalHeadSeen {
            // Trailers: the chunked body's trailer section (dropped after a counted body).
            if response.chunked {
                response.append(text: "0\r\n".utf8)
                response.append(text: fields)
                response.append(text: "\r\n".utf8)
            }
            ended = true
            wake(EV_READ_MASK)
            return
        }
        response.append(text: "HTTP/1.1 ".utf8)
        response.append(text: String(status).utf8)
        response.append(text: " ".utf8)
        response.append(text: H2ServerStream.bytes(HTTPErrorPages.reason(status)))
        response.append(text: "\r\n".utf8)
        response.append(text: fields)
        if status >= 100 && status < 200 {
            // An interim answer (100 Continue, 103): the final one follows.
            response.append(text: "\r\n".utf8)
            hasContentLength = false
            wake(EV_READ_MASK)
            return
        }
        finalHeadSeen = true
        let bodiless = isHead || status == 204 || status == 304
        if !hasContentLength && !bodiless {
            if endStream {
                response.append(text: "content-length: 0\r\n".utf8)
            } else {
                response.chunked = true
                response.append(text: "transfer-encoding: chunked\r\n".utf8)
            }
        }
        response.append(text: "\r\n".utf8)
        if endStream { responseEnded() }
        wake(EV_READ_MASK)
    }

    func body(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard !bytes.isEmpty else { return }
        response.append(data: bytes)
        wake(EV_READ_MASK)
    }

    /// END_STREAM on the answer's DATA (or head).
    func responseEnded() {
        guard !ended else { return }
        ended = true
        response.endChunks()
        wake(EV_READ_MASK)
    }

    /// libnghttp2 closed the stream: answered, or reset (by the server, or refused by a GOAWAY).
    func closed(errorCode: UInt32) {
        if !ended || errorCode != NGHTTP2_NO_ERROR.rawValue { reset = true }
        requestDone = true
        body.done = true
        wake(EV_READ_MASK | EV_WRITE_MASK)
    }

    func connectionClosed() {
        reset = !ended
        connection = nil
        wake(EV_READ_MASK | EV_WRITE_MASK)
    }

    // MARK: bytes

    static func bytes(_ s: StaticString) -> [UInt8] {
        Array(UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    static func integer(_ digits: UnsafeBufferPointer<UInt8>) -> Int {
        var n = 0
        for d in digits where d >= 48 && d <= 57 && n < 1000 { n = n * 10 + Int(d - 48) }
        return n
    }
}
