import HTTP1
import ConfigModel

// HOW THE SESSIONS CALL IT
//
// Per generation: each Frontend keeps `let logPlan = LogFormatPlan(proxy)` (built in its init,
// off the loop like the rest of the generation).
//
// When a TCP session ends (TCPSession.finish, where `log()` is called today, before the client fd
// is closed when `frontend.logPlan.needsLocalAddress`), and when an HTTP request ends
// (HTTPSession.endTransaction, where `log()` is called today):
//     var r = LogRecord(mode: .tcp|.http, frontend: frontend, generation: generation.id, acceptDate: wall)
//     r.backend = backend; r.server = server; r.client = clientAddress; r.local = localAddress
//     r.isTLS = clientTLS != nil; r.tls = clientTLS        (`%ft`'s `~`, `%sslv`, `%sslc`)
//     r.queue = Tw; r.connect = Tc; r.total = Tt (TCP)   |   r.requestDate, r.request = TR, r.queue,
//     r.connect, r.response = Tr, r.active = Ta, r.total = Ta (+ Ti + Th), r.status (HTTP)
//     r.bytesOut = bytes to the client; r.bytesIn = bytes from it; r.termination = termination
//     r.activeConnections/frontendConnections/backendConnections/serverConnections, r.retries,
//     r.redispatched, r.backendQueue; HTTP: r.requestLine, r.requestCaptures = scratch.capturedRequestHeaders
//     engine.account(r)                                  // statistics: always, logged or not
//     frontend.logPlan.emit(r, to: frontend.log)         // the line, when the proxy has a format
// These are the values the sessions' `log()` interpolate today, computed the same way: the
// `option httplog` and `option tcplog` lines come out byte for byte as before, except that a
// request answered before a backend was chosen shows `fe/<NOSRV>` (HAProxy's) where the HTTP
// session wrote `<NOSRV>/<NOSRV>`. A stats page or exporter answer sets `r.applet`
// (`<STATS>`, `<PROMEX>`) and HAProxy's `LR` termination.
//
// `option logasap` (`frontend.logPlan.logAsap`): when the response head has been forwarded
// (HTTP, end of `responseHead`) or the server connection is established (TCP,
// `connectCompleted`), the session builds the record with the figures known then and calls
//     loggedEarly = frontend.logPlan.emitEarly(r, to: frontend.log)      // sets r.early
// and at its end still calls `engine.account(r)` but emits only `if !loggedEarly`.

/// What a session knows when it logs: the values of HAProxy's log variables, filled by the session
/// (TCP when it ends; HTTP when a request ends, or when its response starts with
/// `option logasap`), read by `LogFormatter` (the line) and `Engine.account` (the statistics).
/// A plain value: filling it allocates nothing; the names come from the objects when a line is
/// written.
///
/// Timers are milliseconds, -1 for a step that was not reached, as HAProxy prints them.
struct LogRecord {
    var mode: ProxyMode
    unowned(unsafe) var frontend: Frontend
    /// nil: no backend was chosen (`%b` prints the frontend's name, as HAProxy's).
    unowned(unsafe) var backend: Backend?
    /// nil: no server (`%s` prints `<NOSRV>`, or `applet`).
    unowned(unsafe) var server: BackendServer?
    /// An answer strata made itself: `%s` prints HAProxy's applet name (`<STATS>`, `<PROMEX>`).
    var applet: StaticString?
    /// `%gen`: the generation the session ran under.
    var generation: Int
    /// `%ci:%cp`.
    var client: SocketEndpoint?
    /// `%fi:%fp`: the address the client connected to. Left nil, it is read from `clientFD`
    /// (getsockname) only when the format prints it: fill it (or keep the fd open) when
    /// `LogFormatPlan.needsLocalAddress`.
    var local: SocketEndpoint?
    var clientFD: Int32 = -1
    /// `%ft`'s `~`: the client connection is TLS.
    var isTLS = false
    /// `%sslv`, `%sslc` and `%[ssl_fc_*]`: the client connection's TLS (the session holds it;
    /// set it with `isTLS`).
    unowned(unsafe) var tls: TLSConnection?

    /// Wall-clock seconds of the accept (`%t`, `%T`, `%Ts`, `%ms`) and of the request's first byte
    /// (`%tr`, `%trg`, `%trl`; TCP: the accept).
    var acceptDate: Double
    var requestDate: Double

    /// `%Th`: handshake (TLS) time; `%Ti`: idle time before the request (keep-alive).
    var handshake = 0
    var idle = 0
    /// `%TR`: time to receive the request head.
    var request = -1
    /// `%Tw`: time in queues; `%Tc`: time to connect; `%Tr`: server response time (head).
    var queue = -1
    var connect = -1
    var response = -1
    /// `%Ta`: active time of the request (HTTP: from the head's first byte to the end);
    /// `%Tt`: total session time (TCP: accept to close).
    var active = -1
    var total = -1

    /// `%ST`: the status sent to the client (-1: none; TCP: 0).
    var status = -1
    /// `%B`: bytes sent to the client; `%U`: bytes received from it.
    var bytesOut: UInt64 = 0
    var bytesIn: UInt64 = 0
    /// `%ts`: how the session ended; `%tsc` adds the two cookie flags (`--`).
    var termination = TerminationState()
    var cookieFlags: (UInt8, UInt8) = (UInt8(ascii: "-"), UInt8(ascii: "-"))

    /// `%ac/%fc/%bc/%sc/%rc %sq/%bq`, read when the line is made.
    var activeConnections = 0
    var frontendConnections = 0
    var backendConnections = 0
    var serverConnections = 0
    var retries = 0
    var redispatched = false
    var serverQueue = 0
    var backendQueue = 0

    /// `%r` (`%HM`, `%HU`, `%HP`, `%HQ`, `%HV` are cut from it): the request line as received;
    /// nil prints `<BADREQ>`.
    var requestLine: String?
    /// `%hr`: the captured request headers as the rules wrote them (`{v1|v2}`), and `%hs`.
    var requestCaptures: UnsafeRawBufferPointer?
    var responseCaptures: UnsafeRawBufferPointer?
    /// `%[var(NAME)]`: the session's (TCP) or the request's (HTTP) variables.
    var variables: HTTPVariables?
    /// The request's capture slots, for `%[capture.req.hdr(N)]` and `%[capture.res.hdr(N)]`.
    var requestSlots: HTTPCaptureSlots?
    var responseSlots: HTTPCaptureSlots?
    /// `%CC`, `%CS`: the cookies `capture cookie` took (nil prints `-`).
    var requestCookie: UnsafeRawBufferPointer?
    var responseCookie: UnsafeRawBufferPointer?
    /// `%ID`: the request's unique ID (`unique-id-format`), nil when none was made.
    var uniqueID: UnsafeRawBufferPointer?

    /// A connection that failed before any request (`error-log-format`).
    var connectionFailed = false
    /// `option logasap`: logged before the end; `%Tt`, `%Ta` and `%B` get a `+`.
    var early = false
    /// `set-log-level`: the line's syslog level, -1 for none (`silent`); nil: the options decide.
    var logLevel: Int?

    init(mode: ProxyMode, frontend: Frontend, generation: Int, acceptDate: Double) {
        self.mode = mode
        self.frontend = frontend
        self.generation = generation
        self.acceptDate = acceptDate
        self.requestDate = acceptDate
    }

    /// HAProxy's idea of an error for `option log-separate-errors` and `dontlog-normal`: a
    /// redispatch, a termination cause other than none or local processing, retries, or a 5xx.
    var isError: Bool {
        let cause = termination.cause
        if redispatched || retries > 0 { return true }
        if cause != UInt8(ascii: "-") && cause != UInt8(ascii: "L") { return true }
        return mode == .http && status >= 500
    }
}

/// The formats of one proxy, compiled once per generation: the line, `log-format-sd`,
/// `error-log-format`, and the options that decide whether and at which level a line goes.
final class LogFormatPlan {
    /// nil: the proxy logs no session lines in this format language (TCP without `tcplog`: the
    /// "Connect from" line; HTTP without `httplog` or `log-format`).
    let line: LogFormatter?
    let structuredData: LogFormatter?
    let error: LogFormatter?
    let separateErrors: Bool
    let logAsap: Bool
    let dontLogNull: Bool
    let dontLogNormal: Bool
    /// A format prints the local address (`%fi`, `%fp`, `%[dst]`…): the session must fill
    /// `LogRecord.local` (or log before closing the client's fd).
    let needsLocalAddress: Bool
    /// A format prints `%ID` (or `%[unique-id]`) and the proxy has a `unique-id-format`: the
    /// session makes the ID before the request's head goes.
    let printsUniqueID: Bool

    init(_ proxy: Proxy) {
        line = LogFormatPlan.effectiveFormat(proxy).map(LogFormatter.init)
        structuredData = proxy.log.structuredDataFormat.map(LogFormatter.init)
        error = proxy.log.errorFormat.map(LogFormatter.init)
        separateErrors = proxy.log.separateErrors
        logAsap = proxy.log.logAsap
        dontLogNull = proxy.log.dontLogNull
        dontLogNormal = proxy.log.dontLogNormal
        needsLocalAddress = [line, structuredData, error].contains { $0?.needsLocalAddress ?? false }
        printsUniqueID = proxy.http.uniqueIDFormat != nil && [line, structuredData, error].contains { $0?.printsUniqueID ?? false }
    }

    /// `log-format`, else `option httplog [clf]` in HTTP mode, else `option tcplog`, else none.
    static func effectiveFormat(_ proxy: Proxy) -> LogFormatSpec? {
        if case .custom(let spec) = proxy.log.format { return spec }
        if proxy.mode == .http && proxy.http.httpLog { return proxy.http.httpLogCLF ? .httpLogCLF : .httpLog }
        if proxy.log.format == .tcplog { return .tcpLog }
        return nil
    }

    /// The line for `record`, or nil when the options say not to log it (`dontlognull`: a TCP
    /// session that carried nothing and ended normally; `dontlog-normal`: a session without
    /// error) or a `+M` value is missing. The level is `err` with `log-separate-errors` for a
    /// session with an error, `info` otherwise.
    func render(_ record: LogRecord) -> (line: String, level: LogLevel)? {
        guard let line else { return nil }
        if let forced = record.logLevel, forced < 0 { return nil }
        let error = record.isError
        if dontLogNull && record.mode == .tcp && record.bytesIn == 0 && record.bytesOut == 0
            && record.termination.cause == UInt8(ascii: "-") { return nil }
        if dontLogNormal && !error { return nil }
        guard let text = line.format(record) else { return nil }
        if let forced = record.logLevel.flatMap(LogLevel.init(rawValue:)) { return (text, forced) }
        return (text, separateErrors && error ? .err : .info)
    }

    /// Sends the line for `record` to `sinks` (see `render`), with its `log-format-sd` structured
    /// data for the RFC 5424 targets.
    func emit(_ record: LogRecord, to sinks: LogSinks) {
        guard !sinks.isEmpty, let (text, level) = render(record) else { return }
        sinks.send(text, level: level, structuredData: structuredData(record, sinks))
    }

    /// `option logasap`: the line for a session still running (the HTTP response head has been
    /// forwarded; the TCP server connection is established), `%Tt`, `%Ta` and `%B` marked with
    /// `+`. Returns true when the proxy logs early (`logAsap`), whether or not the options let
    /// this line out: the session then does not log again at its end (it still counts it).
    @discardableResult
    func emitEarly(_ record: LogRecord, to sinks: LogSinks) -> Bool {
        guard logAsap else { return false }
        var early = record
        early.early = true
        emit(early, to: sinks)
        return true
    }

    /// `error-log-format` (else the line format): a connection that failed before a request
    /// (a TLS handshake), logged at `err` with `log-separate-errors`.
    func emitConnectionError(_ record: LogRecord, to sinks: LogSinks) {
        var record = record
        record.connectionFailed = true
        guard !sinks.isEmpty, let formatter = error ?? line, let text = formatter.format(record) else { return }
        sinks.send(text, level: separateErrors ? .err : .info, structuredData: structuredData(record, sinks))
    }

    /// `log-format-sd` for `record`, made only when a target writes RFC 5424.
    private func structuredData(_ record: LogRecord, _ sinks: LogSinks) -> String? {
        guard let structuredData, sinks.wantsStructuredData else { return nil }
        return structuredData.format(record)
    }
}
