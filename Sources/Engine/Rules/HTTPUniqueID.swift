import HTTP1
import ConfigModel
import Glibc
import Synchronization

/// `unique-id-format`, compiled: HAProxy's log-format syntax with its flags (`%{+X}o` prints
/// addresses, ports and counters in hexadecimal, as in the documentation's
/// `%{+X}o %ci:%cp_%fi:%fp_%Ts_%rt:%pid`), and separators printed only after something was.
/// The variables are those a request has when its ID is made; the Loader refuses the others.
struct HTTPUniqueIDFormat {
    enum Variable {
        case clientIP, clientPort, frontendIP, frontendPort
        case acceptSeconds, acceptMilliseconds, requestCounter, pid, hostname
        /// What a rule's format string prints too (`%f`, `%HM`, `%r`, …).
        case rule(HTTPCompiledFormat.Variable)

        init(_ name: String) {
            switch name {
            case "ci": self = .clientIP
            case "cp": self = .clientPort
            case "fi": self = .frontendIP
            case "fp": self = .frontendPort
            case "Ts": self = .acceptSeconds
            case "ms": self = .acceptMilliseconds
            case "rt": self = .requestCounter
            case "pid": self = .pid
            case "H": self = .hostname
            default: self = .rule(HTTPCompiledFormat.Variable(name))
            }
        }
    }

    enum Part {
        case literal(UnsafeRawBufferPointer)
        case separator
        case variable(Variable, hex: Bool, quote: Bool)
        case sample(HTTPCompiledSample, quote: Bool)
    }

    /// The variables `unique-id-format` may use (the Loader's list).
    static let variables: Set<String> = [
        "ci", "cp", "fi", "fp", "Ts", "ms", "rt", "pid", "H", "f", "ft", "b", "HM", "HU", "HP", "HQ", "HV", "r",
    ]
    /// HAProxy's UNIQUEID_LEN: a longer ID is cut.
    static let maximumLength = 128

    let parts: [Part]

    init(_ spec: LogFormatSpec, constants: HTTPRuleConstants) {
        parts = spec.nodes.map { node in
            switch node {
            case .literal(let text): .literal(constants.bytes(text))
            case .separator: .separator
            case .variable(let name, let flags):
                .variable(Variable(name), hex: flags.contains(.hex), quote: flags.contains(.quote))
            case .sample(let expression, let flags):
                .sample(HTTPCompiledSample(expression, constants: constants), quote: flags.contains(.quote))
            }
        }
    }

    /// `%rt`: HAProxy's request counter (its stream's `uniq_id`), shared by every loop so that
    /// two loops never make the same ID. Touched only when a format prints it.
    static let requestCounter = Atomic<Int>(0)
    static let hostname = LogFormatter.hostname
}

extension HTTPEvaluation {
    /// The request's unique ID: made from the frontend's `unique-id-format` the first time a
    /// fetch, the `unique-id-header` or the log asks for it, then the same for the rest of the
    /// request. nil when the frontend has no format.
    func uniqueID() -> UnsafeRawBufferPointer? {
        let id = scratch.uniqueID
        if scratch.uniqueIDMade { return id.bytes(from: 0) }
        guard let format = frontend.uniqueIDFormat else { return nil }
        scratch.uniqueIDMade = true
        id.reset()
        // Rendered in the text buffer (samples and variables write there), then kept.
        let out = scratch.text
        let mark = out.count
        let samplesMark = scratch.samples.count
        var lastWasSpace = true
        for part in format.parts {
            let before = out.count
            switch part {
            case .literal(let bytes):
                out.append(bytes)
            case .separator:
                if !lastWasSpace { out.append(byte: HTTPByte.space) }
                lastWasSpace = true
                continue
            case .variable(let variable, let hex, let quote):
                if quote { out.append(byte: 0x22) }
                appendUniqueIDVariable(variable, hex: hex)
                if quote { out.append(byte: 0x22) }
            case .sample(let sample, let quote):
                if quote { out.append(byte: 0x22) }
                if let value = value(sample), let text = bytes(of: value) {
                    out.append(text)
                } else if !quote {
                    out.append(byte: 0x2D)
                }
                if quote { out.append(byte: 0x22) }
                scratch.samples.rewind(to: samplesMark)
            }
            if out.count > before { lastWasSpace = false }
        }
        let text = out.bytes(from: mark)
        id.append(UnsafeRawBufferPointer(rebasing: text.prefix(HTTPUniqueIDFormat.maximumLength)))
        out.rewind(to: mark)
        return id.bytes(from: 0)
    }

    private func appendUniqueIDVariable(_ variable: HTTPUniqueIDFormat.Variable, hex: Bool) {
        let out = scratch.text
        func number(_ v: Int, digits: Int) {
            if hex { appendHex(UInt64(truncatingIfNeeded: v), digits: digits) } else { out.appendDecimal(v) }
        }
        func address(_ endpoint: SocketEndpoint?) {
            guard let endpoint else { out.append(byte: 0x2D); return }
            let bits = HTTPAddressBits(endpoint.address)
            guard hex else { out.appendAddress(bits); return }
            if bits.isV6 {
                appendHex(bits.high, digits: 16)
                appendHex(bits.low, digits: 16)
            } else {
                appendHex(UInt64(bits.v4), digits: 8)
            }
        }
        switch variable {
        case .clientIP: address(connection.pointee.client)
        case .clientPort:
            if let c = connection.pointee.client { number(Int(c.port), digits: 4) } else { out.append(byte: 0x2D) }
        case .frontendIP: address(connection.pointee.localEndpoint)
        case .frontendPort:
            if let l = connection.pointee.localEndpoint { number(Int(l.port), digits: 4) } else { out.append(byte: 0x2D) }
        case .acceptSeconds:
            number(Int(wallClock()), digits: 8)
        case .acceptMilliseconds:
            let ms = Int((wallClock() * 1000).truncatingRemainder(dividingBy: 1000))
            if hex { appendHex(UInt64(ms), digits: 2) } else {
                if ms < 100 { out.append(byte: HTTPByte.zero) }
                if ms < 10 { out.append(byte: HTTPByte.zero) }
                out.appendDecimal(ms)
            }
        case .requestCounter:
            number(HTTPUniqueIDFormat.requestCounter.wrappingAdd(1, ordering: .relaxed).oldValue, digits: 4)
        case .pid:
            number(Int(getpid()), digits: 4)
        case .hostname:
            var name = HTTPUniqueIDFormat.hostname
            name.withUTF8 { out.append(UnsafeRawBufferPointer($0)) }
        case .rule(let v):
            appendVariable(v, .raw)
        }
    }

    /// Uppercase hexadecimal, at least `digits` digits (HAProxy's `%04X`, `%08X`).
    private func appendHex(_ value: UInt64, digits: Int) {
        let out = scratch.text
        var n = 1
        while n < 16 && value >> (4 * UInt64(n)) != 0 { n += 1 }
        var i = max(n, digits)
        while i > 0 {
            i -= 1
            let nibble = UInt8(truncatingIfNeeded: i < 16 ? value >> (4 * UInt64(i)) & 0xF : 0)
            out.append(byte: HTTPRules.hexDigit(nibble))
        }
    }

    /// `uuid`: a version 4 UUID (RFC 9562) from the system's random generator, in `buffer`.
    static func appendUUID(_ buffer: HTTPScratchBuffer) -> UnsafeRawBufferPointer? {
        var generator = SystemRandomNumberGenerator()
        var high = generator.next() as UInt64
        var low = generator.next() as UInt64
        high = (high & ~0xF000) | 0x4000            // version 4
        low = (low & ~(0xC000 << 48)) | (0x8000 << 48) // variant 10
        let mark = buffer.count
        for i in 0..<32 {
            if i == 8 || i == 12 || i == 16 || i == 20 { buffer.append(byte: 0x2D) }
            let word = i < 16 ? high : low
            let shift = UInt64(60 - 4 * (i % 16))
            let digit = UInt8(truncatingIfNeeded: word >> shift & 0xF)
            buffer.append(byte: digit < 10 ? 0x30 + digit : 0x61 + digit - 10)
        }
        return buffer.overflowed ? nil : buffer.bytes(from: mark)
    }
}
