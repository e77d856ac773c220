import HTTP1
import ConfigModel
import Glibc
import TCPWire

/// Everything a fetch may read during one call: the request and/or the response as the rules see
/// them, the connection, the proxies involved, and where computed values go. A plain value
/// (pointers and unowned references): passing and capturing it copies a few words, no reference
/// count.
struct HTTPEvaluation {
    var request: HTTPMessageView?
    var response: HTTPMessageView?
    /// The caller's, for the duration of the call that made the evaluation.
    let connection: UnsafePointer<HTTPConnectionInfo>
    /// The session's scratch (unowned: every call that builds an evaluation holds it).
    unowned(unsafe) let scratch: HTTPRuleScratch
    /// The frontend (`%f`) and the backend once known (`%b`).
    unowned(unsafe) let frontend: HTTPRuleSet
    unowned(unsafe) var backend: HTTPRuleSet?
    /// Mode tcp: the client's bytes buffered so far (`req.len`, `req.payload`, `req.ssl_*`), and
    /// whether more may still come (`tcp-request inspect-delay`): a fetch that needs more then
    /// notes it in `scratch.payloadMissing` (HAProxy's "may change").
    var payload: UnsafeRawBufferPointer? = nil
    var payloadMayGrow = false

    // MARK: Fetches

    /// Calls `body` with each value of `sample`: all of them (`all`, how ACLs test multi-valued
    /// fetches) or the one a sample expression takes (the last header value, the first
    /// `url_param`). Returns true when `body` stopped the walk by returning false.
    @inline(__always)
    func forEachValue(_ sample: HTTPCompiledSample, all: Bool, _ body: (HTTPSample) -> Bool) -> Bool {
        if let chain = sample.chain {
            return !forEachFetched(sample.fetch, all: all) { value in
                guard let converted = chain._withUnsafeGuaranteedRef({ $0.apply(value, self) }) else { return true }
                return body(converted)
            }
        }
        if sample.caseMapping == .none {
            return !forEachFetched(sample.fetch, all: all, body)
        }
        let mapping = sample.caseMapping
        return !forEachFetched(sample.fetch, all: all) { value in
            guard let mapped = self.mapCase(value, mapping) else { return true }
            return body(mapped)
        }
    }

    /// The single value of `sample` (as a sample expression in a format string takes it).
    func value(_ sample: HTTPCompiledSample) -> HTTPSample? {
        var found: HTTPSample?
        _ = forEachValue(sample, all: false) { value in
            found = value
            return false
        }
        return found
    }

    private func mapCase(_ value: HTTPSample, _ mapping: HTTPCompiledSample.CaseMapping) -> HTTPSample? {
        guard let text = bytes(of: value) else { return nil }
        let mark = scratch.samples.count
        let ok = mapping == .lower
            ? scratch.samples.append(text, mapping: HTTPByte.lowercased)
            : scratch.samples.append(text, mapping: HTTPRuleBytes.upper)
        return ok ? .bytes(scratch.samples.bytes(from: mark)) : nil
    }

    static var authorization: UnsafeRawBufferPointer { HTTPRuleBytes.literal("authorization") }

    /// Returns false when `body` stopped the walk.
    private func forEachFetched(_ fetch: HTTPCompiledSample.Fetch, all: Bool, _ body: (HTTPSample) -> Bool) -> Bool {
        switch fetch {
        case .path:
            guard let request else { return true }
            let target = request.target
            guard let path = HTTPTargetParts(target).path else { return true }
            return body(.bytes(HTTPRuleBytes.slice(target, path)))
        case .url:
            guard let request else { return true }
            return body(.bytes(request.target))
        case .query:
            guard let request else { return true }
            let target = request.target
            guard let query = HTTPTargetParts(target).query else { return true }
            return body(.bytes(HTTPRuleBytes.slice(target, query)))
        case .urlParameter(let name):
            guard let request else { return true }
            let target = request.target
            guard let query = HTTPTargetParts(target).query else { return true }
            let q = HTTPRuleBytes.slice(target, query)
            if all {
                return HTTPQueryParameters.forEachValue(named: name, in: q) { body(.bytes($0)) }
            }
            guard let value = HTTPQueryParameters.firstValue(named: name, in: q) else { return true }
            return body(.bytes(value))
        case .header(let name, let occurrence):
            guard let request else { return true }
            return forEachHeaderValue(request, name, occurrence: occurrence, split: true, all: all, body)
        case .responseHeader(let name, let occurrence):
            guard let response else { return true }
            return forEachHeaderValue(response, name, occurrence: occurrence, split: true, all: all, body)
        case .fullHeader(let name):
            guard let request else { return true }
            return forEachHeaderValue(request, name, occurrence: nil, split: false, all: all, body)
        case .headerValue(let name, let occurrence):
            guard let request else { return true }
            return forEachHeaderValue(request, name, occurrence: occurrence, split: true, all: all) { sample in
                guard case .bytes(let text) = sample else { return body(sample) }
                return body(.integer(HTTPEvaluation.leadingInteger(text)))
            }
        case .headerIP(let name, let occurrence):
            guard let request else { return true }
            return forEachHeaderValue(request, name, occurrence: occurrence, split: true, all: all) { sample in
                guard case .bytes(let text) = sample else { return body(sample) }
                var start = 0, end = text.count
                while start < end, HTTPByte.isWhitespace(text[start]) { start += 1 }
                while end > start, HTTPByte.isWhitespace(text[end - 1]) { end -= 1 }
                guard let address = HTTPAddressBits.parse(UnsafeRawBufferPointer(rebasing: text[start..<end])) else { return true }
                return body(.address(address))
            }
        case .responseHeaderValue(let name, let occurrence):
            guard let response else { return true }
            return forEachHeaderValue(response, name, occurrence: occurrence, split: true, all: all) { sample in
                guard case .bytes(let text) = sample else { return body(sample) }
                return body(.integer(HTTPEvaluation.leadingInteger(text)))
            }
        case .headerCount(let name):
            guard let request else { return true }
            return body(.integer(request.valueCount(of: name, split: true)))
        case .method:
            guard let request else { return true }
            return body(.bytes(request.method))
        case .source:
            guard let client = connection.pointee.client else { return true }
            return body(.address(HTTPAddressBits(client.address)))
        case .sourcePort:
            guard let client = connection.pointee.client else { return true }
            return body(.integer(Int(client.port)))
        case .destination:
            guard let local = connection.pointee.localEndpoint else { return true }
            return body(.address(HTTPAddressBits(local.address)))
        case .destinationPort:
            guard let local = connection.pointee.localEndpoint else { return true }
            return body(.integer(Int(local.port)))
        case .base:
            guard let request else { return true }
            guard let base = base(request) else { return true }
            return body(.bytes(base))
        case .requestVersion:
            guard let request else { return true }
            if connection.pointee.isHTTP2 { return body(.bytes(HTTPRuleBytes.literal("2.0"))) }
            return body(.bytes(HTTPRuleBytes.literal(request.version == .http11 ? "1.1" : "1.0")))
        case .sslFrontend:
            return body(.boolean(connection.pointee.isTLS))
        case .tls(let fetch):
            return forEachTLSValue(fetch, body)
        case .constant(let value):
            return body(.boolean(value))
        case .literalBytes(let bytes):
            guard let bytes else { return true }
            return body(.bytes(bytes))
        case .literalInteger(let n):
            return body(.integer(n))
        case .serverID:
            guard let server = scratch.answeringServer else { return true }
            return body(.integer(server.id))
        case .serverName:
            guard let server = scratch.answeringServer else { return true }
            return Array(server.name.utf8).withUnsafeBytes { body(.bytes($0)) }
        case .receivedRequestLine(let part):
            guard let request else { return true }
            let head = request.head.pointee
            switch part {
            case .method: return body(.bytes(HTTPRuleBytes.slice(request.input, head.methodRange)))
            case .uri: return body(.bytes(HTTPRuleBytes.slice(request.input, head.target)))
            case .version: return body(.bytes(HTTPRuleBytes.literal(head.version == .http11 ? "HTTP/1.1" : "HTTP/1.0")))
            }
        case .proxyProtocol(let f):
            let header = connection.pointee.proxyHeader
            let value: [UInt8]?
            switch f {
            case .received: return body(.boolean(header != nil))
            case .authority: value = header?.authority
            case .uniqueID: value = header?.tlv(ProxyHeaderWriter.TLV.uniqueID)
            case .tlv(let type): value = header?.tlv(type)
            }
            guard let value else { return true }
            return value.withUnsafeBytes { body(.bytes($0)) }
        case .status:
            guard let response else { return true }
            return body(.integer(response.status))
        case .variable(let key):
            guard let value = variableSample(key) else { return true }
            return body(value)
        case .variableOrDefault(let key, let fallback):
            return body(variableSample(key) ?? .bytes(fallback))
        case .httpAuth(let list):
            guard let request else { return true }
            return body(.boolean(authenticatedUser(request, list) != nil))
        case .httpAuthGroup(let list):
            guard let request, let user = authenticatedUser(request, list) else { return true }
            for group in user.groups where !body(.bytes(group)) { return false }
            return true
        case .requestLength:
            guard let payload else { return true }
            return body(.integer(payload.count))
        case .requestPayload(let offset, let length):
            guard let payload else { return true }
            let end = length == 0 ? payload.count : offset + length
            guard offset <= payload.count, end <= payload.count else {
                if payloadMayGrow { scratch.payloadMissing = true }
                return true
            }
            return body(.bytes(UnsafeRawBufferPointer(rebasing: payload[offset..<end])))
        case .uniqueID:
            guard let id = uniqueID() else { return true }
            return body(.bytes(id))
        case .capturedRequest(let slot):
            guard let value = scratch.requestSlots.value(slot) else { return true }
            return body(.bytes(value))
        case .capturedResponse(let slot):
            guard let value = scratch.responseSlots.value(slot) else { return true }
            return body(.bytes(value))
        case .connectionError(let tlsOnly):
            if tlsOnly && !connection.pointee.isTLS { return true }
            return body(.integer(0))
        case .uuid:
            guard let text = HTTPEvaluation.appendUUID(scratch.samples) else { return true }
            return body(.bytes(text))
        case .stick(let kind, let counter, let table, let source):
            guard let value = stickValue(kind, counter: counter, table: table, source: source) else { return true }
            return body(value)
        case .protoHTTP:
            guard let payload else { return true }
            switch HTTPRequestLine.looksLikeRequest(payload) {
            case nil:
                if payloadMayGrow { scratch.payloadMissing = true }
                return true
            case let answer?:
                return body(.boolean(answer))
            }
        case .sslHello(let fetch):
            guard let payload else { return true }
            let hello: ClientHello
            switch ClientHelloParser.parse(payload) {
            case .needMore:
                if payloadMayGrow { scratch.payloadMissing = true }
                return true
            case .notHello:
                return true
            case .complete(let h):
                hello = h
            }
            switch fetch {
            case .helloType:
                return body(.integer(Int(hello.handshakeType)))
            case .version:
                return body(.integer(hello.handshakeType == 1 ? hello.helloVersion : hello.recordVersion))
            case .ecExtension:
                return hello.handshakeType == 1 ? body(.boolean(hello.hasECExtension)) : true
            case .serverName:
                guard let name = hello.serverName else { return true }
                return name.withUnsafeBytes { raw in
                    let mark = scratch.samples.count
                    guard scratch.samples.append(raw) else { return true }
                    return body(.bytes(scratch.samples.bytes(from: mark)))
                }
            case .alpn:
                for p in hello.alpn {
                    let stop = p.withUnsafeBytes { raw -> Bool in
                        let mark = scratch.samples.count
                        guard scratch.samples.append(raw) else { return false }
                        return !body(.bytes(scratch.samples.bytes(from: mark)))
                    }
                    if stop { return false }
                    if !all { break }
                }
                return true
            }
        }
    }

    /// The user the request's `Authorization` names in `list`, if its password is right.
    private func authenticatedUser(_ request: HTTPMessageView, _ list: Unmanaged<HTTPUserlist>) -> HTTPUserlist.User? {
        guard let value = request.lastValue(of: HTTPEvaluation.authorization, split: false) else { return nil }
        return list._withUnsafeGuaranteedRef { $0.authenticate(value) }
    }

    /// `ssl_fc_*`, `ssl_c_*`: strings OpenSSL keeps (static, or the connection's) and values
    /// the connection renders once; booleans are false and the others absent on a plain connection.
    private func forEachTLSValue(_ fetch: TLSSampleFetch, _ body: (HTTPSample) -> Bool) -> Bool {
        guard let tls = connection.pointee.tls else {
            return fetch.isBoolean ? body(.boolean(false)) : true
        }
        func text(_ p: UnsafePointer<CChar>?) -> Bool {
            guard let p else { return true }
            return body(.bytes(UnsafeRawBufferPointer(start: p, count: strlen(p))))
        }
        switch fetch {
        case .serverName: return text(tls.serverName)
        case .protocolVersion: return text(tls.protocolName)
        case .cipher: return text(tls.cipherName)
        case .alpn:
            guard let alpn = tls.alpn else { return true }
            return body(.bytes(alpn))
        case .resumed: return body(.boolean(tls.sessionReused))
        case .clientCertificateUsed: return body(.boolean(tls.hasPeerCertificate))
        case .clientCertificateVerify: return body(.integer(tls.peerVerifyResult))
        case .clientSubjectDN, .clientIssuerDN:
            guard let name = tls.peerName(issuer: fetch == .clientIssuerDN) else { return true }
            return body(.bytes(name))
        }
    }

    private func forEachHeaderValue(_ message: HTTPMessageView, _ name: UnsafeRawBufferPointer, occurrence: Int?,
                                    split: Bool, all: Bool, _ body: (HTTPSample) -> Bool) -> Bool {
        if let occurrence {
            guard let value = message.value(of: name, split: split, occurrence: occurrence) else { return true }
            return body(.bytes(value))
        }
        if all {
            return message.forEachValue(of: name, split: split) { body(.bytes($0)) }
        }
        guard let value = message.lastValue(of: name, split: split) else { return true }
        return body(.bytes(value))
    }

    /// HAProxy's `strl2ic`: an optional `-` or `+`, then the leading digits (0 without any;
    /// saturating rather than wrapping on overflow).
    static func leadingInteger(_ text: UnsafeRawBufferPointer) -> Int {
        var i = 0
        var negative = false
        if i < text.count, text[i] == UInt8(ascii: "-") || text[i] == UInt8(ascii: "+") {
            negative = text[i] == UInt8(ascii: "-")
            i += 1
        }
        var value = 0
        while i < text.count, text[i] &- UInt8(ascii: "0") < 10 {
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int(text[i] &- UInt8(ascii: "0")))
            if o1 || o2 { return negative ? Int.min : Int.max }
            value = a
            i += 1
        }
        return negative ? -value : value
    }

    /// `base`: the first Host value followed by the path (only the path without Host).
    private func base(_ request: HTTPMessageView) -> UnsafeRawBufferPointer? {
        let target = request.target
        let path = HTTPTargetParts(target).path.map { HTTPRuleBytes.slice(target, $0) }
        guard let host = request.firstValue(of: HTTPRuleBytes.literal("host"), split: true) else { return path }
        let mark = scratch.samples.count
        scratch.samples.append(host)
        if let path { scratch.samples.append(path) }
        return scratch.samples.overflowed ? nil : scratch.samples.bytes(from: mark)
    }

    // MARK: Casts

    /// A sample as text (HAProxy's cast to string): integers in decimal, booleans 1/0, addresses
    /// as written. Computed text goes to the scratch.
    @inline(__always)
    func bytes(of value: HTTPSample) -> UnsafeRawBufferPointer? {
        if case .bytes(let b) = value { return b }
        return computedBytes(of: value)
    }

    private func computedBytes(of value: HTTPSample) -> UnsafeRawBufferPointer? {
        switch value {
        case .bytes(let b):
            return b
        case .integer(let n):
            let mark = scratch.samples.count
            return scratch.samples.appendDecimal(n) ? scratch.samples.bytes(from: mark) : nil
        case .boolean(let b):
            return HTTPRuleBytes.literal(b ? "1" : "0")
        case .address(let a):
            let mark = scratch.samples.count
            return scratch.samples.appendAddress(a) ? scratch.samples.bytes(from: mark) : nil
        }
    }

    func integer(of value: HTTPSample) -> Int? {
        switch value {
        case .integer(let n): return n
        case .boolean(let b): return b ? 1 : 0
        case .bytes(let b): return HTTPRuleBytes.integer(b)
        case .address: return nil
        }
    }

    func address(of value: HTTPSample) -> HTTPAddressBits? {
        switch value {
        case .address(let a): return a
        case .bytes(let b): return HTTPAddressBits.parse(b)
        case .integer, .boolean: return nil
        }
    }

    func boolean(of value: HTTPSample) -> Bool {
        switch value {
        case .boolean(let b): return b
        case .integer(let n): return n != 0
        case .bytes(let b): return (HTTPRuleBytes.integer(b) ?? 0) != 0
        case .address: return false
        }
    }
}
