import HTTP1
import ConfigModel

extension HTTPRuleSet {
    /// Writes the request head to send to the server (call it on the frontend's rule set, with the
    /// backend's): the request line (the method and target the rules set; the request's own HTTP
    /// version, see below), the fields with the rules' rewrites, without hop-by-hop fields
    /// (Connection, Keep-Alive, Proxy-Connection, TE, Upgrade unless `connectionHeader` is
    /// `.upgrade`, and what Connection names), then `X-Forwarded-For` (`option forwardfor`, the
    /// frontend's or the backend's) and `X-Original-To` (`option originalto`), then the
    /// `Connection` field `connectionHeader` asks for, then the empty line.
    ///
    /// The version stays the client's (as HAProxy does): an HTTP/1.1 request to the server would let
    /// it answer with chunked framing (or 1xx) that an HTTP/1.0 client cannot read, and the
    /// response's framing is forwarded untouched. So an HTTP/1.0 request kept alive gets
    /// `Connection: keep-alive`.
    func writeRequestHead(into writer: inout HTTPHeadWriter, _ head: borrowing HTTPHead,
                                 input: UnsafeRawBufferPointer, connection: HTTPConnectionInfo,
                                 scratch: HTTPRuleScratch, backend: HTTPRuleSet?,
                                 connectionHeader: HTTPConnectionHeader) {
        scratch.beginRule()
        withUnsafePointer(to: head) { head in
            let request = HTTPMessageView(input: input, head: head, edits: scratch.request)
            let edits = scratch.request
            if edits.method == nil && edits.target == nil {
                writer.writeStartLine(head.pointee, from: input)
            } else {
                writer.write(request.method)
                writer.write(byte: HTTPByte.space)
                writer.write(request.target)
                writer.write(head.pointee.version == .http11 ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n")
            }
            HTTPRuleSet.writeFields(&writer, request, upgrade: connectionHeader == .upgrade)

            let be = backend === self ? nil : backend
            if let header = be?.forwardFor ?? forwardFor, let client = connection.client {
                let front = forwardFor
                let back = be?.forwardFor
                let ifNone = (front?.ifNone ?? true) && (back?.ifNone ?? true)
                let address = HTTPAddressBits(client.address)
                let excluded = (front?.except.map { address.isIn($0) } ?? false)
                    || (back?.except.map { address.isIn($0) } ?? false)
                if !(ifNone && request.hasField(header.lowercaseName)) && !excluded {
                    HTTPRuleSet.writeAddressField(&writer, header.name, address, scratch)
                }
            }
            if let header = be?.originalTo ?? originalTo, let local = connection.localEndpoint {
                let address = HTTPAddressBits(local.address)
                let excluded = (originalTo?.except.map { address.isIn($0) } ?? false)
                    || (be?.originalTo?.except.map { address.isIn($0) } ?? false)
                if !excluded { HTTPRuleSet.writeAddressField(&writer, header.name, address, scratch) }
            }
            // `option forwarded`: the backend's only (HAProxy ignores a frontend's).
            if let forwarded = backend?.forwarded {
                withUnsafePointer(to: connection) { connection in
                    HTTPRuleSet.writeForwarded(&writer, forwarded, HTTPEvaluation(
                        request: request, response: nil, connection: connection, scratch: scratch, frontend: self, backend: be))
                }
            }
            // `unique-id-header`: the frontend's, after the rules (HAProxy adds it in
            // http_process_request, once the backend's rules have run).
            if let name = uniqueIDHeader {
                withUnsafePointer(to: connection) { connection in
                    let ev = HTTPEvaluation(request: request, response: nil, connection: connection, scratch: scratch,
                                            frontend: self, backend: be)
                    if let id = ev.uniqueID() {
                        writer.write(name)
                        writer.write(": ")
                        writer.write(id)
                        writer.write("\r\n")
                    }
                }
            }
            HTTPRuleSet.writeConnection(&writer, connectionHeader, version: head.pointee.version)
            writer.writeEndOfHead()
        }
    }

    /// The request's unique ID for its log line, made now (the head is still there) when the
    /// frontend's log prints `%ID` and nothing asked for it yet; nil without a format.
    func uniqueIDForLog(_ head: borrowing HTTPHead, input: UnsafeRawBufferPointer, connection: HTTPConnectionInfo,
                        scratch: HTTPRuleScratch) -> UnsafeRawBufferPointer? {
        guard uniqueIDFormat != nil else { return nil }
        if scratch.uniqueIDMade { return scratch.uniqueID.bytes(from: 0) }
        return withUnsafePointer(to: head) { head in
            withUnsafePointer(to: connection) { connection in
                HTTPEvaluation(request: HTTPMessageView(input: input, head: head, edits: scratch.request), response: nil,
                               connection: connection, scratch: scratch, frontend: self, backend: nil).uniqueID()
            }
        }
    }

    /// Writes the response head to send to the client: the status line (with the status
    /// `set-status` gave, and its reason), the fields with the rules' and the persistence cookie's
    /// rewrites, without hop-by-hop fields (Upgrade stays for `.upgrade`, a 101), then the
    /// `Connection` field `connectionHeader` asks for (for `.keepAlive`, `Connection: keep-alive`
    /// to an HTTP/1.0 client), then the empty line. Framing fields (Content-Length,
    /// Transfer-Encoding) are left as the server sent them.
    func writeResponseHead(into writer: inout HTTPHeadWriter, _ head: borrowing HTTPHead,
                                  input: UnsafeRawBufferPointer, scratch: HTTPRuleScratch,
                                  connectionHeader: HTTPConnectionHeader, clientVersion: HTTPVersion) {
        withUnsafePointer(to: head) { head in
            let response = HTTPMessageView(input: input, head: head, edits: scratch.response)
            let edits = scratch.response
            if let status = edits.status {
                writer.write(head.pointee.version == .http11 ? "HTTP/1.1 " : "HTTP/1.0 ")
                writer.writeDecimal(UInt64(max(status, 0)))
                writer.write(byte: HTTPByte.space)
                if let reason = edits.reason {
                    writer.write(edits.resolve(reason, input))
                } else {
                    writer.write(HTTPErrorPages.reason(status))
                }
                writer.write("\r\n")
            } else {
                writer.writeStartLine(head.pointee, from: input)
            }
            HTTPRuleSet.writeFields(&writer, response, upgrade: connectionHeader == .upgrade)
            HTTPRuleSet.writeConnection(&writer, connectionHeader, version: clientVersion)
            writer.writeEndOfHead()
        }
    }

    static func writeConnection(_ writer: inout HTTPHeadWriter, _ header: HTTPConnectionHeader, version: HTTPVersion) {
        switch header {
        case .keepAlive: if version == .http10 { writer.writeField(name: "Connection", value: "keep-alive") }
        case .close: writer.writeField(name: "Connection", value: "close")
        case .upgrade: writer.writeField(name: "Connection", value: "upgrade")
        }
    }

    /// RFC 7239's element as HAProxy builds it (`proto`, `host`, `by`, `for`, in that order; an
    /// IPv6 node or one with a port quoted, `unknown` for a node without a value). HAProxy
    /// appends it to the last `Forwarded` field when every one the client sent is valid, else
    /// adds a field; strata always adds its own field after the client's, the same list to a
    /// reader. Built in the scratch's text: the `-expr` samples use its samples buffer.
    static func writeForwarded(_ writer: inout HTTPHeadWriter, _ forwarded: HTTPCompiledForwarded, _ ev: HTTPEvaluation) {
        let option = forwarded.option
        let out = ev.scratch.text
        let mark = out.count
        let samplesMark = ev.scratch.samples.count
        defer {
            out.rewind(to: mark)
            ev.scratch.samples.rewind(to: samplesMark)
        }
        func separator() { if out.count > mark { out.append(byte: 0x3B) } }
        /// A sample's value as text (an address as HAProxy casts it to a string).
        func text(_ sample: HTTPCompiledSample) -> (bytes: UnsafeRawBufferPointer, ipv6: HTTPAddressBits?)? {
            guard let value = ev.value(sample) else { return nil }
            if case .address(let a) = value, a.isV6 { return (HTTPRuleBytes.empty, a) }
            return ev.bytes(of: value).map { ($0, nil) }
        }
        if option.proto {
            separator()
            out.append(ev.connection.pointee.isTLS ? "proto=https" : "proto=http")
        }
        if option.host {
            separator()
            out.append("host=\"")
            let host: UnsafeRawBufferPointer?
            if let sample = forwarded.host {
                host = text(sample)?.bytes
            } else {
                host = ev.request?.firstValue(of: HTTPRuleBytes.literal("host"), split: false)
            }
            if let host, isForwardedHost(host) { out.append(host) }
            out.append(byte: 0x22)
        }
        func ipv6(_ a: HTTPAddressBits, quoted: Bool) {
            if !quoted { out.append(byte: 0x22) }  // RFC 7239 quotes an IPv6 node
            out.append(byte: 0x5B)
            out.appendAddress(a)
            out.append(byte: 0x5D)
        }
        func node(_ endpoint: SocketEndpoint?, _ name: HTTPCompiledSample?, port: Bool, _ portSample: HTTPCompiledSample?) {
            let start = out.count
            if port { out.append(byte: 0x22) }
            let nameStart = out.count
            if let name {
                if let value = text(name) {
                    let bytes = value.bytes
                    if let v6 = value.ipv6 {
                        ipv6(v6, quoted: port)
                    } else if ForwardedNode.isNodename(bytes) {
                        if bytes.first == 0x5B && !port { out.append(byte: 0x22) }
                        out.append(bytes)
                    } else if ForwardedNode.isObfuscated(bytes) {
                        out.append(byte: 0x5F)
                        out.append(bytes)
                    }
                }
            } else if let endpoint {
                let address = HTTPAddressBits(endpoint.address)
                if address.isV6 { ipv6(address, quoted: port) } else { out.appendAddress(address) }
            }
            if out.count == nameStart { out.append("unknown") }
            if port {
                out.append(byte: 0x3A)
                let portStart = out.count
                if let portSample {
                    if let bytes = text(portSample)?.bytes {
                        if ForwardedNode.isPort(bytes) {
                            out.append(bytes)
                        } else if ForwardedNode.isObfuscated(bytes) {
                            out.append(byte: 0x5F)
                            out.append(bytes)
                        }
                    }
                } else if let endpoint {
                    out.appendDecimal(Int(endpoint.port))
                }
                if out.count == portStart { out.rewind(to: portStart - 1) }  // no port: no `:`
            }
            if out.count > start && out.bytes(start..<(start + 1))[0] == 0x22 { out.append(byte: 0x22) }
        }
        if option.by {
            separator()
            out.append("by=")
            node(ev.connection.pointee.localEndpoint, forwarded.by, port: option.byPort, forwarded.byPort)
        }
        if option.client {
            separator()
            out.append("for=")
            node(ev.connection.pointee.client, forwarded.client, port: option.clientPort, forwarded.clientPort)
        }
        guard !out.overflowed else { return }
        writer.write("Forwarded: ")
        writer.write(out.bytes(from: mark))
        writer.write("\r\n")
    }

    /// A Host value that may go in `host="…"` unchanged: RFC 3986's reg-name or IP-literal and a
    /// port (HAProxy leaves the value out otherwise).
    static func isForwardedHost(_ host: UnsafeRawBufferPointer) -> Bool {
        for b in host {
            switch b {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: continue
            case 0x2D, 0x2E, 0x5F, 0x7E, 0x21, 0x24, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x3B, 0x3D, 0x3A, 0x5B, 0x5D, 0x25:
                continue
            default: return false
            }
        }
        return true
    }

    static func writeAddressField(_ writer: inout HTTPHeadWriter, _ name: UnsafeRawBufferPointer,
                                  _ address: HTTPAddressBits, _ scratch: HTTPRuleScratch) {
        let mark = scratch.samples.count
        guard scratch.samples.appendAddress(address) else { return }
        writer.write(name)
        writer.write(": ")
        writer.write(scratch.samples.bytes(from: mark))
        writer.write("\r\n")
        scratch.samples.rewind(to: mark)
    }

    /// The fields of `message` with its edits, hop-by-hop ones left out. Unchanged received lines
    /// written `name: value\r\n` and next to each other are copied together.
    static func writeFields(_ writer: inout HTTPHeadWriter, _ message: HTTPMessageView, upgrade: Bool) {
        let removal: HTTPHeadWriter.Removal = upgrade ? .connectionOptions : .hopByHop
        let edits = message.edits
        let input = message.input
        guard edits.fieldsEdited else {
            writer.writeFields(message.head.pointee, from: input, removing: removal)
            return
        }
        let head = message.head
        var run = 0..<0
        var contentLengthWritten = false
        for field in edits.fields where !field.deleted {
            let name = edits.resolve(field.name, input)
            if isHopByHop(field.knownName, name, head, input, upgrade: upgrade) { continue }
            if head.pointee.contentLengthRepeated && field.knownName == .contentLength && field.original != nil {
                // Equal Content-Length values leave as one field (see HTTPHeadWriter.writeFields).
                writer.write(input, run)
                run = 0..<0
                if !contentLengthWritten, let length = head.pointee.contentLength {
                    writer.writeField(name: "content-length", decimal: length)
                }
                contentLengthWritten = true
                continue
            }
            if let original = field.original {
                let f = head.pointee.fields[Int(original)]
                let n = f.name
                let v = f.value
                if v.lowerBound == n.upperBound &+ 2 && input[n.upperBound &+ 1] == HTTPByte.space
                    && input[v.upperBound] == HTTPByte.cr {
                    let line = n.lowerBound..<(v.upperBound &+ 2)
                    if line.lowerBound == run.upperBound {
                        run = run.lowerBound..<line.upperBound
                    } else {
                        writer.write(input, run)
                        run = line
                    }
                    continue
                }
            }
            writer.write(input, run)
            run = 0..<0
            writer.write(name)
            writer.write(": ")
            writer.write(edits.resolve(field.value, input))
            writer.write("\r\n")
        }
        writer.write(input, run)
    }

    private static func isHopByHop(_ known: HTTPFieldName, _ name: UnsafeRawBufferPointer, _ head: UnsafePointer<HTTPHead>,
                                   _ input: UnsafeRawBufferPointer, upgrade: Bool) -> Bool {
        switch known {
        case .connection, .keepAlive, .proxyConnection, .te: return true
        case .upgrade: return !upgrade
        default:
            for token in head.pointee.connectionTokens {
                let t = HTTPRuleBytes.slice(input, token)
                guard t.count == name.count else { continue }
                var same = true
                for i in 0..<t.count where HTTPByte.lowercased(t[i]) != HTTPByte.lowercased(name[i]) {
                    same = false
                    break
                }
                if same { return true }
            }
            return false
        }
    }
}

/// RFC 7239's node syntax, as HAProxy checks a `-expr` value before writing it.
enum ForwardedNode {
    /// `obfnode` / `obfport` after their `_`: ALPHA, DIGIT, `.`, `_`, `-`.
    static func isObfuscated(_ b: UnsafeRawBufferPointer) -> Bool {
        !b.isEmpty && b.allSatisfy { c in
            switch c {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2E, 0x5F, 0x2D: true
            default: false
            }
        }
    }

    /// A nodename written as it is: an IPv4 address, `[IPv6]`, `unknown`, or `_obfnode`.
    static func isNodename(_ b: UnsafeRawBufferPointer) -> Bool {
        if HTTPRuleBytes.equals(b, HTTPRuleBytes.literal("unknown")) { return true }
        if b.first == 0x5F { return isObfuscated(UnsafeRawBufferPointer(rebasing: b.dropFirst())) }
        if b.first == 0x5B {
            guard b.count > 2, b.last == 0x5D else { return false }
            let inner = String(decoding: b.dropFirst().dropLast(), as: UTF8.self)
            return IPAddress(inner).map { $0.isV6 } ?? false
        }
        let text = String(decoding: b, as: UTF8.self)
        return IPAddress(text).map { !$0.isV6 } ?? false
    }

    /// A port: 1 to 5 digits up to 65535, or `_obfport`.
    static func isPort(_ b: UnsafeRawBufferPointer) -> Bool {
        if b.first == 0x5F { return isObfuscated(UnsafeRawBufferPointer(rebasing: b.dropFirst())) }
        guard (1...5).contains(b.count), b.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
        return Int(String(decoding: b, as: UTF8.self)).map { $0 <= 65535 } ?? false
    }
}
