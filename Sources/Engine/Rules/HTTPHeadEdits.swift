import HTTP1
/// The rewrites the rules made to one message head (the method, the target, the status, the
/// fields), kept apart from the received bytes, which are never modified. Fetches read through it
/// (a rule sees what earlier rules rewrote, as in HAProxy), and the head writers apply it.
///
/// Reusable storage, owned by a session's `HTTPRuleScratch`: the field list keeps its capacity and
/// rewritten bytes go to a fixed buffer allocated once. A rewrite that does not fit sets `failed`
/// (HAProxy's failed rewrite: the request is answered with a 500).
final class HTTPHeadEdits {
    /// Bytes either in the received input or in `storage`, as offsets (the input may be presented
    /// at another address between calls, offsets stay right).
    struct Bytes: Hashable {
        var start: UInt32
        var count: UInt32
        var inStorage: Bool

        @inline(__always)
        init(_ range: Range<Int>, inStorage: Bool) {
            start = UInt32(truncatingIfNeeded: range.lowerBound)
            count = UInt32(truncatingIfNeeded: range.count)
            self.inStorage = inStorage
        }

        @inline(__always)
        var range: Range<Int> { Int(start)..<Int(start) + Int(count) }
    }

    /// One field line of the rewritten head.
    struct Field {
        var name: Bytes
        var value: Bytes
        var knownName: HTTPFieldName
        /// The index of the received field this line is, unchanged (nil once rewritten, or added).
        var original: Int32?
        var deleted = false
    }

    let storage: HTTPScratchBuffer
    /// `set-method`.
    @exclusivity(unchecked) var method: Bytes?
    /// `set-path`, `set-query`, `set-uri`: the whole new target.
    @exclusivity(unchecked) var target: Bytes?
    /// `set-status` (responses).
    @exclusivity(unchecked) var status: Int?
    @exclusivity(unchecked) var reason: Bytes?
    /// The field lines, once a rule touched them (`fieldsEdited`); before that, the head's.
    @exclusivity(unchecked) private(set) var fields: [Field] = []
    @exclusivity(unchecked) private(set) var fieldsEdited = false
    /// A rewrite did not fit in `storage`.
    @exclusivity(unchecked) var failed = false

    init(capacity: Int) {
        storage = HTTPScratchBuffer(capacity: capacity)
        fields.reserveCapacity(32)
    }

    /// Whether any rewrite was recorded.
    var isEmpty: Bool { method == nil && target == nil && status == nil && !fieldsEdited }

    func reset() {
        storage.reset()
        method = nil
        target = nil
        status = nil
        reason = nil
        fields.removeAll(keepingCapacity: true)
        fieldsEdited = false
        failed = false
    }

    /// Copies `bytes` into the storage.
    func store(_ bytes: UnsafeRawBufferPointer) -> Bytes? {
        let start = storage.count
        guard storage.append(bytes) else {
            failed = true
            return nil
        }
        return Bytes(start..<storage.count, inStorage: true)
    }

    @inline(__always)
    func resolve(_ bytes: Bytes, _ input: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        bytes.inStorage ? storage.bytes(bytes.range) : HTTPRuleBytes.slice(input, bytes.range)
    }

    /// Takes over the head's field list, so that rules can change it.
    func editFields(of head: UnsafePointer<HTTPHead>) {
        guard !fieldsEdited else { return }
        fieldsEdited = true
        var i: Int32 = 0
        for field in head.pointee.fields {
            fields.append(Field(name: Bytes(field.name, inStorage: false), value: Bytes(field.value, inStorage: false),
                                knownName: field.knownName, original: i))
            i += 1
        }
    }

    func delete(at index: Int) {
        fields[index].deleted = true
    }

    func replaceValue(at index: Int, with value: Bytes) {
        fields[index].value = value
        fields[index].original = nil
    }

    func append(name: Bytes, value: Bytes, knownName: HTTPFieldName) {
        fields.append(Field(name: name, value: value, knownName: knownName, original: nil))
    }
}
