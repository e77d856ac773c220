import HTTP1
import ConfigModel

/// One request and its response on an HTTP connection (HAProxy's `struct http_txn` with the
/// stream's per-request parts): everything that starts afresh with a request. Its session assigns
/// a new one when a request's first byte arrives, so no flag outlives its request, and `end`s it
/// once the request is logged, so an idle connection holds no generation. What belongs to the
/// connection (buffers, parsers, TLS, the listener, lingering) stays on the session.
struct HTTPTransaction {
    /// The generation current when the head was complete, and its proxies: the request is a
    /// session of that generation until its answer is sent.
    var generation: Generation?
    var frontend: Frontend?
    var backend: Backend?
    /// The server side: the server and its slot, the connection, queue, retries (Tw, Tc).
    var connector = ServerConnector()

    // The request.
    var method = HTTPMethod.get
    var version = HTTPVersion.http11
    var keepAlive = true
    var hasBody = false
    /// Its head was parsed (an answer to a broken or late head cannot keep the connection).
    var headReceived = false
    var requestComplete = false
    /// `option http-buffer-request`: the server is chosen once the body is in.
    var waitingForBody = false
    /// `http-request wait-for-body`: the wait ends at `bodyWaitUntil` (loop seconds) without an
    /// error, or once `bodyAtLeast` bytes of the body are in; nil: `option http-buffer-request`
    /// (408 after `timeout http-request`).
    var bodyWaitUntil: Double?
    var bodyAtLeast = Int.max
    /// `http-request tarpit`: the answer held until `tarpitUntil` (loop seconds).
    var tarpitAnswer: HTTPLocalResponse?
    var tarpitUntil = 0.0
    var expectsContinue = false
    var upgradeRequested = false
    /// `TE: trailers`: the client takes trailers (gRPC's clients say so). TE is hop-by-hop and
    /// removed from the head; an HTTP/2 server is told again (`H2ServerStream`).
    var acceptsTrailers = false
    /// The request line, for the log only (empty when the frontend logs nothing).
    var requestLine = ""

    // The response.
    var responseStarted = false
    var responseComplete = false
    var responseStatus = 0
    /// strata answers itself (an error, a deny, a service): nothing goes to a server.
    var localResponse = false
    /// A 1xx answer is being forwarded; the final one follows.
    var interimResponse = false
    /// The server closed its side.
    var serverEOF = false
    /// The connection closes after this response.
    var closeAfterResponse = false
    var bytesToClient: UInt64 = 0
    /// `compression`: the algorithm Accept-Encoding allows for the answer (chosen with the
    /// request), and the answer's compressor once the response head says it is compressed.
    var compressionAlgorithm: HTTPCompression.Algorithm?
    var compressor: HTTPCompressor?
    /// An answer from strata's own services (stats page, exporter): its bytes, and the applet name
    /// the log shows (`<STATS>`, `<PROMEX>`).
    var serviceAnswer: StatsServiceAnswer?
    var applet: StaticString?
    /// A cache hit: the entry whose bytes are being sent (kept alive until they are).
    var cacheEntry: HTTPCacheEntry?
    /// `cache-store`: the answer being copied into the cache.
    var cacheCapture: HTTPCacheCapture?

    // The log.
    var termination = TerminationState()
    /// `option logasap`: the line left when the response head did.
    var loggedEarly = false
    /// Loop seconds: the head's first byte, the head complete (wall clock too), the response head.
    var headStartedAt = 0.0
    var requestAt = 0.0
    var requestWall = 0.0
    /// Seconds from `requestAt` to the response head (-1: none yet).
    var responseTime = -1.0

    init() {}

    init(headStartedAt: Double) {
        self.headStartedAt = headStartedAt
    }

    /// The request is logged: what holds its generation goes, and the server it no longer uses
    /// (the flags stay until the next request replaces them).
    mutating func end() {
        generation = nil
        frontend = nil
        backend = nil
        connector.end()
        serviceAnswer = nil
        compressor = nil
        cacheEntry?.endSending()
        cacheEntry = nil
        cacheCapture = nil
    }
}
