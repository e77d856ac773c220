// libFuzzer target for the TCP layer's parsers of untrusted input (Sources/TCPWire): the PROXY
// protocol header (`accept-proxy`) and the TLS ClientHello (`req.ssl_sni` & co). Built by
// fuzz/build.sh together with the module's own source files into one module.
//
// Each input is a connection's first bytes. The target traps (and libFuzzer saves the input) when:
// - a PROXY header is `complete` with a length outside 15…input size (or the limit), or an
//   address of another size than 4 or 16 bytes;
// - a prefix of a complete header is anything but `needMore`, the header cut to its length parses
//   differently, or more bytes after an invalid start make it valid (answers must not depend on
//   how the bytes were split into reads);
// - a ClientHello's server name or ALPN protocol is longer than the input, or bytes appended to a
//   malformed start make it parse;
// and of course on any crash, overflow trap or sanitizer report.

#if canImport(Glibc)
import Glibc
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func tcpWireFuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    let limit = 16 + Int(size % 512)
    let whole = ProxyHeaderParser.parse(input, maxLength: limit)
    switch whole {
    case .complete(let h):
        check(h.length >= 15 && h.length <= size && h.length <= max(limit, ProxyHeaderParser.maxV1Length), "header length")
        for a in [h.source, h.destination] { if let a { check(a.bytes.count == 4 || a.bytes.count == 16, "address size") } }
        for n in [0, 1, h.length / 2, h.length - 1] where n < h.length {
            check(ProxyHeaderParser.parse(UnsafeRawBufferPointer(rebasing: input[0..<n]), maxLength: limit) == .needMore,
                  "prefix of a complete header")
        }
        check(ProxyHeaderParser.parse(UnsafeRawBufferPointer(rebasing: input[0..<h.length]), maxLength: limit) == whole,
              "the header alone")
    case .invalid:
        for n in stride(from: 0, to: size, by: max(1, size / 8)) {
            if case .complete = ProxyHeaderParser.parse(UnsafeRawBufferPointer(rebasing: input[0..<n]), maxLength: limit) {
                trap("a prefix of invalid bytes is complete")
            }
        }
    case .needMore:
        break
    }

    let hello = ClientHelloParser.parse(input)
    if case .complete(let h) = hello {
        check((h.serverName?.count ?? 0) <= size, "server name size")
        check(h.alpn.allSatisfy { $0.count <= size }, "alpn size")
    }
    if hello == .notHello {
        // More bytes never make a malformed start well-formed.
        var extended = Array(input)
        extended += [0x16, 3, 3, 0, 4, 1, 0, 0, 0]
        let again = extended.withUnsafeBytes { ClientHelloParser.parse($0) }
        check(again == .notHello || size == 0, "bytes after a malformed hello changed the answer")
    }
    return 0
}

func check(_ condition: Bool, _ what: String) {
    if !condition { trap(what) }
}

func trap(_ what: String) -> Never {
    fputs("tcp-wire-fuzz: \(what)\n", stderr)
    abort()
}
