import HTTP1
import ConfigModel

/// A log-format string (`set-header` values, redirect targets, `lf-string` bodies) ready to
/// render: literals as bytes, samples compiled, log variables named.
struct HTTPCompiledFormat {
    enum Part {
        case literal(UnsafeRawBufferPointer)
        case sample(HTTPCompiledSample)
        case variable(Variable)
    }

    /// The log variables a format may use in strata (`%ci`, `%cp`, …); others render as nothing.
    enum Variable {
        case clientIP, clientPort, frontendIP, frontendPort, frontendName, backendName
        case method, uri, path, query, version, requestLine, status
        case unknown

        init(_ name: String) {
            switch name {
            case "ci": self = .clientIP
            case "cp": self = .clientPort
            case "fi": self = .frontendIP
            case "fp": self = .frontendPort
            case "f", "ft": self = .frontendName
            case "b": self = .backendName
            case "HM": self = .method
            case "HU": self = .uri
            case "HP": self = .path
            case "HQ": self = .query
            case "HV": self = .version
            case "r": self = .requestLine
            case "ST": self = .status
            default: self = .unknown
            }
        }
    }

    /// Where the rendered text goes: a field value, a request target, or text sent as it is.
    enum Context {
        /// Sample bytes that field content may not hold (CTLs but HTAB, DEL) are written `%XX`.
        case fieldValue
        /// Also SP: the target and method go on the request line.
        case requestLine
        case raw
    }

    let parts: [Part]
    /// The whole text when the format has no sample or variable.
    let literal: UnsafeRawBufferPointer?

    init(_ format: FormatString, constants: HTTPRuleConstants) {
        var parts: [Part] = []
        for part in format.parts {
            switch part {
            case .literal(let text): parts.append(.literal(constants.bytes(text)))
            case .sample(let expression): parts.append(.sample(HTTPCompiledSample(expression, constants: constants)))
            case .variable(let name): parts.append(.variable(Variable(name)))
            }
        }
        self.parts = parts
        if format.isLiteral {
            var text: [UInt8] = []
            for case .literal(let s) in format.parts { text += Array(s.utf8) }
            literal = constants.bytes(text)
        } else {
            literal = nil
        }
    }

    /// A constant format.
    init(literal text: String, constants: HTTPRuleConstants) {
        let bytes = constants.bytes(text)
        parts = [.literal(bytes)]
        literal = bytes
    }
}

extension HTTPEvaluation {
    /// Renders `format` into the scratch's text buffer (a literal format is returned as it is);
    /// nil when the result does not fit.
    func render(_ format: HTTPCompiledFormat, _ context: HTTPCompiledFormat.Context) -> UnsafeRawBufferPointer? {
        if let literal = format.literal { return literal }
        let out = scratch.text
        let mark = out.count
        for part in format.parts {
            switch part {
            case .literal(let bytes):
                out.append(bytes)
            case .sample(let sample):
                let samplesMark = scratch.samples.count
                if let value = value(sample), let text = bytes(of: value) {
                    appendEncoded(text, context)
                }
                scratch.samples.rewind(to: samplesMark)
            case .variable(let variable):
                appendVariable(variable, context)
            }
        }
        return out.overflowed ? nil : out.bytes(from: mark)
    }

    private func appendEncoded(_ text: UnsafeRawBufferPointer, _ context: HTTPCompiledFormat.Context) {
        let out = scratch.text
        if case .raw = context {
            out.append(text)
            return
        }
        let encodeSpace: Bool
        if case .requestLine = context { encodeSpace = true } else { encodeSpace = false }
        var run = 0
        var i = 0
        while i < text.count {
            let b = text[i]
            let keep = encodeSpace ? (b > 0x20 && b != 0x7F) : HTTPByte.isFieldContent(b)
            if !keep {
                out.append(HTTPRuleBytes.slice(text, run..<i))
                out.append(byte: 0x25)
                out.append(byte: HTTPRules.hexDigit(b >> 4))
                out.append(byte: HTTPRules.hexDigit(b & 0xF))
                run = i + 1
            }
            i += 1
        }
        out.append(HTTPRuleBytes.slice(text, run..<text.count))
    }

    func appendVariable(_ variable: HTTPCompiledFormat.Variable, _ context: HTTPCompiledFormat.Context) {
        let out = scratch.text
        switch variable {
        case .clientIP:
            if let client = connection.pointee.client { out.appendAddress(HTTPAddressBits(client.address)) }
        case .clientPort:
            if let client = connection.pointee.client { out.appendDecimal(Int(client.port)) }
        case .frontendIP:
            if let local = connection.pointee.localEndpoint { out.appendAddress(HTTPAddressBits(local.address)) }
        case .frontendPort:
            if let local = connection.pointee.localEndpoint { out.appendDecimal(Int(local.port)) }
        case .frontendName:
            out.append(frontend.nameBytes)
        case .backendName:
            // Before `use_backend`, HAProxy's backend is the frontend itself.
            out.append((backend ?? frontend).nameBytes)
        case .method:
            if let request { appendEncoded(request.method, context) }
        case .uri:
            if let request { appendEncoded(request.target, context) }
        case .path:
            if let request {
                let target = request.target
                if let path = HTTPTargetParts(target).path { appendEncoded(HTTPRuleBytes.slice(target, path), context) }
            }
        case .query:
            if let request {
                let target = request.target
                if let mark = HTTPTargetParts(target).queryMark {
                    appendEncoded(HTTPRuleBytes.slice(target, mark..<target.count), context)
                }
            }
        case .version:
            if let request { out.append(request.version == .http11 ? "HTTP/1.1" : "HTTP/1.0") }
        case .requestLine:
            if let request {
                appendEncoded(request.method, context)
                out.append(byte: HTTPByte.space)
                appendEncoded(request.target, context)
                out.append(request.version == .http11 ? " HTTP/1.1" : " HTTP/1.0")
            }
        case .status:
            if let response { out.appendDecimal(response.status) }
        case .unknown:
            break
        }
    }
}
