import ConfigModel
import Glibc
import StrataTestSupport
import Testing
@testable import Engine
@testable import HTTP1

/// A request and its response through every step a session takes, repeated: the steps must give
/// the same bytes every time (and, checked under heaptrack with STRATA_RULES_ITERATIONS set,
/// allocate nothing after the first round).
@Suite struct HTTPRulesSteadyStateTests {
    @Test func repeatedRequestsGiveTheSameBytes() throws {
        let iterations = getenv("STRATA_RULES_ITERATIONS").flatMap { Int(String(cString: $0)) } ?? 20
        var fe = httpProxy("fe", kind: .frontend) {
            $0.acls = []
            $0.requestRules = [
                requestRule(.setHeader(name: "X-Host", value: format(sample(.header("host", occurrence: -1), .lower))),
                            condition([term(criterion(.path, .regex, strings("^/api/")))])),
                requestRule(.replaceValue(name: "X-Forwarded-For", regex: "^10\\.(.*)$", replacement: text("ten.\\1"))),
                requestRule(.setPath(format(.literal("/v2"), sample(.path)))),
                requestRule(.deny(status: 403), condition([term(criterion(.header("x-block", occurrence: nil), .found, .none))])),
            ]
            $0.backendRules = [BackendSwitchRule(location: rulesLocation, backend: "be",
                                                 condition: condition([term(criterion(.source, .ip, .networks([IPNetwork(address: .v4(0xC000_0200), prefixLength: 24)])))]))]
            $0.forwardFor = ForwardedHeader(header: "X-Forwarded-For")
            $0.captures = [HeaderCapture(name: "Host", length: 16)]
            $0.responseRules = [responseRule(.setHeader(name: "X-Status", value: format(sample(.status))))]
        }
        fe.defaultBackend = "be"
        var beProxy = httpProxy("be", kind: .backend) {
            var cookie = CookiePersistence(name: "SRV", mode: .insert)
            cookie.indirect = true
            $0.cookie = cookie
            $0.requestRules = [requestRule(.addHeader(name: "X-Backend", value: format(.variable("b"))))]
        }
        beProxy.servers = [server("s1", cookie: "s1"), server("s2", cookie: "s2")]
        beProxy.balance = .uri(whole: false)
        let frontend = try HTTPRuleSet(fe)
        let backend = try HTTPRuleSet(beProxy)
        let scratch = HTTPRuleScratch(capacity: 8192)
        let connection = HTTPConnectionInfo(client: testClient, local: testLocal)
        let request = h1Message("GET /api/items?id=7 HTTP/1.1", "Host: Shop.Example", "X-Forwarded-For: 10.0.0.1, 1.2.3.4",
                                "Cookie: a=1; SRV=s2", "Connection: keep-alive")
        let response = h1Message("HTTP/1.1 200 OK", "Content-Length: 0", "Set-Cookie: SRV=x")
        var requestParser = HTTPRequestParser()
        var responseParser = HTTPResponseParser()
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 8192, alignment: 1)
        defer { out.deallocate() }
        var first: (UInt64, Int?, [UInt8], [UInt8])?

        for _ in 0..<iterations {
            var key: UInt64 = 0
            var chosen: Int?
            var requestLength = 0
            var responseLength = 0
            var same = true
            request.withUnsafeBytes { input in
                guard case .headersComplete = requestParser.parse(input) else { return }
                let decision = frontend.processRequest(requestParser.head, input: input, connection: connection, scratch: scratch) { _ in backend }
                guard case .forward = decision else { return }
                chosen = backend.persistentServer(requestParser.head, input: input, scratch: scratch) { _ in true }
                key = backend.balanceKey(for: .uri(whole: false), requestParser.head, input: input, connection: connection, scratch: scratch) ?? 0
                var writer = HTTPHeadWriter(into: out)
                frontend.writeRequestHead(into: &writer, requestParser.head, input: input, connection: connection,
                                          scratch: scratch, backend: backend, connectionHeader: .keepAlive)
                requestLength = writer.count
                if let first { same = same && first.2.count == writer.count && memcmp(first.2, out.baseAddress!, writer.count) == 0 }
                _ = requestParser.parse(UnsafeRawBufferPointer(rebasing: input[input.count...]))
            }
            let requestBytes = first == nil ? Array(UnsafeRawBufferPointer(rebasing: out[0..<requestLength])) : []
            response.withUnsafeBytes { input in
                guard case .headersComplete = responseParser.parse(input, requestMethod: .get) else { return }
                _ = frontend.processResponse(responseParser.head, input: input, connection: connection, scratch: scratch,
                                             backend: backend, server: 0)
                var writer = HTTPHeadWriter(into: out)
                frontend.writeResponseHead(into: &writer, responseParser.head, input: input, scratch: scratch,
                                           connectionHeader: .keepAlive, clientVersion: .http11)
                responseLength = writer.count
                if let first { same = same && first.3.count == writer.count && memcmp(first.3, out.baseAddress!, writer.count) == 0 }
                _ = responseParser.parse(UnsafeRawBufferPointer(rebasing: input[input.count...]), requestMethod: .get)
            }
            if first == nil {
                first = (key, chosen, requestBytes, Array(UnsafeRawBufferPointer(rebasing: out[0..<responseLength])))
            } else {
                #expect(same && key == first!.0 && chosen == first!.1)
            }
        }
        let (_, chosen, requestBytes, responseBytes) = try #require(first)
        #expect(chosen == 1)
        #expect(String(decoding: requestBytes, as: UTF8.self) ==
            "GET /v2/api/items?id=7 HTTP/1.1\r\nHost: Shop.Example\r\nX-Forwarded-For: ten.0.0.1, 1.2.3.4\r\nCookie: a=1\r\n"
            + "X-Host: shop.example\r\nX-Backend: be\r\nX-Forwarded-For: 192.0.2.10\r\n\r\n")
        #expect(String(decoding: responseBytes, as: UTF8.self) ==
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Status: 200\r\nSet-Cookie: SRV=s1; path=/\r\n\r\n")
        #expect(String(decoding: scratch.capturedRequestHeaders, as: UTF8.self) == "{Shop.Example}")
    }
}
