import HTTP1
import CLibEV
import ConfigModel
import Glibc

extension HTTPSession {
    // MARK: the response

    func serverReadable() {
        guard let c = serverConnection else { return }
        let pool = loop.buffers
        let base = serverIn.take(pool)
        if serverIn.end == pool.size, serverIn.start > 0 {
            let count = serverIn.count
            memmove(base, base + serverIn.start, count)
            responseParsed -= serverIn.start
            serverIn.end = count
            serverIn.start = 0
        }
        let space = pool.size - serverIn.end
        guard space > 0 else { return }
        let n = serverRead(c, base + serverIn.end, space)
        if n > 0 {
            // Answer bytes for a client that had nothing to read: its timeout starts now.
            if clientOut.isEmpty && pendingBody == nil && responseParsed == serverIn.start { lastClientActivity = loop.now }
            serverIn.end += n
            lastServerActivity = loop.now
            if phase == .tunnel {
                responseParsed = serverIn.end
                countOut(n)
            } else {
                parseResponse()
            }
            flushToClient()
        } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
            serverIn.releaseIfEmpty(pool)
            serverInputEnded(error: n < 0)
        } else {
            serverIn.releaseIfEmpty(pool)
        }
    }

    private func serverInputEnded(error: Bool) {
        transaction.serverEOF = true
        if phase == .tunnel {
            if serverIn.isEmpty { clientShutdownWrite() }
            tunnelMaybeDone()
            return
        }
        if !transaction.responseStarted && retryReusedConnection() { return }
        if let action = responseParser.inputEnded(), case .messageComplete = action, transaction.responseStarted {
            transaction.responseComplete = true
            transaction.closeAfterResponse = true
            closeServerConnection()
            return
        }
        transaction.termination = TerminationState(cause: UInt8(ascii: "S"), phase: UInt8(ascii: transaction.responseStarted ? "D" : "H"))
        worker.observe(server, .responseBroken)
        server?.state.counters[loop].connectionErrors += 1
        backend?.counters[loop].responseErrors += 1
        closeServerConnection()
        if transaction.responseStarted { abortTransaction() } else { respondLocally(status: 502) }
    }

    private func parseResponse() {
        guard let base = serverIn.base else { return }
        while !transaction.responseComplete {
            // A compressed answer's body goes through zlib (HTTPSession+Compression.swift).
            if transaction.compressor != nil { return pumpCompression() }
            let input = UnsafeRawBufferPointer(start: base + responseParsed, count: serverIn.end - responseParsed)
            let action = responseParser.parse(input, requestMethod: transaction.method)
            switch action {
            case .needMore:
                return
            case .error(let error):
                responseFailed(error, input: input)
                return
            case .headersComplete(let headLength):
                responseHead(UnsafeRawBufferPointer(start: base + responseParsed, count: headLength))
                if phase == .closed || transaction.localResponse { return }
            case .messageComplete(let framing):
                if transaction.cacheCapture != nil { captureForCache(UnsafeRawBufferPointer(rebasing: input[0..<framing])) }
                responseParsed += framing
                if transaction.interimResponse {
                    transaction.interimResponse = false
                } else {
                    transaction.responseComplete = true
                    if transaction.cacheCapture != nil { finishCacheStore() }
                }
            default:
                if transaction.cacheCapture != nil { captureForCache(UnsafeRawBufferPointer(rebasing: input[0..<action.consumed])) }
                responseParsed += action.consumed
            }
        }
    }

    /// An invalid answer: a 502 before its head was forwarded, else the connection is cut.
    func responseFailed(_ error: HTTPParseError, input: UnsafeRawBufferPointer) {
        transaction.termination = TerminationState(cause: UInt8(ascii: "P"), phase: UInt8(ascii: transaction.responseStarted ? "D" : "H"))
        backend?.counters[loop].responseErrors += 1
        if let backend {
            // `show errors`: what the server sent, and where the parser stopped.
            worker.engine.metrics.errors.record(StatsErrorCapture(
                time: wallClock(), isResponse: true, proxy: backend.name, proxyID: backend.proxy.id,
                frontend: frontend.map { ($0.name, $0.proxy.id) }, backend: (backend.name, backend.proxy.id),
                server: server.map { ($0.name, $0.config.id) }, event: 0,
                source: clientAddress?.description ?? "unix", bytes: Array(input), position: error.offset,
                bufferSize: loop.buffers.size))
        }
        transaction.compressor = nil
        closeServerConnection()
        if transaction.responseStarted { abortTransaction() } else { serverIn.release(loop.buffers); respondLocally(status: 502) }
    }

    func responseHead(_ input: UnsafeRawBufferPointer) {
        if transaction.responseTime < 0 { transaction.responseTime = loop.now - transaction.requestAt }
        serverOut.release(loop.buffers)  // the request can no longer be retried
        if responseParser.head.isInformational {
            // 100 Continue and friends go to the client as they are; the final answer follows.
            transaction.interimResponse = true
            appendToClient(input)
            responseParsed += input.count
            serverIn.start = responseParsed
            return
        }
        transaction.responseStarted = true
        transaction.responseStatus = responseParser.head.status
        worker.observe(server, .httpStatus(transaction.responseStatus))
        if transaction.responseStatus == 101 && transaction.upgradeRequested {
            appendToClient(input)
            responseParsed += input.count
            serverIn.start = responseParsed
            enterTunnel()
            return
        }
        if responseParser.head.framing == .untilClose { transaction.closeAfterResponse = true }
        if mustClose { transaction.closeAfterResponse = true }
        let connectionHeader: HTTPConnectionHeader = transaction.closeAfterResponse ? .close : .keepAlive
        if let stick = backend?.stickRules, stick.storesResponses, let server, let scratch, !responseParser.head.isInformational {
            stick.storeResponse(responseParser.head, input: input, connection: connectionInfo, scratch: scratch, server: server)
        }
        // `compression`: decided on the server's head, before the http-response rules (HAProxy's order).
        let compresses = transaction.compressionAlgorithm != nil && responseCompresses(input)
        if let rules = frontendRules, let scratch {
            // A cookie names a configuration server (a runtime one has none): the immutable list,
            // read on this loop without a copy.
            let serverIndex = server.flatMap { s in backend?.configuredServers.firstIndex { $0 === s } }
            scratch.answeringServer = server.map { ($0.config.id, $0.config.name) }
            switch rules.processResponse(responseParser.head, input: input, connection: connectionInfo, scratch: scratch,
                                         backend: backendStageRules, server: serverIndex) {
            case .forward:
                break
            case .respond(let answer):
                // The server's answer is dropped (http-response deny): the connection to it too.
                if answer.isDenial {
                    frontend?.counters[loop].deniedResponses += 1
                    backend?.counters[loop].deniedResponses += 1
                    server?.state.counters[loop].deniedResponses += 1
                }
                closeServerConnection()
                serverIn.release(loop.buffers)
                responseParsed = 0
                sendLocal(answer)
                return
            case .silentDrop:
                frontend?.counters[loop].deniedResponses += 1
                backend?.counters[loop].deniedResponses += 1
                server?.state.counters[loop].deniedResponses += 1
                transaction.termination = TerminationState(cause: UInt8(ascii: "P"), phase: UInt8(ascii: "H"))
                dropSilently()
                abortTransaction()
                return
            }
        }
        if compresses, let scratch, !startCompression(input, scratch: scratch) {
            // HAProxy's failed rewrite: the head's edits are half made.
            transaction.termination = TerminationState(cause: UInt8(ascii: "P"), phase: UInt8(ascii: "H"))
            closeServerConnection()
            serverIn.release(loop.buffers)
            responseParsed = 0
            respondLocally(status: 500)
            return
        }
        let pool = loop.buffers
        let out = clientOut.take(pool)
        var writer = HTTPHeadWriter(into: UnsafeMutableRawBufferPointer(start: out + clientOut.end, count: pool.size - clientOut.end))
        if let rules = frontendRules, let scratch {
            rules.writeResponseHead(into: &writer, responseParser.head, input: input, scratch: scratch,
                                    connectionHeader: connectionHeader, clientVersion: transaction.version)
        } else {
            writer.writeStartLine(responseParser.head, from: input)
            writer.writeFields(responseParser.head, from: input, removing: .hopByHop)
            if transaction.closeAfterResponse { writer.writeField(name: "Connection", value: "close") }
            writer.writeEndOfHead()
        }
        guard !writer.overflowed else {
            transaction.termination = TerminationState(cause: UInt8(ascii: "P"), phase: UInt8(ascii: "H"))
            closeServerConnection()
            respondLocally(status: 502)
            return
        }
        if scratch?.cache?.plan != nil { beginCacheStore() }
        clientOut.end += writer.count
        transaction.bytesToClient += UInt64(writer.count)
        responseParsed += input.count
        serverIn.start = responseParsed
        if frontend?.logPlan.logAsap == true { log(early: true) }
    }

    func appendToClient(_ bytes: UnsafeRawBufferPointer) {
        let pool = loop.buffers
        _ = clientOut.take(pool)
        if clientOut.end + bytes.count > pool.size { return }
        clientOut.append(bytes, pool: pool)
    }

    /// Response bytes to the client: heads the proxy wrote, then the body as the server sent it.
    func flushToClient() {
        let pool = loop.buffers
        // A server held back by a full buffer: its timeout starts again once there is room.
        let serverInWasFull = serverIn.end == pool.size && serverIn.start == 0
        defer { if serverInWasFull && !(serverIn.end == pool.size && serverIn.start == 0) { lastServerActivity = loop.now } }
        coalesceOutput()
        while true {
            while !clientOut.isEmpty, let base = clientOut.base {
                let n = clientWrite(base + clientOut.start, clientOut.count)
                if n > 0 {
                    clientOut.start += n
                    lastClientActivity = loop.now
                } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                    return
                } else {
                    clientWriteFailed()
                    return
                }
            }
            clientOut.releaseIfEmpty(pool)
            // A compressed answer: the room made is filled with what zlib makes next.
            guard transaction.compressor != nil else { break }
            pumpCompression()
            if clientOut.isEmpty || phase == .closed { break }
        }
        while let body = pendingBody, body.count > 0 {
            let n = clientWrite(body.baseAddress!, body.count)
            if n > 0 {
                pendingBody = n == body.count ? nil : UnsafeRawBufferPointer(rebasing: body[n...])
                lastClientActivity = loop.now
            } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                return
            } else {
                clientWriteFailed()
                return
            }
        }
        pendingBody = nil
        // (A compressed answer's waiting bytes are zlib's input, not the client's.)
        while responseParsed > serverIn.start, transaction.compressor == nil, let base = serverIn.base {
            let n = clientWrite(base + serverIn.start, responseParsed - serverIn.start)
            if n > 0 {
                serverIn.start += n
                transaction.bytesToClient += UInt64(n)
                countOut(n)
                lastClientActivity = loop.now
            } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                return
            } else {
                clientWriteFailed()
                return
            }
        }
        if serverIn.isEmpty {
            serverIn.releaseIfEmpty(pool)
            responseParsed = serverIn.end
        }
        if phase == .tunnel && transaction.serverEOF && serverIn.isEmpty { clientShutdownWrite() }
        if phase == .closing && clientOut.isEmpty { close() }
    }

    /// What follows the head strata wrote (a local answer's body, the response body bytes already
    /// here) joins it in `clientOut`, so they leave in one send (with TLS, one record) rather than
    /// two. Only appends: a write OpenSSL is retrying stays a prefix of the next one.
    private func coalesceOutput() {
        guard !clientOut.isEmpty, let out = clientOut.base else { return }
        var room = loop.buffers.size - clientOut.end
        if let body = pendingBody {
            guard body.count <= room else { return }
            if body.count > 0 { (out + clientOut.end).copyMemory(from: body.baseAddress!, byteCount: body.count) }
            clientOut.end += body.count
            room -= body.count
            pendingBody = nil
        }
        guard room > 0, responseParsed > serverIn.start, transaction.compressor == nil, let source = serverIn.base else { return }
        let n = min(room, responseParsed - serverIn.start)
        (out + clientOut.end).copyMemory(from: source + serverIn.start, byteCount: n)
        clientOut.end += n
        serverIn.start += n
        transaction.bytesToClient += UInt64(n)
        countOut(n)
    }

    private func clientWriteFailed() {
        transaction.termination = TerminationState(cause: UInt8(ascii: "C"), phase: UInt8(ascii: "D"))
        if generation != nil { abortTransaction() } else { close() }
    }

    // MARK: tunnels (Upgrade)

    private func enterTunnel() {
        phase = .tunnel
        requestParser.enterTunnel()
        transaction.requestComplete = true
        // Whatever the client sent after its head is already tunnel data.
        requestParsed = clientIn.end
        armTimer()
        flushToServer()
    }

    func tunnelMaybeDone() {
        guard phase == .tunnel, clientEOF, transaction.serverEOF, clientIn.isEmpty, serverIn.isEmpty, clientOut.isEmpty else { return }
        closeServerConnection()
        endTransaction()
        close()
    }

    // MARK: answers strata writes itself

    /// Answers with the `errorfile` for `status`, or HAProxy's page. The request's body is not
    /// read, so the connection closes after it when one was coming.
    func respondLocally(status: Int) {
        let frontend = self.frontend ?? servingFrontend
        let answer = frontendRules?.errorResponse(status, backend: backendStageRules) ?? HTTPLocalResponse.errorPage(status)
        sendLocal(answer)
    }

    /// Sends an answer of strata's own services (kept until its last byte is sent).
    /// Asks the control loop for a stats service's answer (it reads every loop's counters and
    /// the state it owns), then sends it here. The request waits meanwhile, holding its
    /// generation; the session stays alive for the answer, which a closed session drops.
    func awaitService(_ call: StatsServiceCall, applet: StaticString) {
        transaction.localResponse = true
        phase = .exchange
        let engine = worker.engine
        let loop = self.loop
        let me = UncheckedSendable(self)
        let request = requests
        engine.loop.post {
            let answer = UncheckedSendable(engine.answer(call))
            loop.post {
                let session = me.value
                guard session.phase != .closed, session.requests == request, session.generation != nil else { return }
                session.sendService(answer.value, applet: applet)
                session.afterEvent()
            }
        }
    }

    func sendService(_ answer: StatsServiceAnswer, applet: StaticString) {
        transaction.serviceAnswer = answer
        transaction.applet = applet
        transaction.termination = TerminationState(cause: UInt8(ascii: "L"), phase: UInt8(ascii: "R"))
        sendLocal(answer.response)
    }

    /// Sends an answer strata makes itself (an error, a deny, a return, a redirect) instead of
    /// anything from a server.
    func sendLocal(_ answer: HTTPLocalResponse) {
        if generation == nil, let frontend = frontend ?? servingFrontend { begin(frontend) }
        var answer = answer
        // `http-after-response` applies to strata's own answers too.
        if let rules = (frontend ?? servingFrontend)?.rules, let scratch,
           rules.hasAfterResponseRules(backend: backend?.rules) {
            answer = rules.afterResponse(answer, connection: connectionInfo, scratch: scratch, backend: backend?.rules)
        }
        transaction.connector.release()
        transaction.localResponse = true
        transaction.responseStarted = true
        transaction.responseComplete = true
        transaction.responseStatus = answer.status
        // A request without a body is complete with its head: the parser is told so and the
        // connection stays usable. One whose body was not read cannot be followed by another.
        if transaction.headReceived && !transaction.hasBody && !transaction.requestComplete { parseRequestBody() }
        if !transaction.headReceived || (transaction.hasBody && !transaction.requestComplete) || answer.closesConnection { transaction.closeAfterResponse = true }
        let pool = loop.buffers
        clientOut.release(pool)
        let out = clientOut.take(pool)
        var writer = HTTPHeadWriter(into: UnsafeMutableRawBufferPointer(start: out, count: pool.size))
        answer.writeHead(into: &writer, close: transaction.closeAfterResponse || mustClose, clientVersion: transaction.version)
        clientOut.end = writer.overflowed ? 0 : writer.count
        pendingBody = answer.body.count > 0 ? answer.body : nil
        transaction.bytesToClient = UInt64(clientOut.end + answer.body.count)
        serverIn.release(pool)
        responseParsed = 0
        serverOut.release(pool)
        phase = .exchange
        flushToClient()
    }
}
