import ConfigModel
import Glibc
import StrataTestSupport
import Testing

@testable import Engine

/// `log-format` parsing and rendering: HAProxy's httplog, httplog clf and tcplog field by field
/// (the expected lines below are HAProxy 2.6's for the same values), separators, flags, `%gen`.
@Suite struct LogFormatTests {
    /// A generation with an HTTP `listen web` (server `origin`) and a TCP `frontend tin` →
    /// `backend tout` (server `t1`), built as values (nothing listens).
    static func generation() throws -> Generation {
        let here = SourceLocation(file: "test", line: 1)
        var web = Proxy(name: "web", kind: .listen, location: here, id: 1)
        web.mode = .http
        web.servers = [ConfigModel.Server(name: "origin", location: here, id: 1, host: "127.0.0.1",
                                          address: .v4(0x7f00_0001), port: 8080, options: ServerOptions())]
        var tin = Proxy(name: "tin", kind: .frontend, location: here, id: 2)
        tin.defaultBackend = "tout"
        var tout = Proxy(name: "tout", kind: .backend, location: here, id: 3)
        tout.servers = [ConfigModel.Server(name: "t1", location: here, id: 1, host: "10.0.0.9",
                                           address: .v4(0x0a00_0009), port: 9000, options: ServerOptions())]
        let config = Config(global: GlobalSettings(), proxies: [web, tin, tout])
        return try testGeneration(ConfigGeneration(id: 7, hash: "h", config: config, files: []))
    }

    /// 25/Nov/2026:17:13:35.250 (exact in binary, so the milliseconds print the same everywhere).
    static let date = 1_795_626_815.25

    static func httpRecord(_ g: Generation) -> LogRecord {
        let fe = g.frontends["web"]!
        var r = LogRecord(mode: .http, frontend: fe, generation: g.id, acceptDate: date)
        r.backend = g.backends["web"]
        r.server = g.backends["web"]!.servers[0]
        r.client = SocketEndpoint(address: .v4(0x7f00_0001), port: 35280)
        r.local = SocketEndpoint(address: .v4(0x7f00_0001), port: 18090)
        r.requestDate = date
        r.request = 2
        r.queue = 0
        r.connect = 1
        r.response = 5
        r.active = 9
        r.total = 9
        r.status = 200
        r.bytesOut = 217
        r.bytesIn = 78
        r.activeConnections = 3
        r.frontendConnections = 2
        r.backendConnections = 1
        r.serverConnections = 1
        r.backendQueue = 0
        r.requestLine = "GET /a?b=1 HTTP/1.1"
        return r
    }

    /// What `HTTPSession.log()` wrote before log formats (kept to prove the switch is invisible).
    static func sessionHTTPLine(_ r: LogRecord) -> String {
        let client = r.client.map { "\($0.address):\($0.port)" } ?? "-:-"
        let retries = r.redispatched ? "+\(r.retries)" : "\(r.retries)"
        return "\(client) [\(logDate(r.requestDate))] \(r.frontend.name) \(r.backend?.name ?? "<NOSRV>")/\(r.server?.name ?? "<NOSRV>") \(r.request)/\(r.queue)/\(r.connect)/\(r.response)/\(r.active) \(r.status > 0 ? "\(r.status)" : "-1") \(r.bytesOut) - - \(r.termination.text)-- \(r.activeConnections)/\(r.frontendConnections)/\(r.backendConnections)/\(r.serverConnections)/\(retries) 0/\(r.backendQueue) \"\(r.requestLine!)\""
    }

    /// What `TCPSession.log()` wrote before log formats.
    static func sessionTCPLine(_ r: LogRecord) -> String {
        let client = r.client.map { "\($0.address):\($0.port)" } ?? "-:-"
        let retries = r.redispatched ? "+\(r.retries)" : "\(r.retries)"
        return "\(client) [\(logDate(r.acceptDate))] \(r.frontend.name) \(r.backend?.name ?? r.frontend.name)/\(r.server?.name ?? "<NOSRV>") \(r.queue)/\(r.connect)/\(r.total) \(r.bytesOut) \(r.termination.text) \(r.activeConnections)/\(r.frontendConnections)/\(r.backendConnections)/\(r.serverConnections)/\(retries) 0/\(r.backendQueue)"
    }

    // MARK: parsing

    @Test func httplogParsesIntoHAProxysNodes() throws {
        let nodes = LogFormatSpec.httpLog.nodes
        #expect(nodes.first == .variable("ci", []))
        #expect(nodes[1] == .literal(":"))
        #expect(nodes.last == .variable("r", .quote))
        #expect(nodes.filter { $0 == .separator }.count == 14)
        #expect(nodes.contains(.literal("[")))
    }

    @Test func parserHandlesPercentFlagsGlobalOptionsAndSamples() throws {
        let spec = try LogFormatSpec(parsing: "100%%  %{+Q}o %ci %{-Q}cp %{+Q,+E}[src,lower] %gen") { text throws(ConfigError) in
            guard text == "src,lower" else { throw ConfigError(nil, "bad sample \(text)") }
            return SampleExpression(fetch: .source, converters: [.lower])
        }
        // `%{+Q}o` prints nothing and sets the flags after it; the spaces around it make one separator.
        #expect(spec.nodes == [
            .literal("100%"), .separator, .variable("ci", .quote), .separator, .variable("cp", []), .separator,
            .sample(SampleExpression(fetch: .source, converters: [.lower]), [.quote, .escape]), .separator,
            .variable("gen", .quote),
        ])
        #expect(spec.source == "100%%  %{+Q}o %ci %{-Q}cp %{+Q,+E}[src,lower] %gen")
    }

    @Test func parserRefusesUnknownVariablesAndStrayPercents() {
        #expect(throws: ConfigError.self) { try LogFormatSpec(parsing: "%ci %nosuch") }
        #expect(throws: ConfigError.self) { try LogFormatSpec(parsing: "50% off") }
        #expect(throws: ConfigError.self) { try LogFormatSpec(parsing: "%[src") }
        #expect(throws: ConfigError.self) { try LogFormatSpec(parsing: "%{+Q}") }
        #expect(throws: ConfigError.self) { try LogFormatSpec(parsing: "%[src]") }  // no sample parser given
        #expect(throws: ConfigError.self) { try LogFormatSpec(parsing: "ends with %") }
    }

    // MARK: HAProxy's formats

    @Test func httplogIsByteIdenticalToTheSessionsLine() throws {
        let g = try Self.generation()
        let formatter = LogFormatter(.httpLog)
        var r = Self.httpRecord(g)
        #expect(formatter.format(r) == Self.sessionHTTPLine(r))
        #expect(formatter.format(r) == "127.0.0.1:35280 [\(logDate(Self.date))] web web/origin 2/0/1/5/9 200 217 - - ---- 3/2/1/1/0 0/0 \"GET /a?b=1 HTTP/1.1\"")
        // A connect failure with a redispatch, as HAProxy writes it.
        r.connect = -1
        r.response = -1
        r.status = 503
        r.retries = 3
        r.redispatched = true
        r.termination = TerminationState(cause: UInt8(ascii: "S"), phase: UInt8(ascii: "C"))
        #expect(formatter.format(r) == Self.sessionHTTPLine(r))
        #expect(formatter.format(r)!.contains(" 2/0/-1/-1/9 503 217 - - SC-- 3/2/1/1/+3 0/0 "))
        // No client address (a unix socket).
        r.client = nil
        #expect(formatter.format(r) == Self.sessionHTTPLine(r))
    }

    @Test func httplogOfABadRequestNamesTheFrontendAsHAProxyDoes() throws {
        let g = try Self.generation()
        var r = LogRecord(mode: .http, frontend: g.frontends["web"]!, generation: 7, acceptDate: Self.date)
        r.client = SocketEndpoint(address: .v4(0x7f00_0001), port: 35292)
        r.active = 0
        r.status = 400
        r.termination = TerminationState(cause: UInt8(ascii: "P"), phase: UInt8(ascii: "R"))
        r.activeConnections = 1
        r.frontendConnections = 1
        r.requestLine = "<BADREQ>"
        // HAProxy 2.6: `fh fh/<NOSRV> -1/-1/-1/-1/0 400 0 - - PR-- 1/1/0/0/0 0/0 "<BADREQ>"`.
        #expect(LogFormatter(.httpLog).format(r) == "127.0.0.1:35292 [\(logDate(Self.date))] web web/<NOSRV> -1/-1/-1/-1/0 400 0 - - PR-- 1/1/0/0/0 0/0 \"<BADREQ>\"")
    }

    @Test func tcplogIsByteIdenticalToTheSessionsLine() throws {
        let g = try Self.generation()
        var r = LogRecord(mode: .tcp, frontend: g.frontends["tin"]!, generation: 7, acceptDate: Self.date)
        r.backend = g.backends["tout"]
        r.server = g.backends["tout"]!.servers[0]
        r.client = SocketEndpoint(address: .v4(0x7f00_0001), port: 43000)
        r.queue = 1
        r.connect = -1
        r.total = 0
        r.termination = TerminationState(cause: UInt8(ascii: "S"), phase: UInt8(ascii: "C"))
        r.activeConnections = 1
        r.frontendConnections = 1
        let line = LogFormatter(.tcpLog).format(r)
        #expect(line == Self.sessionTCPLine(r))
        // HAProxy 2.6: `127.0.0.1:43000 [25/Nov/2026:17:13:35.272] ft tb/t1 1/-1/0 0 SC 1/1/0/0/0 0/0`.
        #expect(line == "127.0.0.1:43000 [\(logDate(Self.date))] tin tout/t1 1/-1/0 0 SC 1/1/0/0/0 0/0")
        r.backend = nil
        r.server = nil
        #expect(LogFormatter(.tcpLog).format(r) == Self.sessionTCPLine(r))
    }

    @Test func httplogCLFQuotesStringsAndListsCaptures() throws {
        let g = try Self.generation()
        var r = Self.httpRecord(g)
        r.requestLine = "GET /c HTTP/1.1"
        r.status = 503
        r.connect = -1
        r.response = -1
        let captures = Array("{127.0.0.1:18091|Mozilla #22x}".utf8)
        let line = captures.withUnsafeBytes { bytes -> String? in
            r.requestCaptures = bytes
            return LogFormatter(.httpLogCLF).format(r)
        }
        // HAProxy 2.6 for the same request (`option httplog clf`, two captured headers):
        // 127.0.0.1 - - [25/Nov/2026:17:13:35 +0000] "GET /c HTTP/1.1" 503 217 "" "" 50846 262 "fc" "nob" "s1"
        //   0 0 -1 -1 0 SC-- 1 1 0 0 0 0 0 "" "" "127.0.0.1:18091" "Mozilla #22x" ⏎ (a trailing space)
        #expect(line == "127.0.0.1 - - [\(LogFormatter.zonedDate(Self.date, gmt: true))] \"GET /c HTTP/1.1\" 503 217 \"\" \"\" 35280 250 \"web\" \"web\" \"origin\" 2 0 -1 -1 9 ---- 3 2 1 1 0 0 0 \"\" \"\" \"127.0.0.1:18091\" \"Mozilla #22x\" ")
    }

    // MARK: variables, flags and separators

    @Test func separatorsCollapseAndEmptyCapturesLeaveNoDoubleSpace() throws {
        let g = try Self.generation()
        let r = Self.httpRecord(g)
        #expect(LogFormatter(try LogFormatSpec(parsing: "  %ci   %hr %hs %ST  ")).format(r) == "127.0.0.1 200 ")
        #expect(LogFormatter(try LogFormatSpec(parsing: "%hr%hs x")).format(r) == "x")
        #expect(LogFormatter(try LogFormatSpec(parsing: "a  b")).format(r) == "a b")
    }

    @Test func requestLineVariablesAndGeneration() throws {
        let g = try Self.generation()
        var r = Self.httpRecord(g)
        r.requestLine = "GET /p/q?x=1 HTTP/1.1"
        let spec = try LogFormatSpec(parsing: "%{+Q}r %{+Q}HM %HU %HP %HQ %HV gen=%gen %{+Q}b %{+Q,+E}s %Tq %Td %Th %Ti %fi:%fp %si:%sp") { _ throws(ConfigError) in
            SampleExpression(fetch: .source)
        }
        // HAProxy 2.6: "GET /p/q?x=1 HTTP/1.1" "GET" /p/q?x=1 /p/q ?x=1 HTTP/1.1 …
        #expect(LogFormatter(spec).format(r) == "\"GET /p/q?x=1 HTTP/1.1\" \"GET\" /p/q?x=1 /p/q ?x=1 HTTP/1.1 gen=7 \"web\" \"origin\" 2 1 0 0 127.0.0.1:18090 127.0.0.1:8080")
        r.server = nil
        r.requestLine = "GET http://example.test/abs/path?q HTTP/1.0"
        #expect(LogFormatter(try LogFormatSpec(parsing: "%HP %HQ %HV %{+Q,+E}s %s %si")).format(r) == "/abs/path ?q HTTP/1.0 \"<NOSRV>\" <NOSRV> -")
    }

    @Test func samplesReadTheConnectionAndTheRequestLine() throws {
        let g = try Self.generation()
        let r = Self.httpRecord(g)
        let fetches: [String: SampleFetch] = ["src": .source, "src_port": .sourcePort, "dst_port": .destinationPort,
                                              "method": .method, "path": .path, "query": .query, "req.ver": .requestVersion,
                                              "status": .status, "hdr(host)": .header("host", occurrence: -1)]
        let spec = try LogFormatSpec(parsing: "%[src] %[src_port] %[dst_port] %[method] %[path] %[query] %[req.ver] %[status] %[hdr(host)] %{+Q}[hdr(host)]") { text throws(ConfigError) in
            guard let f = fetches[text] else { throw ConfigError(nil, text) }
            return SampleExpression(fetch: f)
        }
        #expect(LogFormatter(spec).format(r) == "127.0.0.1 35280 18090 GET /a b=1 1.1 200 - \"\"")
        let mandatory = try LogFormatSpec(parsing: "%ci %{+M}[hdr(host)]") { _ throws(ConfigError) in SampleExpression(fetch: .header("host", occurrence: -1)) }
        #expect(LogFormatter(mandatory).format(r) == nil)
    }

    @Test func hexAndDates() throws {
        let g = try Self.generation()
        let r = Self.httpRecord(g)
        #expect(LogFormatter(try LogFormatSpec(parsing: "%{+X}ci:%{+X}cp %Ts %ms")).format(r) == "7F000001:89D0 1795626815 250")
        let gmt = LogFormatter.zonedDate(Self.date, gmt: true)
        #expect(gmt.hasSuffix(" +0000"))
        #expect(LogFormatter(try LogFormatSpec(parsing: "[%trg] [%T]")).format(r) == "[\(gmt)] [\(gmt)]")
        #expect(LogFormatter(try LogFormatSpec(parsing: "%pid")).format(r) == "\(getpid())")
    }

    @Test func appletsAndLocalAddressNeeds() throws {
        let g = try Self.generation()
        var r = LogRecord(mode: .http, frontend: g.frontends["web"]!, generation: 7, acceptDate: Self.date)
        r.applet = "<PROMEX>"
        #expect(LogFormatter(try LogFormatSpec(parsing: "%b/%s")).format(r) == "web/<PROMEX>")
        #expect(!LogFormatter(.httpLog).needsLocalAddress)
        #expect(LogFormatter(try LogFormatSpec(parsing: "%fi:%fp")).needsLocalAddress)
    }

    @Test func logasapMarksUnfinishedFigures() throws {
        let g = try Self.generation()
        var r = Self.httpRecord(g)
        r.early = true
        #expect(LogFormatter(try LogFormatSpec(parsing: "%Ta %Tt %B %U")).format(r) == "+9 +9 +217 78")
    }

    // MARK: log-format-sd and option logasap through the plan

    /// A unix datagram socket bound in a temporary directory, and a `log` target to it.
    static func datagramSink(format: LogTarget.Format) throws -> (fd: Int32, path: String, target: LogTarget) {
        let path = "/tmp/strata-log-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let fd = try #require(TestSocket.bindUnix(path, type: Int32(SOCK_DGRAM.rawValue)))
        TestSocket.setTimeout(fd, seconds: 2)
        var target = LogTarget(location: SourceLocation(file: "t", line: 1), destination: .unixDatagram(path: path), facility: 16)
        target.format = format
        return (fd, path, target)
    }

    static func receive(_ fd: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : nil
    }

    @Test func structuredDataGoesWhereRFC5424PutsIt() throws {
        let g = try Self.generation()
        var proxy = g.frontends["web"]!.proxy
        proxy.http.httpLog = true
        proxy.log.structuredDataFormat = try LogFormatSpec(parsing: "[strata@32473 gen=\"%gen\" fe=\"%{+E}f\"]")
        let plan = LogFormatPlan(proxy)
        let r = Self.httpRecord(g)
        let sd = "[strata@32473 gen=\"7\" fe=\"web\"]"
        #expect(plan.structuredData?.format(r) == sd)

        let rfc5424 = try Self.datagramSink(format: .rfc5424)
        let rfc3164 = try Self.datagramSink(format: .rfc3164)
        defer {
            close(rfc5424.fd); close(rfc3164.fd)
            unlink(rfc5424.path); unlink(rfc3164.path)
        }
        let sinks = LogSinks([rfc5424.target, rfc3164.target])
        plan.emit(r, to: sinks)
        // `<134>1 TIMESTAMP HOST strata PID - [sd] message`: the message id, then the structured data.
        let line = try #require(Self.receive(rfc5424.fd))
        let words = line.split(separator: " ", maxSplits: 7, omittingEmptySubsequences: false).map(String.init)
        #expect(words.count == 8)
        #expect(words[0] == "<134>1")
        #expect(words[3] == "strata" && words[4] == String(getpid()) && words[5] == "-")
        #expect(line.contains(" - \(sd) 127.0.0.1:35280 ["), "\(line)")
        #expect(line.hasSuffix(Self.sessionHTTPLine(r)))
        // RFC 3164 has no place for it.
        let old = try #require(Self.receive(rfc3164.fd))
        #expect(!old.contains("strata@32473"))
        #expect(old.hasSuffix(": " + Self.sessionHTTPLine(r)))

        // Without log-format-sd: `-`.
        proxy.log.structuredDataFormat = nil
        LogFormatPlan(proxy).emit(r, to: sinks)
        let plain = try #require(Self.receive(rfc5424.fd))
        #expect(plain.contains(" strata \(getpid()) - - 127.0.0.1:35280 ["), "\(plain)")
        _ = Self.receive(rfc3164.fd)
        // A connection error line carries it too.
        proxy.log.structuredDataFormat = try LogFormatSpec(parsing: "[e@1 x=\"%ci\"]")
        LogFormatPlan(proxy).emitConnectionError(r, to: sinks)
        #expect(try #require(Self.receive(rfc5424.fd)).contains(" - [e@1 x=\"127.0.0.1\"] "))
        #expect(LogSinks.header(rfc5424.target, level: .info, structuredData: "").hasSuffix(" - - "))
    }

    @Test func logasapSendsOneEarlyLineAndNothingAtTheEnd() throws {
        let g = try Self.generation()
        var proxy = g.frontends["tin"]!.proxy
        proxy.log.format = .tcplog
        let sink = try Self.datagramSink(format: .raw)
        defer { close(sink.fd); unlink(sink.path) }
        let sinks = LogSinks([sink.target])
        var r = LogRecord(mode: .tcp, frontend: g.frontends["tin"]!, generation: 7, acceptDate: Self.date)
        r.backend = g.backends["tout"]
        r.server = g.backends["tout"]!.servers[0]
        r.client = SocketEndpoint(address: .v4(0x7f00_0001), port: 40000)
        r.queue = 0; r.connect = 1; r.total = 1; r.active = 1

        // Without logasap: no early line, the caller logs at the end.
        #expect(LogFormatPlan(proxy).emitEarly(r, to: sinks) == false)
        #expect(Self.receive(sink.fd) == nil)

        proxy.log.logAsap = true
        let plan = LogFormatPlan(proxy)
        #expect(plan.emitEarly(r, to: sinks))
        let early = try #require(Self.receive(sink.fd))
        #expect(early.hasSuffix("tin tout/t1 0/1/+1 +0 -- 0/0/0/0/0 0/0"), "\(early)")
        // dontlog-normal still decides for the early line (it is not an error yet).
        proxy.log.dontLogNormal = true
        #expect(LogFormatPlan(proxy).emitEarly(r, to: sinks))
        #expect(Self.receive(sink.fd) == nil)
    }

    // MARK: the plan: which format, whether to log, at which level

    @Test func planChoosesTheEffectiveFormat() throws {
        let here = SourceLocation(file: "t", line: 1)
        var p = Proxy(name: "p", kind: .frontend, location: here, id: 1)
        #expect(LogFormatPlan.effectiveFormat(p) == nil)
        p.log.format = .tcplog
        #expect(LogFormatPlan.effectiveFormat(p) == .tcpLog)
        p.mode = .http
        p.http.httpLog = true
        #expect(LogFormatPlan.effectiveFormat(p) == .httpLog)
        p.http.httpLogCLF = true
        #expect(LogFormatPlan.effectiveFormat(p) == .httpLogCLF)
        let custom = try LogFormatSpec(parsing: "%ci %gen")
        p.log.format = .custom(custom)
        #expect(LogFormatPlan.effectiveFormat(p) == custom)
    }

    @Test func planHonoursDontlognullDontlogNormalAndSeparateErrors() throws {
        let g = try Self.generation()
        var proxy = g.frontends["tin"]!.proxy
        proxy.log.format = .tcplog
        proxy.log.dontLogNull = true
        proxy.log.separateErrors = true
        let plan = LogFormatPlan(proxy)
        var r = LogRecord(mode: .tcp, frontend: g.frontends["tin"]!, generation: 7, acceptDate: Self.date)
        #expect(plan.render(r) == nil)  // nothing carried, ended normally
        r.bytesIn = 10
        #expect(plan.render(r)?.level == .info)
        r.termination = TerminationState(cause: UInt8(ascii: "S"), phase: UInt8(ascii: "D"))
        #expect(plan.render(r)?.level == .err)
        proxy.log.dontLogNormal = true
        let quiet = LogFormatPlan(proxy)
        #expect(quiet.render(r) != nil)
        r.termination = TerminationState()
        #expect(quiet.render(r) == nil)
        // HTTP: a 5xx is an error, a locally processed answer (`L`) is not.
        var h = Self.httpRecord(g)
        h.status = 502
        #expect(h.isError)
        h.status = 200
        h.termination = TerminationState(cause: UInt8(ascii: "L"), phase: UInt8(ascii: "R"))
        #expect(!h.isError)
    }
}
