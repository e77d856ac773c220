import ConfigModel
import StrataTestSupport
import Testing
@testable import Engine
@testable import HTTP1

/// HAProxy's compression rules (flt_http_comp.c) as strata's plain functions: the algorithm a
/// request's Accept-Encoding picks, and which answers are compressed.
@Suite struct HTTPCompressionRulesTests {
    func algorithm(_ algorithms: [HTTPCompression.Algorithm], _ fields: String...) -> String {
        var parser = HTTPRequestParser()
        let bytes = h1Message((["GET / HTTP/1.1", "Host: h"] + fields).joined(separator: "\r\n"))
        return bytes.withUnsafeBytes { input -> String in
            guard case .headersComplete = parser.parse(input) else { return "unparsed" }
            let chosen = HTTPCompressionRules.algorithm(parser.head, input: input, edits: HTTPHeadEdits(capacity: 1024), algorithms: algorithms)
            return chosen.map { "\($0.algorithm.rawValue)\($0.fromHeader ? "" : " (implicit)")" } ?? "none"
        }
    }

    @Test func acceptEncodingPicksByQValueThenOrder() {
        // `algo gzip deflate` is [deflate, gzip] in HAProxy's order.
        let both: [HTTPCompression.Algorithm] = [.deflate, .gzip]
        #expect(algorithm(both, "Accept-Encoding: gzip") == "gzip")
        #expect(algorithm(both, "Accept-Encoding: gzip, deflate") == "gzip")  // the first of equals
        #expect(algorithm(both, "Accept-Encoding: deflate, gzip") == "deflate")
        #expect(algorithm(both, "Accept-Encoding: gzip;q=0.5, deflate;q=0.8") == "deflate")
        #expect(algorithm(both, "Accept-Encoding: gzip;q=0.9", "Accept-Encoding: deflate;q=0.8") == "gzip")
        #expect(algorithm(both, "Accept-Encoding: GZIP ; Q=1") == "gzip")
        #expect(algorithm(both, "Accept-Encoding: *") == "deflate")
        #expect(algorithm(both, "Accept-Encoding: gzip;q=0") == "none")
        #expect(algorithm(both, "Accept-Encoding: gzip;q=0.000, br") == "none")
        #expect(algorithm(both, "Accept-Encoding: br, zstd") == "none")
        #expect(algorithm(both) == "none")
        #expect(algorithm([.rawDeflate], "Accept-Encoding: deflate") == "raw-deflate")
        // identity: any request naming nothing else.
        #expect(algorithm([.gzip, .identity], "Accept-Encoding: br") == "identity (implicit)")
        #expect(algorithm([.gzip, .identity]) == "identity (implicit)")
        #expect(algorithm([.gzip, .identity], "Accept-Encoding: identity") == "identity")
        // HAProxy's old user agents: Mozilla/4 but MSIE 6 SV1 and later.
        #expect(algorithm(both, "Accept-Encoding: gzip", "User-Agent: Mozilla/4.0 (X11; U; Linux)") == "none")
        #expect(algorithm(both, "Accept-Encoding: gzip", "User-Agent: Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 5.1)") == "gzip")
        #expect(algorithm(both, "Accept-Encoding: gzip", "User-Agent: Mozilla/5.0 (X11; Linux x86_64)") == "gzip")
    }

    @Test func qValuesReadAsHAProxyReadsThem() {
        func q(_ text: String) -> Int {
            Array(text.utf8).withUnsafeBytes { HTTPCompressionRules.qValue($0, 0..<$0.count) }
        }
        #expect(q("") == 1000)
        #expect(q(";q=1") == 1000)
        #expect(q(" ; q=0.5") == 500)
        #expect(q(";level=1;q=0.25") == 250)
        #expect(q(";q=0.001") == 1)
        #expect(q(";q=0") == 0)
        #expect(q(";q=1.5") == 1000)
        // HAProxy's reading of what is not a q-value: no digit is 1, any digit before the point counts.
        #expect(q(";q=") == 1000)
        #expect(q(";q=x") == 1000)
        #expect(q(";q=2") == 1000)
    }

    func compresses(_ status: String, _ fields: [String], method: HTTPMethod = .get, version: HTTPVersion = .http11,
                    types: [String] = [], minimumSize: Int = 0) -> Bool {
        var parser = HTTPResponseParser()
        let bytes = h1Message(([status] + fields).joined(separator: "\r\n"))
        return bytes.withUnsafeBytes { input -> Bool in
            guard case .headersComplete = parser.parse(input, requestMethod: method) else {
                Issue.record("unparsed: \(status) \(fields)")
                return false
            }
            return HTTPCompressionRules.compresses(parser.head, input: input, method: method, requestVersion: version,
                                                   types: types, minimumSize: minimumSize)
        }
    }

    @Test func answersAreCompressedByHAProxysRules() {
        let ok = "HTTP/1.1 200 OK"
        let text = ["Content-Type: text/html; charset=utf-8", "Content-Length: 500"]
        #expect(compresses(ok, text))
        #expect(compresses("HTTP/1.1 203 Non-Authoritative Information", text))
        #expect(compresses(ok, ["Content-Type: text/plain", "Transfer-Encoding: chunked"]))
        #expect(!compresses(ok, ["Content-Type: text/plain", "Transfer-Encoding: gzip, chunked"]))
        #expect(!compresses("HTTP/1.1 206 Partial Content", text))
        #expect(!compresses("HTTP/1.1 404 Not Found", text))
        #expect(!compresses("HTTP/1.0 200 OK", text))
        #expect(!compresses(ok, text, version: .http10))
        #expect(!compresses(ok, text, method: .head))
        #expect(!compresses(ok, ["Content-Type: text/plain"]))  // until close
        #expect(!compresses(ok, ["Content-Length: 0"]))
        #expect(!compresses(ok, text + ["Content-Encoding: br"]))
        #expect(!compresses(ok, text + ["Cache-Control: max-age=60, No-Transform"]))
        #expect(compresses(ok, text + ["Cache-Control: no-store"]))
        #expect(compresses(ok, text + ["ETag: W/\"a\""]))
        #expect(!compresses(ok, text + ["ETag: a"]))
        #expect(!compresses(ok, text + ["ETag: \"a\"", "ETag: \"b\""]))
        #expect(!compresses(ok, ["Content-Type: multipart/byteranges", "Content-Length: 500"]))
        // `compression type`: a prefix, parameters ignored; none without Content-Type.
        #expect(compresses(ok, text, types: ["text/html"]))
        #expect(compresses(ok, ["Content-Type: TEXT/HTML", "Content-Length: 500"], types: ["text/html"]))
        #expect(!compresses(ok, text, types: ["application/json"]))
        #expect(!compresses(ok, ["Content-Length: 500"], types: ["text/html"]))
        #expect(compresses(ok, ["Content-Length: 500"]))
        // `minsize-res`: a known length below it.
        #expect(!compresses(ok, text, minimumSize: 501))
        #expect(compresses(ok, text, minimumSize: 500))
        #expect(compresses(ok, ["Transfer-Encoding: chunked"], minimumSize: 1 << 20))
    }
}
