import ConfigModel

/// `set-var` and `var()`: HAProxy's variables. A variable's name is interned once, when a rule
/// set is compiled, into a key; the values live in the session's scratch (scopes `sess`, `txn`,
/// `req`, `res`: one client connection's, read and written by its loop alone) or in the
/// process's store (`proc`: shared by every loop, behind a lock; rare).
struct HTTPVariableKey: Hashable {
    enum Scope: UInt8 {
        case proc, sess, txn, req, res
    }
    let scope: Scope
    let id: Int

    /// Interned names: the same name gives the same key in every rule set and generation.
    private static let names = Locked<[String: Int]>([:])

    init(_ name: String) {
        let dot = name.firstIndex(of: ".")!
        switch name[..<dot] {
        case "proc": scope = .proc
        case "sess": scope = .sess
        case "req": scope = .req
        case "res": scope = .res
        default: scope = .txn
        }
        id = HTTPVariableKey.names.withLock { table in
            if let id = table[name] { return id }
            table[name] = table.count
            return table.count - 1
        }
    }
}

/// A variable's value, owned (a sample's bytes point into a message that will be gone).
enum HTTPVariableValue {
    case bytes([UInt8])
    case integer(Int)
    case boolean(Bool)
    case address(HTTPAddressBits)
}

/// A connection's or a transaction's variables.
typealias HTTPVariables = [HTTPVariableKey: HTTPVariableValue]

extension HTTPVariableValue {
    /// The value as a log line prints it (HAProxy's cast to string).
    var text: String {
        switch self {
        case .bytes(let b): String(decoding: b, as: UTF8.self)
        case .integer(let n): String(n)
        case .boolean(let b): b ? "1" : "0"
        case .address(let a): a.ipAddress.description
        }
    }
}

extension HTTPVariables {
    /// `var(NAME)` as a log line reads it: `proc` from the process's store.
    func value(_ key: HTTPVariableKey) -> HTTPVariableValue? {
        key.scope == .proc ? HTTPProcessVariables.store.withLock { $0[key.id] } : self[key]
    }
}

/// The `proc` scope: one store for the process.
enum HTTPProcessVariables {
    static let store = Locked<[Int: HTTPVariableValue]>([:])
}

extension HTTPRuleScratch {
    func variable(_ key: HTTPVariableKey) -> HTTPVariableValue? {
        key.scope == .proc ? HTTPProcessVariables.store.withLock { $0[key.id] } : variables[key]
    }

    func setVariable(_ key: HTTPVariableKey, _ value: HTTPVariableValue?) {
        if key.scope == .proc {
            HTTPProcessVariables.store.withLock { $0[key.id] = value }
        } else {
            variables[key] = value
        }
    }

    /// A new transaction: `txn`, `req` and `res` variables go; `sess` ones stay with the connection.
    func forgetTransactionVariables() {
        guard !variables.isEmpty else { return }
        variables = variables.filter { $0.key.scope == .sess }
    }
}

extension HTTPEvaluation {
    /// `set-var(NAME) EXPR`: the expression's value, copied; no value unsets nothing (HAProxy
    /// leaves the variable as it was).
    func setVariable(_ key: HTTPVariableKey, _ sample: HTTPCompiledSample) {
        guard let value = value(sample) else { return }
        let stored: HTTPVariableValue
        switch value {
        case .bytes(let b): stored = .bytes(Array(b))
        case .integer(let n): stored = .integer(n)
        case .boolean(let b): stored = .boolean(b)
        case .address(let a): stored = .address(a)
        }
        scratch.setVariable(key, stored)
    }

    /// `capture SAMPLE len N | id N`: the sample as text into a capture slot (truncated there);
    /// no value leaves the slot as it was, as HAProxy.
    func capture(_ sample: HTTPCompiledSample, into slots: HTTPCaptureSlots, slot: Int) {
        let mark = scratch.samples.count
        if let value = value(sample), let text = bytes(of: value) { slots.store(slot, text) }
        scratch.samples.rewind(to: mark)
    }

    /// `early-hint NAME FMT`: a field of the open `103 Early Hints` (opened here if none is),
    /// closed when `closes`. HTTP/1.1 requests only, as HAProxy.
    func earlyHint(_ request: HTTPMessageView, _ name: UnsafeRawBufferPointer, _ value: HTTPCompiledFormat, closes: Bool) {
        guard request.version == .http11 else { return }
        let out = scratch.earlyHints
        if !scratch.earlyHintOpen {
            out.append("HTTP/1.1 103 Early Hints\r\n")
            scratch.earlyHintOpen = true
        }
        if let text = render(value, .fieldValue) {
            out.append(name)
            out.append(": ")
            out.append(text)
            out.append("\r\n")
        }
        if closes {
            out.append("\r\n")
            scratch.earlyHintOpen = false
        }
    }

    /// `set-var-fmt(NAME) FMT`: the rendered string.
    func setVariable(_ key: HTTPVariableKey, _ format: HTTPCompiledFormat) {
        guard let text = render(format, .fieldValue) else { return }
        scratch.setVariable(key, .bytes(Array(text)))
    }

    /// `var(NAME)`: bytes are copied into the rule's samples (valid until the next rule).
    func variableSample(_ key: HTTPVariableKey) -> HTTPSample? {
        switch scratch.variable(key) {
        case nil: return nil
        case .integer(let n)?: return .integer(n)
        case .boolean(let b)?: return .boolean(b)
        case .address(let a)?: return .address(a)
        case .bytes(let b)?:
            let mark = scratch.samples.count
            let ok = b.withUnsafeBytes { scratch.samples.append($0) }
            return ok ? .bytes(scratch.samples.bytes(from: mark)) : nil
        }
    }
}

extension HTTPEvaluation {
    /// `set-src`, `set-src-port`, `set-dst`, `set-dst-port`: the connection's address or port as
    /// the expression gives it (an address, or text that is one; an integer port), keeping the
    /// other half, as HAProxy; a value of another kind changes nothing. Request rules only: their
    /// evaluation's connection is `processRequest`'s own copy, and the session takes the change
    /// from the scratch for the rest of the request (HAProxy's stream: the next request on the
    /// connection starts from the accepted addresses).
    func setAddress(_ part: ConnectionAddressPart, _ sample: HTTPCompiledSample) {
        guard let value = value(sample) else { return }
        let info = UnsafeMutablePointer(mutating: connection)
        switch part {
        case .source, .destination:
            let bits: HTTPAddressBits
            switch value {
            case .address(let a): bits = a
            case .bytes(let b):
                guard let a = HTTPAddressBits.parse(b) else { return }
                bits = a
            default: return
            }
            let address = bits.ipAddress
            if part == .source {
                let new = SocketEndpoint(address: address, port: info.pointee.client?.port ?? 0)
                info.pointee.client = new
                scratch.clientOverride = new
            } else {
                let new = SocketEndpoint(address: address, port: info.pointee.localEndpoint?.port ?? 0)
                info.pointee.local = new
                scratch.localOverride = new
            }
        case .sourcePort, .destinationPort:
            guard let n = integer(of: value), n >= 0, n <= 65535 else { return }
            if part == .sourcePort {
                guard var endpoint = info.pointee.client else { return }
                endpoint.port = UInt16(n)
                info.pointee.client = endpoint
                scratch.clientOverride = endpoint
            } else {
                guard var endpoint = info.pointee.localEndpoint else { return }
                endpoint.port = UInt16(n)
                info.pointee.local = endpoint
                scratch.localOverride = endpoint
            }
        }
    }
}

extension HTTPAddressBits {
    /// The model's address.
    var ipAddress: IPAddress {
        guard isV6 else { return .v4(v4) }
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 {
            bytes[i] = UInt8(truncatingIfNeeded: high >> UInt64(56 - 8 * i))
            bytes[8 + i] = UInt8(truncatingIfNeeded: low >> UInt64(56 - 8 * i))
        }
        return .v6(bytes)
    }
}
