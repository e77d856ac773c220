import HTTP1
import CLibEV
import ConfigModel
import Glibc

extension HTTPSession {
    // MARK: client input

    func clientReadable() {
        guard !clientEOF else { return }
        let pool = loop.buffers
        let buffer = clientIn.take(pool)
        if clientIn.end == pool.size { compactClientIn() }
        let space = pool.size - clientIn.end
        guard space > 0 else { return }
        let n = clientRead(buffer + clientIn.end, space)
        if n > 0 {
            // Request bytes for a server that had nothing to read: its timeout starts now.
            if phase == .exchange && requestParsed == clientIn.start && serverOutSent >= serverOut.end { lastServerActivity = loop.now }
            clientIn.end += n
            lastClientActivity = loop.now
            countIn(n)
        } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
            clientInputEnded(error: n < 0)
            return
        } else {
            clientIn.releaseIfEmpty(pool)
            return
        }
        switch phase {
        case .idle, .head:
            if requests == 0 && stream == nil && clientTLS == nil, let preface = h2Preface() {
                // HTTP/2 with prior knowledge on a clear HTTP listener, detected as HAProxy does.
                guard preface else { return }  // part of it: wait for the rest
                let bytes = Array(UnsafeRawBufferPointer(start: clientIn.base! + clientIn.start, count: clientIn.count))
                return becomeH2(nil, preface: bytes)
            }
            parseRequestHead()
        case .exchange, .waitingServer:
            if !transaction.requestComplete { parseRequestBody() }
            if transaction.waitingForBody { bodyBuffered() }
            if phase == .exchange { flushToServer() }
        case .tunnel:
            requestParsed = clientIn.end
            flushToServer()
        case .closing, .closed:
            // Nothing more is read from a closing connection.
            clientIn.start = clientIn.end
            requestParsed = clientIn.end
        }
    }

    private func clientInputEnded(error: Bool) {
        clientEOF = true
        switch phase {
        case .idle:
            close()
        case .head:
            // A request cut short before its head ended: nothing to answer (HAProxy logs CR).
            transaction.termination = TerminationState(cause: UInt8(ascii: "C"), phase: UInt8(ascii: "R"))
            close()
        case .waitingServer where transaction.tarpitAnswer == nil && backend?.proxy.http.abortOnClose == true:
            // `option abortonclose`: still queued or connecting, so nothing reached the server:
            // the request is dropped (HAProxy's CQ or CC).
            let connecting = transaction.connector.server != nil
            transaction.termination = TerminationState(cause: UInt8(ascii: "C"), phase: UInt8(ascii: connecting ? "C" : "Q"))
            abortTransaction()
        case .waitingServer, .exchange:
            if !transaction.requestComplete {
                transaction.termination = TerminationState(cause: UInt8(ascii: "C"), phase: UInt8(ascii: transaction.responseStarted ? "D" : "H"))
                abortTransaction()
            } else if phase == .exchange {
                // A client that half-closed after its request still gets the response.
                transaction.closeAfterResponse = true
            }
        case .tunnel:
            if clientIn.isEmpty, let c = serverConnection { serverShutdownWrite(c) }
            tunnelMaybeDone()
        case .closing:
            close()
        case .closed:
            break
        }
    }

    /// Moves unsent bytes to the front of the client buffer (keeping the parser's view relative).
    private func compactClientIn() {
        guard clientIn.start > 0, let base = clientIn.base else { return }
        let count = clientIn.count
        if count > 0 { memmove(base, base + clientIn.start, count) }
        requestParsed -= clientIn.start
        clientIn.end = count
        clientIn.start = 0
    }

    func parseRequestHead() {
        guard let base = clientIn.base, requestParsed < clientIn.end else {
            clientIn.releaseIfEmpty(loop.buffers)
            return
        }
        if phase == .idle {
            // A request starts: everything of the last one is gone.
            phase = .head
            transaction = HTTPTransaction(headStartedAt: loop.now)
            armTimer()
        }
        let input = UnsafeRawBufferPointer(start: base + requestParsed, count: clientIn.end - requestParsed)
        let action = requestParser.parse(input)
        switch action {
        case .needMore:
            if clientIn.start > 0 && clientIn.end == loop.buffers.size { compactClientIn() }
        case .error(let error):
            requestFailed(error, input: input)
        case .headersComplete(let headLength):
            startTransaction(head: UnsafeRawBufferPointer(start: base + requestParsed, count: headLength))
        default:
            // Between messages the parser returns a head first.
            break
        }
    }

    private func requestFailed(_ error: HTTPParseError, input: UnsafeRawBufferPointer) {
        // The request could not be understood: answer and close, as HAProxy does.
        let frontend = servingFrontend
        if generation == nil, let frontend { begin(frontend) }
        transaction.termination = TerminationState(cause: UInt8(ascii: "P"), phase: UInt8(ascii: "R"))
        frontend?.counters[loop].requestErrors += 1
        if let frontend {
            // `show errors`: what was received, and where the parser stopped.
            worker.engine.metrics.errors.record(StatsErrorCapture(
                time: wallClock(), isResponse: false, proxy: frontend.name, proxyID: frontend.proxy.id,
                frontend: (frontend.name, frontend.proxy.id), backend: nil, server: nil, event: 0,
                source: clientAddress?.description ?? "unix", bytes: Array(input), position: error.offset,
                bufferSize: loop.buffers.size))
        }
        transaction.requestLine = "<BADREQ>"
        transaction.closeAfterResponse = true
        respondLocally(status: error.status)
    }

    /// The frontend a request arriving now is served by: the listener's, or the one a released
    /// listener left this connection with.
    var servingFrontend: Frontend? { listener.frontend ?? lingeringFrontend }

    // MARK: a request

    private func startTransaction(head input: UnsafeRawBufferPointer) {
        if generation == nil {
            // The request picks its generation now that its head is complete: the canary's for
            // the loop's canary share, the active one's otherwise (a lingering connection's
            // listener is gone: the frontend it was left with). A persistence cookie naming a
            // server only one of the two generations has pins the request to it (`CanaryPins`).
            let picked: Frontend?
            if listener.frontend == nil {
                picked = lingeringFrontend
            } else if let canary = listener.canaryFrontend, let pins = worker.canaryPins,
                      let toCanary = pins.side(of: requestParser.head.fields, input: input) {
                picked = toCanary ? canary : listener.frontend
            } else {
                picked = listener.pick()
            }
            guard let frontend = picked, frontend.proxy.mode == .http || upgradedBackend != nil else {
                // The listener now serves TCP: this connection's HTTP has nowhere to go.
                close()
                return
            }
            begin(frontend)
        }
        guard let frontend else { return }
        startRequest(input, frontend: frontend)
    }

    private func startRequest(_ input: UnsafeRawBufferPointer, frontend: Frontend) {
        transaction.headReceived = true
        scratch?.uniqueIDMade = false
        // The head's facts read in place (a copy of the head costs its arrays' reference counts).
        transaction.method = requestParser.head.method
        transaction.version = requestParser.head.version
        transaction.keepAlive = requestParser.head.keepAlive
        transaction.hasBody = requestParser.head.framing != .noBody
        // `Upgrade: h2c` (or h2) is dropped, as HAProxy does: a server switching the connection to
        // HTTP/2 behind strata's back would smuggle requests past its rules.
        transaction.upgradeRequested = requestParser.head.isUpgradeRequest
            && !HTTPSession.offersH2(UnsafeRawBufferPointer(rebasing: input[requestParser.head.upgrade!]))
        transaction.expectsContinue = requestParser.head.expectsContinue
        transaction.acceptsTrailers = requestParser.head.acceptsTrailers
        // Only a log line prints it: no String per request when the frontend logs nothing.
        transaction.requestLine = frontend.log.isEmpty
            ? "" : String(decoding: UnsafeRawBufferPointer(rebasing: input[requestParser.head.startLine]), as: UTF8.self)
        // The line an HTTP/2 stream was given says HTTP/1.1; its log says what the client spoke.
        if stream != nil && transaction.requestLine.hasSuffix(" HTTP/1.1") {
            transaction.requestLine = transaction.requestLine.dropLast(8) + "HTTP/2.0"
        }
        transaction.closeAfterResponse = !transaction.keepAlive || mustClose || clientEOF
            || frontend.proxy.http.connectionMode == .close

        // `monitor-uri`: HAProxy answers its probe before anything else (logged as intercepted),
        // 503 while `monitor fail` holds.
        if let uri = frontend.proxy.http.monitorURI,
           Array(uri.utf8).withUnsafeBytes({ HTTPRuleBytes.equals(UnsafeRawBufferPointer(rebasing: input[requestParser.head.target]), $0) }) {
            var failing = false
            if let rules = frontend.rules, rules.monitorFail != nil {
                let scratch = self.scratch ?? HTTPRuleScratch(capacity: loop.buffers.size)
                self.scratch = scratch
                scratch.request.reset()
                failing = rules.monitorFails(requestParser.head, input: input, connection: connectionInfo, scratch: scratch)
            }
            consumeHead(input)
            frontend.counters[loop].intercepted += 1
            transaction.termination = TerminationState(cause: UInt8(ascii: "L"), phase: UInt8(ascii: "R"))
            sendLocal(HTTPLocalResponse.errorPage(failing ? 503 : 200))
            return
        }
        let scratch = self.scratch ?? HTTPRuleScratch(capacity: loop.buffers.size)
        scratch.mapSlot = loop.index
        self.scratch = scratch
        // Stick counters: a connection's first request under a generation with tables gets its
        // tracker; counters tracked for the connection count each request.
        if tracker == nil, frontend.generation.tracksStickCounters { tracker = StickTracker() }
        if let tracker, !tracker.isEmpty { tracker.countHTTPRequest() }
        if addressesChanged {
            // The previous request's `set-src`/`set-dst` was its own.
            clientAddress = acceptedClientAddress
            localAddress = acceptedLocalAddress
            addressesChanged = false
        }
        var info = connectionInfo
        var contentRulesBegan = false
        // `tcp-request content` in mode http: evaluated for each request, on the connection (its
        // addresses, its TLS) before the HTTP rules; `reject` closes without an answer (HAProxy's).
        if let tcp = frontend.tcpRules, !tcp.content.isEmpty, upgradedBackend == nil {
            // The request starts before them: what they set (txn variables, captures) is its own.
            scratch.beginRequest()
            frontend.rules?.beginCaptures(scratch)
            contentRulesBegan = true
            let decision = tcp.evaluateContent(info, payload: UnsafeRawBufferPointer(start: nil, count: 0), mayGrow: false,
                                               scratch: scratch, httpMode: true)
            if decision == .reject || decision == .silentDrop {
                frontend.counters[loop].deniedRequests += 1
                transaction.termination = TerminationState(cause: UInt8(ascii: "P"), phase: UInt8(ascii: "R"))
                if decision == .silentDrop { dropSilently() }
                abortTransaction()
                return
            }
        }
        // A mode tcp frontend upgraded to HTTP: its backend's rules are the request's only ones.
        let upgraded = upgradedBackend.map { frontend.generation.backends[$0] ?? frontend.defaultBackend }
        var backend: Backend? = upgraded ?? nil
        if let rules = frontend.rules ?? upgraded??.rules {
            let generation = frontend.generation!
            let decision = rules.processRequest(requestParser.head, input: input, connection: info, scratch: scratch,
                                                begun: contentRulesBegan) { name in
                if let upgraded {
                    // The backend's rules, unless they ran as the first stage (no frontend rules).
                    backend = upgraded
                    return upgraded?.rules ?? rules
                }
                let chosen = name.map { generation.backends[$0] } ?? frontend.defaultBackend
                backend = chosen
                // A frontend that serves the stats page needs no backend (HAProxy checks `stats uri`
                // before switching): its own rules stand in, and a request the page does not take
                // is answered 503 below.
                return chosen?.rules ?? (frontend.proxy.stats != nil ? rules : nil)
            }
            // `early-hint`: the 103 answers go first (HTTP/2 streams get none yet). One that did not
            // fit the buffer is dropped whole.
            if scratch.earlyHints.count > 0 {
                if stream == nil, !scratch.earlyHints.overflowed, !scratch.earlyHintOpen {
                    appendToClient(scratch.earlyHints.bytes(from: 0))
                    flushToClient()
                }
                scratch.earlyHints.reset()
            }
            // `set-src`, `set-dst`: the request's addresses from now on (logs, X-Forwarded-For).
            if scratch.clientOverride != nil || scratch.localOverride != nil {
                addressesChanged = true
                if let client = scratch.clientOverride { clientAddress = client }
                if let local = scratch.localOverride { localAddress = local }
                scratch.clientOverride = nil
                scratch.localOverride = nil
                info = connectionInfo
            }
            switch decision {
            case .respond(let answer):
                consumeHead(input)
                if answer.isDenial { frontend.counters[loop].deniedRequests += 1 }
                // HAProxy's flags: a deny is the proxy refusing (PR), a return or redirect a local
                // answer (LR).
                transaction.termination = TerminationState(cause: UInt8(ascii: answer.isDenial ? "P" : "L"), phase: UInt8(ascii: "R"))
                sendLocal(answer)
                return
            case .tarpit(let answer):
                // HAProxy's tarpit: the client waits `timeout tarpit` (else `timeout connect`) for
                // its refusal, nothing is forwarded, the connection closes after it (logged PT).
                consumeHead(input)
                frontend.counters[loop].deniedRequests += 1
                transaction.termination = TerminationState(cause: UInt8(ascii: "P"), phase: UInt8(ascii: "T"))
                transaction.closeAfterResponse = true
                let t = backend?.proxy.timeouts ?? frontend.proxy.timeouts
                let delay = Double(t.tarpit ?? frontend.proxy.timeouts.tarpit ?? t.connect ?? 0) / 1000
                transaction.tarpitAnswer = answer
                transaction.tarpitUntil = loop.now + delay
                phase = .waitingServer
                tightenTimer()
                return
            case .useService(let name):
                let call = Engine.serviceCall(name, requestParser.head, input: input)
                consumeHead(input)
                if let call {
                    frontend.counters[loop].intercepted += 1
                    awaitService(call, applet: "<PROMEX>")
                } else {
                    respondLocally(status: 503)
                }
                return
            case .silentDrop:
                // HAProxy's silent-drop: nothing is answered; the client connection is reset.
                consumeHead(input)
                frontend.counters[loop].deniedRequests += 1
                transaction.termination = TerminationState(cause: UInt8(ascii: "P"), phase: UInt8(ascii: "R"))
                dropSilently()
                abortTransaction()
                return
            case .reject:
                // HAProxy's reject: the connection closes with nothing sent (a FIN, no reset),
                // counted and logged as the proxy's refusal (PR).
                consumeHead(input)
                frontend.counters[loop].deniedRequests += 1
                transaction.termination = TerminationState(cause: UInt8(ascii: "P"), phase: UInt8(ascii: "R"))
                abortTransaction()
                return
            case .forward:
                break
            }
        } else {
            backend = upgraded ?? frontend.defaultBackend
        }
        // The stats page (`stats uri` on the frontend or the chosen backend) answers here.
        if frontend.proxy.stats != nil || backend?.proxy.stats != nil,
           let page = Engine.statsPageRequest(requestParser.head, input: input, frontend: frontend, backend: backend) {
            let bodyStart = requestParsed + input.count
            let available = min(page.bodyLength, clientIn.end - bodyStart)
            let body = UnsafeRawBufferPointer(start: clientIn.base.map { $0 + bodyStart }, count: max(available, 0))
            let call = Engine.statsPageCall(page, requestParser.head, input: input, connection: info,
                                            scratch: scratch, frontend: frontend, body: body)
            consumeHead(input)
            // The form's body is read and dropped: nothing is forwarded.
            parseRequestBody()
            clientIn.start = requestParsed
            frontend.counters[loop].intercepted += 1
            awaitService(call, applet: "<STATS>")
            return
        }
        guard let backend else {
            consumeHead(input)
            respondLocally(status: 503)
            return
        }
        transaction.backend = backend
        backend.counters.sessionStarted(on: loop)
        backend.counters[loop].requests += 1
        // `http-request cache-use`: a fresh stored answer is sent, nothing goes to a server.
        if scratch.cache?.cache != nil, serveFromCache(input, frontend: frontend, backend: backend, scratch: scratch) { return }
        if let rules = backend.rules {
            if let index = rules.persistentServer(requestParser.head, input: input, scratch: scratch,
                                                  isUsable: { i in backend.configuredServers[i].acceptsPersistentTraffic(forced: backend.proxy.persist) }) {
                // The cookie's index is among the configuration's servers (never changed).
                transaction.connector.persistentServer = backend.configuredServers[index]
            } else {
                transaction.connector.hashKey = rules.balanceKey(for: backend.proxy.balance, requestParser.head, input: input,
                                                                     connection: info, scratch: scratch)
            }
        }
        // `stick match|on`: after the persistence cookie, which wins (HAProxy's SF_ASSIGNED).
        if let stick = backend.stickRules {
            let decision = stick.evaluate(requestParser.head, input: input, connection: info, scratch: scratch, backend: backend)
            if transaction.connector.persistentServer == nil, let server = decision.server {
                transaction.connector.persistentServer = server
            }
            stickStores = decision.stores
        }
        if frontend.proxy.http.compression != nil || backend.proxy.http.compression != nil {
            chooseCompression(input, frontend: frontend, backend: backend, scratch: scratch)
        }
        writeRequestHead(input, backend: backend, scratch: scratch, info: info)
        // `server … ssl sni EXPR`: rendered now, while the head is at hand.
        if let name = backend.serverName, let rules = frontendRules {
            transaction.connector.serverName = rules.render(name, requestParser.head, input: input, connection: info, scratch: scratch)
        }
        // The head was replaced by its rewritten copy; the body follows it verbatim.
        consumeHead(input)
        guard !transaction.localResponse else { return }
        phase = .waitingServer
        parseRequestBody()
        // A body refused in the bytes that came with the head was answered: nothing goes to a server.
        guard !transaction.localResponse, phase != .closed else { return }
        // `option http-buffer-request`: the body arrives (or fills the buffer) before a server is
        // chosen, within `timeout http-request`; an `Expect: 100-continue` is answered here.
        let bufferRequest = frontend.proxy.http.bufferRequest || backend.proxy.http.bufferRequest
        if (bufferRequest || scratch.waitForBody != nil) && !transaction.requestComplete {
            if !bufferRequest, let wait = scratch.waitForBody {
                guard clientIn.count < wait.atLeast else { return connectToServer() }
                transaction.bodyWaitUntil = loop.now + wait.seconds
                transaction.bodyAtLeast = wait.atLeast
            }
            transaction.waitingForBody = true
            if transaction.expectsContinue { appendToClient(HTTPSession.continueResponse); flushToClient() }
            armTimer()
            return
        }
        connectToServer()
    }

    /// A literal's bytes live in the binary: safe to share.
    nonisolated(unsafe) private static let continueResponse = UnsafeRawBufferPointer(StaticString("HTTP/1.1 100 Continue\r\n\r\n").withUTF8Buffer { $0 })

    /// The buffered body is complete, or fills the buffer: now the server is chosen.
    private func bodyBuffered() {
        guard transaction.waitingForBody, !transaction.localResponse,
              transaction.requestComplete || clientIn.end == loop.buffers.size || clientIn.count >= transaction.bodyAtLeast else { return }
        transaction.waitingForBody = false
        connectToServer()
    }

    func consumeHead(_ input: UnsafeRawBufferPointer) {
        // The head goes now: a log line printing `%ID` gets the request's ID while it is here.
        if let frontend, frontend.logPlan.printsUniqueID, let rules = frontendRules {
            let scratch = self.scratch ?? HTTPRuleScratch(capacity: loop.buffers.size)
            self.scratch = scratch
            _ = rules.uniqueIDForLog(requestParser.head, input: input, connection: connectionInfo, scratch: scratch)
        }
        requestParsed += input.count
        clientIn.start = requestParsed
    }

    /// The local address is read (getsockname) only by the rules that use it.
    var connectionInfo: HTTPConnectionInfo {
        var info = HTTPConnectionInfo(client: clientAddress, local: localAddress, tls: clientTLS, localFD: clientFD, tracker: tracker)
        info.isHTTP2 = stream != nil
        info.proxyHeader = receivedProxyHeader
        return info
    }

    /// The request head as the server receives it: the rules' rewrites applied, hop-by-hop fields
    /// removed, the proxy's own fields added, and the Connection field this session needs.
    func writeRequestHead(_ input: UnsafeRawBufferPointer, backend: Backend, scratch: HTTPRuleScratch,
                                  info: HTTPConnectionInfo) {
        let pool = loop.buffers
        serverOut.release(pool)
        let out = serverOut.take(pool)
        var writer = HTTPHeadWriter(into: UnsafeMutableRawBufferPointer(start: out, count: pool.size))
        let connectionHeader: HTTPConnectionHeader
        if transaction.upgradeRequested {
            connectionHeader = .upgrade
        } else if backend.proxy.http.connectionMode != .keepAlive || frontend?.proxy.http.connectionMode != .keepAlive {
            connectionHeader = .close
        } else {
            connectionHeader = .keepAlive
        }
        if let rules = frontendRules {
            rules.writeRequestHead(into: &writer, requestParser.head, input: input, connection: info, scratch: scratch,
                                   backend: backendStageRules, connectionHeader: connectionHeader)
        } else {
            writer.writeStartLine(requestParser.head, from: input)
            writer.writeFields(requestParser.head, from: input, removing: transaction.upgradeRequested ? .connectionOptions : .hopByHop)
            if connectionHeader == .close { writer.writeField(name: "Connection", value: "close") }
            writer.writeEndOfHead()
        }
        if writer.overflowed {
            // The rewritten head does not fit a buffer: HAProxy answers 500 here.
            serverOut.release(pool)
            respondLocally(status: 500)
            return
        }
        serverOut.start = 0
        serverOut.end = writer.count
        serverOutSent = 0
    }

    /// Parses request body bytes that arrived: what the parser consumed is forwarded verbatim.
    func parseRequestBody() {
        guard !transaction.requestComplete else { return }
        // An empty input still lets the parser report the end of a body it has fully counted.
        let base = clientIn.base ?? UnsafeMutableRawPointer(bitPattern: 1)!
        while true {
            let input = UnsafeRawBufferPointer(start: base + requestParsed, count: clientIn.end - requestParsed)
            let action = requestParser.parse(input)
            switch action {
            case .needMore:
                return
            case .error(let error):
                transaction.termination = TerminationState(cause: UInt8(ascii: "P"), phase: UInt8(ascii: "D"))
                frontend?.counters[loop].requestErrors += 1
                if transaction.responseStarted {
                    abortTransaction()
                } else {
                    transaction.closeAfterResponse = true
                    respondLocally(status: error.status)
                }
                return
            case .messageComplete(let framing):
                requestParsed += framing
                transaction.requestComplete = true
                return
            case .headersComplete:
                return
            default:
                requestParsed += action.consumed
            }
        }
    }
}

extension HTTPHeadWriter {
    /// `name: value\r\n` with a name and value known only at run time (configured header names).
    mutating func writeField(name: String, value: String) {
        var name = name
        var value = value
        name.withUTF8 { n in
            value.withUTF8 { v in
                write(UnsafeRawBufferPointer(n))
                write(": ")
                write(UnsafeRawBufferPointer(v))
                write("\r\n")
            }
        }
    }
}

extension HTTPSession {
    /// Whether an Upgrade field's value lists `h2c` or `h2` among its protocols.
    static func offersH2(_ value: UnsafeRawBufferPointer) -> Bool {
        // The list walk stops (false) at the first element naming h2c or h2 (a version after `/`
        // is part of a protocol's name).
        !HTTPFieldValue.forEachElement(value, 0..<value.count) { element in
            let name = UnsafeRawBufferPointer(rebasing: value[element])
            return !HTTPRuleBytes.equalsIgnoringCase(name, lowercase: HTTPRuleBytes.literal("h2c"))
                && !HTTPRuleBytes.equalsIgnoringCase(name, lowercase: HTTPRuleBytes.literal("h2"))
        }
    }
}

extension HTTPSession {
    static let h2Preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    /// The first bytes of a connection against HTTP/2's connection preface: true when they start
    /// with it, false when they are a part of it, nil when they are something else.
    func h2Preface() -> Bool? {
        guard let base = clientIn.base else { return nil }
        let n = min(clientIn.count, HTTPSession.h2Preface.count)
        guard n > 0, memcmp(base + clientIn.start, HTTPSession.h2Preface, n) == 0 else { return nil }
        return n == HTTPSession.h2Preface.count
    }
}
