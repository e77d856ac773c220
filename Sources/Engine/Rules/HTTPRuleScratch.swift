import ConfigModel
/// What one client connection's HTTP sessions need for the rules, kept from one request to the
/// next so that steady-state requests allocate nothing: buffers for computed samples, rendered
/// format strings, local responses and captures (each allocated once, on first use, with the
/// capacity given here), the request's and the response's `HTTPHeadEdits`, and the few facts
/// that go from the request to its response (the server the persistence cookie named, whether the
/// answer may be cached).
///
/// One request at a time: `HTTPRuleSet.processRequest` starts a new request and invalidates what
/// the previous one left here (its local response and captures included).
final class HTTPRuleScratch {
    /// Samples computed while evaluating one rule (converters, `base`, numbers as text).
    let samples: HTTPScratchBuffer
    /// Format strings rendered while evaluating one rule.
    let text: HTTPScratchBuffer
    /// The local response of the current request (redirect, return).
    let reply: HTTPScratchBuffer
    /// A local answer as `http-after-response` rules rewrote it, and its head before (allocated
    /// when a proxy has such rules).
    let afterReply: HTTPScratchBuffer
    let afterInput: HTTPScratchBuffer
    /// `%hr` and `%hs` as the log prints them (`{value|value}`), made from the slots.
    let captures: HTTPScratchBuffer
    let responseCaptures: HTTPScratchBuffer
    /// `early-hint`: the `103 Early Hints` answers made by the rules, for the session to send
    /// before anything else; `earlyHintOpen`: the last one still takes fields.
    let earlyHints: HTTPScratchBuffer
    var earlyHintOpen = false
    /// The request's target then its Host, kept for `http-response redirect prefix|scheme`
    /// (`keptHostStart`: where the Host begins, nil without one).
    let kept: HTTPScratchBuffer
    var keptTargetCount = 0
    var keptHostStart: Int?
    var hasKeptRequest = false
    /// The frontend's request and response capture slots.
    let requestSlots = HTTPCaptureSlots()
    let responseSlots = HTTPCaptureSlots()
    /// `capture cookie`: slot 0 the request's cookie (`%CC`), slot 1 the response's (`%CS`).
    let cookieSlots = HTTPCaptureSlots()
    /// The request's unique ID (`unique-id-format`), once made (`uniqueIDMade`; the session
    /// clears it when a request starts, before any rule).
    let uniqueID = HTTPScratchBuffer(capacity: HTTPUniqueIDFormat.maximumLength)
    var uniqueIDMade = false
    /// The request's rewrites.
    let request: HTTPHeadEdits
    /// The response's rewrites.
    let response: HTTPHeadEdits

    /// The index (in the backend's `servers`) of the first server whose `cookie` value the
    /// request's persistence cookie carried, if any.
    var cookieServer: Int?
    /// That cookie's last-seen and first-seen dates (`maxidle`/`maxlife`, seconds; 0 when absent).
    var cookieLastDate = 0
    var cookieFirstDate = 0
    /// The wall clock persistence cookies' dates are read against (seconds); nil: the system's.
    /// Tests set it.
    var clock: (() -> Int)?
    /// Whether the response may be cached, as far as the request says (HAProxy's TX_CACHEABLE
    /// after the request): a safe method.
    var requestCacheable = false
    /// `set-var` values of the connection (`sess`) and of the current transaction.
    var variables: HTTPVariables = [:]
    /// `tcp-request content capture` values of the current request (or TCP session): its slot
    /// among the frontend's request captures, and the text.
    var contentCaptures: [(slot: Int, value: [UInt8])] = []
    /// Mode tcp: a payload fetch of the rule being evaluated needed bytes not there yet.
    var payloadMissing = false
    /// The index of the event loop the connection is on: the slot it reads maps through
    /// (`SharedMap.read`). Past the data loops: the control loop's slot.
    var mapSlot = Int.max
    /// `set-src`/`set-src-port`, `set-dst`/`set-dst-port` of the current request: the addresses
    /// the session takes for the rest of the request (it clears them once taken).
    var clientOverride: SocketEndpoint?
    /// `set-log-level` of the current request: a syslog level, -1 for `silent`.
    var logLevel: Int?
    /// `wait-for-body` of the current request: how long, and how many body bytes are enough.
    var waitForBody: (seconds: Double, atLeast: Int)?
    var localOverride: SocketEndpoint?
    /// `cache-use` and `cache-store` of the current request (allocated at the first `cache-use`).
    var cache: HTTPCacheRequest?

    /// `capacity`: the size of each buffer; `tune.bufsize` (a rewritten head must fit in one
    /// anyway).
    init(capacity: Int = 16384) {
        samples = HTTPScratchBuffer(capacity: capacity)
        text = HTTPScratchBuffer(capacity: capacity)
        reply = HTTPScratchBuffer(capacity: capacity)
        captures = HTTPScratchBuffer(capacity: capacity)
        earlyHints = HTTPScratchBuffer(capacity: capacity)
        kept = HTTPScratchBuffer(capacity: capacity)
        responseCaptures = HTTPScratchBuffer(capacity: capacity)
        afterReply = HTTPScratchBuffer(capacity: capacity)
        afterInput = HTTPScratchBuffer(capacity: capacity)
        request = HTTPHeadEdits(capacity: capacity)
        response = HTTPHeadEdits(capacity: capacity)
    }

    /// The request capture slots of the current request, formatted for the log's `%hr`:
    /// `{v1|v2}`, each truncated to its `len` and with `"#{|}` and non-printable bytes written
    /// `#XX`. Empty when the frontend has no slot.
    var capturedRequestHeaders: UnsafeRawBufferPointer {
        captures.reset()
        requestSlots.format(into: captures)
        return captures.bytes(from: 0)
    }
    /// The response capture slots of the current request's answer, as `%hs` prints them.
    var capturedResponseHeaders: UnsafeRawBufferPointer {
        responseCaptures.reset()
        responseSlots.format(into: responseCaptures)
        return responseCaptures.bytes(from: 0)
    }

    /// The server answering the request (`srv_id`, `srv_name`), set before the response rules.
    var answeringServer: (id: Int, name: String)?

    func beginRequest() {
        answeringServer = nil
        samples.reset()
        text.reset()
        reply.reset()
        earlyHints.reset()
        earlyHintOpen = false
        hasKeptRequest = false
        requestSlots.clear()
        responseSlots.clear()
        cookieSlots.clear()
        request.reset()
        response.reset()
        cookieServer = nil
        cookieLastDate = 0
        cookieFirstDate = 0
        requestCacheable = false
        logLevel = nil
        waitForBody = nil
        if !contentCaptures.isEmpty { contentCaptures.removeAll(keepingCapacity: true) }
        cache?.reset()
        forgetTransactionVariables()
    }

    func beginResponse() {
        samples.reset()
        text.reset()
        response.reset()
    }

    /// Forgets the samples and texts of the previous rule.
    @inline(__always)
    func beginRule() {
        samples.reset()
        text.reset()
    }
}

extension HTTPRuleScratch {
    /// Keeps the request's target and Host (a head fits the buffer, so they do).
    func keepRequest(_ request: HTTPMessageView) {
        kept.reset()
        kept.append(request.target)
        keptTargetCount = kept.count
        keptHostStart = nil
        if let host = request.firstValue(of: HTTPRuleBytes.literal("host"), split: true) {
            keptHostStart = kept.count
            kept.append(host)
        }
        hasKeptRequest = !kept.overflowed
    }

    /// The kept target and Host (valid until the next request), nil when none was kept.
    var keptRequest: (target: UnsafeRawBufferPointer, host: UnsafeRawBufferPointer?)? {
        guard hasKeptRequest else { return nil }
        let all = kept.bytes(from: 0)
        return (HTTPRuleBytes.slice(all, 0..<keptTargetCount), keptHostStart.map { HTTPRuleBytes.slice(all, $0..<all.count) })
    }
}
