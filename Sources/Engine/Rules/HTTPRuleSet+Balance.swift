import HTTP1
import ConfigModel

extension HTTPRuleSet {
    /// The hash `Balancer` maps to a server for `balance uri`, `url_param` and `hdr` (call it on
    /// the backend's rule set, after `processRequest`: the rules' rewrites count), or nil when the
    /// request lacks what the algorithm hashes (the caller falls back to round robin) or the
    /// algorithm hashes nothing of the request.
    ///
    /// - `uri`: the target up to the `?` (the whole target with `whole`);
    /// - `url_param NAME`: the first non-empty value of that query parameter;
    /// - `hdr(NAME)`: the first non-empty value of that field.
    ///
    /// The hash is HAProxy's default, SDBM, on 32 bits.
    func balanceKey(for algorithm: BalanceAlgorithm, _ head: borrowing HTTPHead, input: UnsafeRawBufferPointer,
                           connection: HTTPConnectionInfo, scratch: HTTPRuleScratch) -> UInt64? {
        scratch.beginRule()
        return withUnsafePointer(to: head) { head -> UInt64? in
            let request = HTTPMessageView(input: input, head: head, edits: scratch.request)
            switch algorithm {
            case .hash:
                // HAProxy hashes the sample cast to binary: text as it is, an integer as 8 bytes
                // big-endian, an address as its 4 or 16 bytes; no value: round robin.
                guard let sample = balanceSample else { return nil }
                return withUnsafePointer(to: connection) { connection -> UInt64? in
                    let ev = HTTPEvaluation(request: request, response: nil, connection: connection, scratch: scratch,
                                            frontend: self, backend: self)
                    switch ev.value(sample) {
                    case nil: return nil
                    case .bytes(let bytes)?: return HTTPRuleSet.sdbm(bytes)
                    case .integer(let n)?: return withUnsafeBytes(of: Int64(n).bigEndian) { HTTPRuleSet.sdbm($0) }
                    case .boolean(let b)?: return withUnsafeBytes(of: Int64(b ? 1 : 0).bigEndian) { HTTPRuleSet.sdbm($0) }
                    case .address(let a)?:
                        if !a.isV6 { return withUnsafeBytes(of: a.v4.bigEndian) { HTTPRuleSet.sdbm($0) } }
                        return withUnsafeBytes(of: (a.high.bigEndian, a.low.bigEndian)) { HTTPRuleSet.sdbm($0) }
                    }
                }
            case .uri(let whole):
                let target = request.target
                let end = whole ? target.count : (HTTPTargetParts(target).queryMark ?? target.count)
                return HTTPRuleSet.sdbm(HTTPRuleBytes.slice(target, 0..<end))
            case .urlParameter(let name):
                let target = request.target
                guard let query = HTTPTargetParts(target).query,
                      let name = scratch.bytes(of: name, lowercased: false),
                      let value = HTTPQueryParameters.firstValue(named: name, in: HTTPRuleBytes.slice(target, query)),
                      !value.isEmpty else { return nil }
                return HTTPRuleSet.sdbm(value)
            case .header(let name):
                guard let name = scratch.bytes(of: name, lowercased: true),
                      let value = request.firstValue(of: name, split: true), !value.isEmpty else { return nil }
                return HTTPRuleSet.sdbm(value)
            default:
                return nil
            }
        }
    }

    /// HAProxy's `hash_sdbm`.
    static func sdbm(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hash: UInt32 = 0
        for b in bytes {
            hash = UInt32(b) &+ (hash << 6) &+ (hash << 16) &- hash
        }
        return UInt64(hash)
    }
}

extension HTTPRuleScratch {
    /// A configuration string's bytes in the sample buffer (no allocation for native strings).
    func bytes(of string: String, lowercased: Bool) -> UnsafeRawBufferPointer? {
        let mark = samples.count
        let ok = string.utf8.withContiguousStorageIfAvailable { utf8 -> Bool in
            let raw = UnsafeRawBufferPointer(utf8)
            return lowercased ? samples.append(raw, mapping: HTTPByte.lowercased) : samples.append(raw)
        } ?? Array(string.utf8).withUnsafeBytes { raw -> Bool in
            lowercased ? samples.append(raw, mapping: HTTPByte.lowercased) : samples.append(raw)
        }
        return ok ? samples.bytes(from: mark) : nil
    }
}
