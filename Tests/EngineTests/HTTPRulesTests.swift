import ConfigModel
import StrataTestSupport
import Testing
@testable import Engine
@testable import HTTP1

// Helpers shared by the HTTPRules*Tests files, and the local answers' tests.

let rulesLocation = ConfigModel.SourceLocation(file: "rules.cfg", line: 1)

func criterion(_ fetch: SampleFetch, _ match: MatchMethod, _ patterns: ACLPatterns, ignoreCase: Bool = false,
               converters: [SampleConverter] = []) -> ACLCriterion {
    ACLCriterion(location: rulesLocation, sample: SampleExpression(fetch: fetch, converters: converters), match: match,
                 ignoreCase: ignoreCase, patterns: patterns)
}

func strings(_ s: String...) -> ACLPatterns { .strings(s) }

/// `if` (or `unless`) with groups ORed and terms ANDed.
func condition(_ alternatives: [ConditionTerm]..., unless: Bool = false) -> Condition {
    Condition(inverted: unless, alternatives: alternatives)
}

func term(_ criteria: ACLCriterion..., negated: Bool = false, name: String = "acl") -> ConditionTerm {
    ConditionTerm(name: name, criteria: criteria, negated: negated)
}

/// A format string of literal text.
func text(_ s: String) -> FormatString { FormatString(parts: [.literal(s)], source: s) }

/// A format string from parts.
func format(_ parts: FormatString.Part...) -> FormatString { FormatString(parts: parts, source: "") }

func sample(_ fetch: SampleFetch, _ converters: SampleConverter...) -> FormatString.Part {
    .sample(SampleExpression(fetch: fetch, converters: converters))
}

func requestRule(_ action: HTTPRequestAction, _ condition: Condition? = nil) -> HTTPRequestRule {
    HTTPRequestRule(location: rulesLocation, action: action, condition: condition)
}

func responseRule(_ action: HTTPResponseAction, _ condition: Condition? = nil) -> HTTPResponseRule {
    HTTPResponseRule(location: rulesLocation, action: action, condition: condition)
}

func httpProxy(_ name: String = "fe", kind: ProxyKind = .listen, _ configure: (inout HTTPSettings) -> Void = { _ in }) -> Proxy {
    var proxy = Proxy(name: name, kind: kind, location: rulesLocation, id: 1)
    proxy.mode = .http
    configure(&proxy.http)
    return proxy
}

func server(_ name: String, cookie: String?) -> Server {
    var options = ServerOptions()
    options.cookie = cookie
    return Server(name: name, location: rulesLocation, id: 1, host: "127.0.0.1", address: .v4(0x7F00_0001),
                  port: 8080, options: options)
}

let testClient = SocketEndpoint(address: IPAddress("192.0.2.10")!, port: 51000)
let testLocal = SocketEndpoint(address: IPAddress("198.51.100.7")!, port: 80)

extension HTTPLocalResponse {
    /// The whole answer as text (head as `writeHead` writes it, then the body).
    func rendered(close: Bool = false, clientVersion: HTTPVersion = .http11) -> String {
        var out = [UInt8](repeating: 0, count: 65536)
        let n = out.withUnsafeMutableBytes { buffer -> Int in
            var writer = HTTPHeadWriter(into: buffer)
            writeHead(into: &writer, close: close, clientVersion: clientVersion)
            writer.write(body)
            return writer.count
        }
        return String(decoding: out[..<n], as: UTF8.self)
    }
}

/// What a request became: the decision, and the head written to the server for `.forward`.
struct RulesOutcome {
    var decision: HTTPRequestDecision
    var forwarded: String?
    /// The answer for `.respond`.
    var answer: String?
    var backend: String? {
        if case .forward(let b) = decision { return b }
        return nil
    }
    var status: Int? {
        if case .respond(let r) = decision { return r.status }
        return nil
    }
    var isForwarded: Bool {
        if case .forward = decision { return true }
        return false
    }
}

/// A frontend (and its backends) with a scratch, processing requests given as lines.
final class RulesHarness {
    let frontend: HTTPRuleSet
    var backends: [String: HTTPRuleSet] = [:]
    var defaultBackend: HTTPRuleSet?
    let scratch = HTTPRuleScratch(capacity: 8192)
    var connection = HTTPConnectionInfo(client: testClient, local: testLocal)
    var connectionHeader = HTTPConnectionHeader.keepAlive
    /// Called between processRequest and writeRequestHead (persistence, balance keys).
    var beforeWrite: ((HTTPRuleSet, HTTPHead, UnsafeRawBufferPointer) -> Void)?
    /// The backend the last request went to.
    private(set) var lastBackend: HTTPRuleSet?

    init(_ proxy: Proxy, backends: [Proxy] = []) throws {
        frontend = try HTTPRuleSet(proxy)
        for b in backends { self.backends[b.name] = try HTTPRuleSet(b) }
        if proxy.kind == .listen { defaultBackend = frontend }
        if let name = proxy.defaultBackend { defaultBackend = self.backends[name] }
    }

    convenience init(_ configure: (inout HTTPSettings) -> Void) throws {
        try self.init(httpProxy("fe", configure))
    }

    func run(_ lines: String...) -> RulesOutcome {
        run(h1Message(lines.joined(separator: "\r\n")))
    }

    func run(_ bytes: [UInt8]) -> RulesOutcome {
        var parser = HTTPRequestParser()
        return bytes.withUnsafeBytes { input -> RulesOutcome in
            guard case .headersComplete = parser.parse(input) else {
                Issue.record("request did not parse")
                return RulesOutcome(decision: .useService("unparsed"))
            }
            var chosen: HTTPRuleSet?
            let decision = frontend.processRequest(parser.head, input: input, connection: connection, scratch: scratch) { name in
                chosen = name.map { self.backends[$0] } ?? self.defaultBackend
                return chosen
            }
            lastBackend = chosen
            switch decision {
            case .respond(let r), .tarpit(let r):
                return RulesOutcome(decision: decision, answer: r.rendered(close: r.closesConnection))
            case .useService, .silentDrop, .reject:
                return RulesOutcome(decision: decision)
            case .forward:
                beforeWrite?(chosen!, parser.head, input)
                var out = [UInt8](repeating: 0, count: 8192)
                let written = out.withUnsafeMutableBytes { buffer -> String? in
                    var writer = HTTPHeadWriter(into: buffer)
                    frontend.writeRequestHead(into: &writer, parser.head, input: input, connection: connection,
                                              scratch: scratch, backend: chosen, connectionHeader: connectionHeader)
                    return writer.overflowed ? nil : String(decoding: writer.written, as: UTF8.self)
                }
                return RulesOutcome(decision: decision, forwarded: written)
            }
        }
    }

    /// Processes a response (after a request ran) and writes it for the client.
    func respond(_ lines: String..., server: Int? = nil, clientVersion: HTTPVersion = .http11,
                 connectionHeader: HTTPConnectionHeader = .keepAlive) -> (HTTPResponseDecision, String?) {
        var parser = HTTPResponseParser()
        let bytes = h1Message(lines.joined(separator: "\r\n"))
        return bytes.withUnsafeBytes { input -> (HTTPResponseDecision, String?) in
            guard case .headersComplete = parser.parse(input, requestMethod: .get) else {
                Issue.record("response did not parse")
                return (.forward, nil)
            }
            let decision = frontend.processResponse(parser.head, input: input, connection: connection, scratch: scratch,
                                                    backend: lastBackend, server: server)
            guard case .forward = decision else { return (decision, nil) }
            var out = [UInt8](repeating: 0, count: 8192)
            let written = out.withUnsafeMutableBytes { buffer -> String? in
                var writer = HTTPHeadWriter(into: buffer)
                frontend.writeResponseHead(into: &writer, parser.head, input: input, scratch: scratch,
                                           connectionHeader: connectionHeader, clientVersion: clientVersion)
                return writer.overflowed ? nil : String(decoding: writer.written, as: UTF8.self)
            }
            return (decision, written)
        }
    }

    /// Whether `condition` holds for the request (through `http-request deny if …`).
    static func matches(_ condition: Condition, _ lines: String..., connection: HTTPConnectionInfo? = nil) throws -> Bool {
        let harness = try RulesHarness { $0.requestRules = [requestRule(.deny(status: 403), condition)] }
        if let connection { harness.connection = connection }
        return harness.run(h1Message(lines.joined(separator: "\r\n"))).status == 403
    }

    /// The value `set-header X-Out <format>` gives for the request ("<none>" when the header was not written).
    static func rendered(_ format: FormatString, _ lines: String..., connection: HTTPConnectionInfo? = nil) throws -> String {
        let harness = try RulesHarness { $0.requestRules = [requestRule(.setHeader(name: "X-Out", value: format))] }
        if let connection { harness.connection = connection }
        let outcome = harness.run(h1Message(lines.joined(separator: "\r\n")))
        guard let head = outcome.forwarded else { return "<not forwarded>" }
        for line in head.split(separator: "\r\n", omittingEmptySubsequences: false) where line.hasPrefix("X-Out: ") {
            return String(line.dropFirst(7))
        }
        for line in head.split(separator: "\r\n", omittingEmptySubsequences: false) where line == "X-Out:" {
            return ""
        }
        return "<none>"
    }
}

@Suite struct HTTPRulesLocalResponseTests {
    @Test func errorPagesAreHAProxys() {
        #expect(HTTPLocalResponse.errorPage(503).rendered() ==
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 107\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n\r\n"
            + "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n")
        #expect(HTTPLocalResponse.errorPage(403).rendered() ==
            "HTTP/1.1 403 Forbidden\r\ncontent-length: 93\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n\r\n"
            + "<html><body><h1>403 Forbidden</h1>\nRequest forbidden by administrative rules.\n</body></html>\n")
        let bad = HTTPLocalResponse.errorPage(400)
        #expect(bad.closesConnection)
        #expect(bad.rendered(close: true) ==
            "HTTP/1.1 400 Bad request\r\ncontent-length: 90\r\ncache-control: no-cache\r\nconnection: close\r\ncontent-type: text/html\r\n\r\n"
            + "<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n")
        #expect(HTTPLocalResponse.errorPage(408).rendered().contains("connection: close\r\n"))
        #expect(HTTPLocalResponse.errorPage(504).rendered(close: true) ==
            "HTTP/1.1 504 Gateway Time-out\r\ncontent-length: 92\r\ncache-control: no-cache\r\ncontent-type: text/html\r\nconnection: close\r\n\r\n"
            + "<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n")
        #expect(HTTPLocalResponse.errorPage(502).rendered(clientVersion: .http10).contains("connection: keep-alive\r\n\r\n"))
    }

    @Test func everyPageHasItsLengthAndReason() {
        let reasons = [400: "Bad request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
                       408: "Request Time-out", 410: "Gone", 425: "Too Early", 429: "Too Many Requests",
                       500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
                       503: "Service Unavailable", 504: "Gateway Time-out"]
        for (status, reason) in reasons {
            let page = HTTPLocalResponse.errorPage(status)
            #expect(page.status == status)
            let head = String(decoding: page.head, as: UTF8.self)
            #expect(head.hasPrefix("HTTP/1.1 \(status) \(reason)\r\ncontent-length: \(page.body.count)\r\ncache-control: no-cache\r\n"))
            #expect(head.hasSuffix("content-type: text/html\r\n"))
            #expect(String(decoding: page.body, as: UTF8.self).hasPrefix("<html><body><h1>\(status) "))
            #expect(page.closesConnection == (status == 400 || status == 408))
        }
        // A status without a page gets the 500 page.
        #expect(HTTPLocalResponse.errorPage(418).status == 500)
    }

    @Test func errorFilesReplacePages() throws {
        let raw = Array("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\ndown".utf8)
        let backendRaw = Array("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\n\r\nbe".utf8)
        let fe = try HTTPRuleSet(httpProxy { $0.errorFiles = [503: raw] })
        let be = try HTTPRuleSet(httpProxy("be", kind: .backend) { $0.errorFiles = [503: backendRaw] })
        let page = fe.errorResponse(503)
        #expect(page.isRawMessage && page.closesConnection)
        #expect(page.rendered() == String(decoding: raw, as: UTF8.self))
        #expect(fe.errorResponse(503, backend: be).rendered() == String(decoding: backendRaw, as: UTF8.self))
        #expect(fe.errorResponse(404).rendered().hasPrefix("HTTP/1.1 404 Not Found\r\n"))
    }

    @Test func denyAnswersTheConfiguredPage() throws {
        let harness = try RulesHarness {
            $0.requestRules = [requestRule(.deny(status: 403), condition([term(criterion(.path, .prefix, strings("/admin")))])),
                               requestRule(.deny(status: 429), condition([term(criterion(.path, .exact, strings("/slow")))]))]
        }
        let denied = harness.run("GET /admin/x HTTP/1.1", "Host: a")
        #expect(denied.answer == HTTPLocalResponse.errorPage(403).rendered())
        #expect(harness.run("GET /slow HTTP/1.1", "Host: a").answer?.hasPrefix("HTTP/1.1 429 Too Many Requests\r\n") == true)
        #expect(harness.run("GET /ok HTTP/1.1", "Host: a").isForwarded)
    }

    @Test func returnBuildsTheAnswer() throws {
        let harness = try RulesHarness {
            $0.requestRules = [
                requestRule(.returnResponse(status: 200, contentType: "text/plain",
                                            body: .string(format(.literal("path="), sample(.path))),
                                            headers: [.init(name: "X-Served-By", value: text("strata")),
                                                      .init(name: "X-Empty", value: format(sample(.header("x-none", occurrence: -1))))]),
                            condition([term(criterion(.path, .prefix, strings("/hello")))])),
                requestRule(.returnResponse(status: 204, contentType: "text/plain", body: .none, headers: []),
                            condition([term(criterion(.path, .exact, strings("/empty")))])),
                requestRule(.returnResponse(status: 404, contentType: "text/html", body: .file(path: "/x", contents: Array("<p>no</p>".utf8)), headers: []),
                            condition([term(criterion(.path, .exact, strings("/file")))])),
                requestRule(.returnResponse(status: 503, contentType: nil,
                                            body: .rawMessage(path: "/e", contents: Array("HTTP/1.1 503 Down\r\ncontent-length: 0\r\n\r\n".utf8)), headers: []),
                            condition([term(criterion(.path, .exact, strings("/raw")))])),
            ]
        }
        #expect(harness.run("GET /hello/you HTTP/1.1", "Host: a").answer ==
            "HTTP/1.1 200 OK\r\nx-served-by: strata\r\ncontent-length: 15\r\ncontent-type: text/plain\r\n\r\npath=/hello/you")
        #expect(harness.run("GET /empty HTTP/1.1", "Host: a").answer == "HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
        #expect(harness.run("GET /file HTTP/1.1", "Host: a").answer ==
            "HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\ncontent-type: text/html\r\n\r\n<p>no</p>")
        let raw = harness.run("GET /raw HTTP/1.1", "Host: a")
        #expect(raw.answer == "HTTP/1.1 503 Down\r\ncontent-length: 0\r\n\r\n")
        #expect(raw.status == 503)
    }
}
