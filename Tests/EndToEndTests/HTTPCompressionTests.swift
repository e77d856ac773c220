import Foundation
import Glibc
import StrataTestSupport
import Testing

/// An origin with one answer per path, for the compression tests: what it sends is exactly
/// known, and it records the Accept-Encoding each request came with.
final class CompressionOrigin: @unchecked Sendable {
    let port: UInt16
    private let fd: Int32
    private let acceptEncodings = Guarded<[String]>([])

    /// 40 KB of text, and 1 MiB of it.
    static let text: [UInt8] = Array((0..<1000).map { "line \($0): the quick brown fox jumps over the lazy dog\n" }.joined().utf8)
    static let mebibyte: [UInt8] = (0..<(1 << 20)).map { (i: Int) -> UInt8 in
        let letter: Int = (i / 7 + i % 13) % 26
        return UInt8(97 + letter)
    }

    /// 1 MiB that does not compress: the compressed answer is as large as the body, so it fills
    /// strata's output buffer and waits for the client.
    static let noise: [UInt8] = {
        var state: UInt64 = 0x9E3779B97F4A7C15
        return (0..<(1 << 20)).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }()

    init() throws {
        (fd, port) = try TestSocket.listen(what: "compression origin")
        TestSocket.acceptLoop(fd, timeout: 60) { [self] c in
            Thread { [self] in self.serve(c) }.start()
            return true
        }
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    var seenAcceptEncodings: [String] { acceptEncodings.withLock { $0 } }

    private func serve(_ c: Int32) {
        defer { close(c) }
        let reader = HTTPTestReader(fd: c)
        while let head = reader.readHead() {
            let lines = head.split(separator: "\r\n").map(String.init)
            let words = (lines.first ?? "").split(separator: " ").map(String.init)
            let method = words.first ?? "GET", path = words.count > 1 ? words[1] : "/"
            let fields = HTTPTestReader.fields(lines)
            acceptEncodings.withLock { $0.append(fields["accept-encoding"] ?? "-") }
            var extra = "Content-Type: text/plain; charset=utf-8\r\n"
            var body = CompressionOrigin.text
            var chunked = false
            switch path {
            case "/text": extra += "ETag: \"v1\"\r\n"
            case "/mib": body = CompressionOrigin.mebibyte
            case "/noise": body = CompressionOrigin.noise
            case "/noise200k": body = Array(CompressionOrigin.noise.prefix(200_000))
            case "/chunked": chunked = true
            case "/notransform": extra += "Cache-Control: public, no-transform\r\n"
            case "/encoded": extra += "Content-Encoding: br\r\n"
            case "/image": extra = "Content-Type: image/png\r\n"
            case "/vary": extra += "Vary: Origin\r\n"
            case "/empty": body = []
            default: break
            }
            var answer = Array("HTTP/1.1 200 OK\r\n\(extra)".utf8)
            if chunked {
                answer += Array("Transfer-Encoding: chunked\r\n\r\n".utf8)
                // Chunks of uneven sizes, some split across writes.
                var offset = 0, size = 1
                while offset < body.count {
                    let n = min(size, body.count - offset)
                    answer += Array(String(n, radix: 16).utf8) + Array("\r\n".utf8) + body[offset..<offset + n] + Array("\r\n".utf8)
                    offset += n
                    size = size * 3 + 7
                }
                answer += Array("0\r\nx-trailer: done\r\n\r\n".utf8)
            } else {
                answer += Array("Content-Length: \(body.count)\r\n\r\n".utf8)
                if method != "HEAD" { answer += body }
            }
            guard TestSocket.sendAll(c, answer) else { return }
        }
    }
}

/// `compression`: curl decompresses the answers to the origin's exact bytes, and the answers
/// HAProxy leaves alone are left alone.
@Suite(.serialized) struct HTTPCompressionTests {
    /// One curl run: the heads it dumped (every answer's, trailers too), the bodies of `urls`.
    struct Fetched {
        var head: String
        var bodies: [[UInt8]]
        var output: String
    }

    /// The bodies are `expected`; a failure says their sizes rather than printing megabytes.
    static func check(_ fetched: Fetched, _ expected: [[UInt8]], _ what: String,
                      sourceLocation: SourceLocation = #_sourceLocation) {
        let same = fetched.bodies == expected
        #expect(same, "\(what): \(fetched.bodies.map(\.count)) bytes, \(expected.map(\.count)) expected", sourceLocation: sourceLocation)
    }

    static func curl(_ arguments: [String], urls: [String], in directory: URL) -> Fetched {
        let headFile = directory.appendingPathComponent("head-\(UUID().uuidString.prefix(6))").path
        var args = ["-s", "-D", headFile] + arguments
        var bodyFiles: [String] = []
        for url in urls {
            let file = directory.appendingPathComponent("body-\(UUID().uuidString.prefix(6))").path
            bodyFiles.append(file)
            args += ["-o", file, url]
        }
        let result = runTool("curl", args)
        let head = (try? String(contentsOfFile: headFile, encoding: .utf8)) ?? ""
        let bodies = bodyFiles.map { (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: $0)))) ?? [] }
        return Fetched(head: head.lowercased(), bodies: bodies, output: result.stdout + result.stderr)
    }

    static func config(_ port: UInt16, _ second: UInt16, _ third: UInt16, origin: UInt16) -> String {
        """
        global
            stats socket @ADMIN@ level admin
            # Small socket buffers: a slow client fills strata's output buffer early.
            tune.sndbuf.client 8192
        defaults
            mode http
            timeout connect 2s
            timeout client 10s
            timeout server 10s
        frontend gz
            bind 127.0.0.1:\(port)
            compression algo gzip
            compression type text/plain text/html
            default_backend app
        frontend both
            bind 127.0.0.1:\(second)
            compression algo gzip deflate
            default_backend app
        frontend off
            bind 127.0.0.1:\(third)
            compression algo gzip
            compression offload
            default_backend app
        backend app
            server s 127.0.0.1:\(origin)
        """
    }

    @Test func answersAreGzippedAsHAProxyWouldAndDecompressToTheServersBytes() throws {
        try TestTools.require(TestTools.hasCurl, "curl")
        let origin = try CompressionOrigin()
        let (port, second, third) = (TestSocket.freePort(), TestSocket.freePort(), TestSocket.freePort())
        let strata = try StrataProcess(config: HTTPCompressionTests.config(port, second, third, origin: origin.port))
        defer { strata.stop() }
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let dir = strata.directory
        let base = "http://127.0.0.1:\(port)"

        // Compressed: gzip, Vary, chunked without Content-Length, the strong ETag made weak;
        // curl's inflated body is the origin's. The second request reuses the connection.
        let pair = HTTPCompressionTests.curl(["--compressed", "-w", "%{num_connects}\\n"], urls: [base + "/text", base + "/vary"], in: dir)
        HTTPCompressionTests.check(pair, [CompressionOrigin.text, CompressionOrigin.text], "pair")
        #expect(pair.output.split(separator: "\n") == ["1", "0"], "keep-alive: \(pair.output)")
        let heads = pair.head.components(separatedBy: "\r\n\r\n")
        #expect(heads[0].contains("\r\ncontent-encoding: gzip"), "\(heads[0])")
        #expect(heads[0].contains("\r\nvary: accept-encoding"))
        #expect(heads[0].contains("\r\ntransfer-encoding: chunked"))
        #expect(!heads[0].contains("content-length"))
        #expect(heads[0].contains("\r\netag: w/\"v1\""))
        // An existing Vary gets Accept-Encoding appended.
        #expect(heads[1].contains("\r\nvary: origin, accept-encoding"), "\(heads[1])")
        #expect(heads[1].contains("\r\ncontent-encoding: gzip"))

        // A chunked answer (its trailers passed on) and 1 MiB.
        let chunked = HTTPCompressionTests.curl(["--compressed"], urls: [base + "/chunked"], in: dir)
        HTTPCompressionTests.check(chunked, [CompressionOrigin.text], "chunked")
        #expect(chunked.head.contains("content-encoding: gzip"))
        #expect(chunked.head.contains("x-trailer: done"), "\(chunked.head)")
        let big = HTTPCompressionTests.curl(["--compressed"], urls: [base + "/mib"], in: dir)
        HTTPCompressionTests.check(big, [CompressionOrigin.mebibyte], "big")
        #expect(big.head.contains("content-encoding: gzip"))
        // A slow client of an answer that does not shrink: zlib's input waits in the server's
        // buffer while the client's is full, nothing lost or reordered.
        let slow = HTTPCompressionTests.curl(["--compressed", "--limit-rate", "4M"], urls: [base + "/noise"], in: dir)
        HTTPCompressionTests.check(slow, [CompressionOrigin.noise], "slow")
        #expect(slow.head.contains("content-encoding: gzip"))
        // The same below 256 KiB, compressed whole by libdeflate: written out across many
        // buffers as the slow client reads.
        let slowWhole = HTTPCompressionTests.curl(["--compressed", "--limit-rate", "1M"], urls: [base + "/noise200k"], in: dir)
        HTTPCompressionTests.check(slowWhole, [Array(CompressionOrigin.noise.prefix(200_000))], "slow whole")
        #expect(slowWhole.head.contains("content-encoding: gzip"))

        // Left alone: no-transform, an encoded answer, a type outside `compression type`, an
        // empty body, a HEAD, q=0, an HTTP/1.0 request.
        for (path, arguments) in [("/notransform", ["--compressed"]), ("/image", ["--compressed"]), ("/empty", ["--compressed"]),
                                  ("/text", ["-H", "Accept-Encoding: gzip;q=0"]), ("/text", ["-0", "--compressed"])] {
            let answer = HTTPCompressionTests.curl(arguments, urls: [base + path], in: dir)
            #expect(!answer.head.contains("content-encoding"), "\(path) \(arguments): \(answer.head)")
            #expect(path == "/empty" || answer.head.contains("content-length: \(CompressionOrigin.text.count)"), "\(path): \(answer.head)")
            HTTPCompressionTests.check(answer, [path == "/empty" ? [] : CompressionOrigin.text], "\(path) \(arguments)")
        }
        let encoded = HTTPCompressionTests.curl(["-H", "Accept-Encoding: gzip"], urls: [base + "/encoded"], in: dir)
        #expect(encoded.head.contains("content-encoding: br\r\n") && !encoded.head.contains("gzip"), "\(encoded.head)")
        HTTPCompressionTests.check(encoded, [CompressionOrigin.text], "encoded")
        let head = HTTPCompressionTests.curl(["-I", "-H", "Accept-Encoding: gzip"], urls: [base + "/text"], in: dir)
        #expect(head.head.hasPrefix("http/1.1 200"), "\(head.head)")
        #expect(!head.head.contains("content-encoding") && head.head.contains("content-length: \(CompressionOrigin.text.count)"))

        // HAProxy's counters: 6 answers compressed, fewer bytes out than in.
        let stat = try strata.admin("show stat")
        let header = try #require(stat.split(separator: "\n").first).dropFirst(2).split(separator: ",", omittingEmptySubsequences: false)
        let row = try #require(stat.split(separator: "\n").first { $0.hasPrefix("gz,FRONTEND,") }).split(separator: ",", omittingEmptySubsequences: false)
        func field(_ name: String) -> Int { header.firstIndex(of: Substring(name)).flatMap { Int(row[$0]) } ?? -1 }
        #expect(field("comp_rsp") == 6, "\(stat)")
        let expectedIn = 3 * CompressionOrigin.text.count + CompressionOrigin.mebibyte.count + CompressionOrigin.noise.count + 200_000
        #expect(field("comp_in") == expectedIn)
        // The noises come out a little larger than they went in; the rest shrinks to almost nothing.
        #expect(field("comp_out") > CompressionOrigin.noise.count + 200_000 && field("comp_out") < CompressionOrigin.noise.count + expectedIn / 4)
        #expect(field("comp_byp") == 0)
        // `show info`: the bytes per second of the last second, once the sampler has seen them:
        // compressing again while it is asked (on a loaded machine the answers above may be more
        // than a second old by now).
        let rates = try eventually(seconds: 10, every: 0.2) {
            _ = HTTPCompressionTests.curl(["--compressed"], urls: [base + "/mib"], in: dir)
            let info = try strata.admin("show info")
            return info.contains("\nCompressBpsIn: ") && !info.contains("\nCompressBpsIn: 0\n") && !info.contains("\nCompressBpsOut: 0\n")
        }
        #expect(rates, "\((try? strata.admin("show info")) ?? "")")
    }

    @Test func theAlgorithmFollowsAcceptEncodingAndOffloadHidesItFromTheServer() throws {
        try TestTools.require(TestTools.hasCurl, "curl")
        let origin = try CompressionOrigin()
        let (port, second, third) = (TestSocket.freePort(), TestSocket.freePort(), TestSocket.freePort())
        let strata = try StrataProcess(config: HTTPCompressionTests.config(port, second, third, origin: origin.port))
        defer { strata.stop() }
        #expect(strata.waitForAdmin(), "\(strata.output.joined(separator: "\n"))")
        let dir = strata.directory
        let both = "http://127.0.0.1:\(second)/text"
        // Deflate when only deflate is accepted; the highest q-value otherwise; `*` takes the
        // last algorithm named (HAProxy's order).
        for (acceptEncoding, coding) in [("deflate", "deflate"), ("gzip;q=0.5, deflate;q=0.8", "deflate"),
                                         ("gzip;q=0.9, deflate;q=0.8", "gzip"), ("*", "deflate"), ("br", nil)] {
            let answer = HTTPCompressionTests.curl(["--compressed", "-H", "Accept-Encoding: \(acceptEncoding)"], urls: [both], in: dir)
            if let coding {
                #expect(answer.head.contains("\r\ncontent-encoding: \(coding)\r\n"), "\(acceptEncoding): \(answer.head)")
            } else {
                #expect(!answer.head.contains("content-encoding"), "\(acceptEncoding): \(answer.head)")
            }
            HTTPCompressionTests.check(answer, [CompressionOrigin.text], "\(acceptEncoding)")
        }
        #expect(origin.seenAcceptEncodings.allSatisfy { $0 != "-" })

        // `compression offload`: the server never sees Accept-Encoding; the client gets gzip.
        let before = origin.seenAcceptEncodings.count
        let offloaded = HTTPCompressionTests.curl(["--compressed"], urls: ["http://127.0.0.1:\(third)/text"], in: dir)
        #expect(offloaded.head.contains("content-encoding: gzip"))
        HTTPCompressionTests.check(offloaded, [CompressionOrigin.text], "offloaded")
        #expect(origin.seenAcceptEncodings.dropFirst(before) == ["-"])

        // An HTTP/2 client: the stream's answer is compressed too.
        let h2 = HTTPCompressionTests.curl(["--http2-prior-knowledge", "--compressed", "-H", "Accept-Encoding: gzip"],
                                          urls: ["http://127.0.0.1:\(port)/mib"], in: dir)
        #expect(h2.head.hasPrefix("http/2 200"), "\(h2.head) \(h2.output)")
        #expect(h2.head.contains("content-encoding: gzip"))
        HTTPCompressionTests.check(h2, [CompressionOrigin.mebibyte], "h2")
    }
}
