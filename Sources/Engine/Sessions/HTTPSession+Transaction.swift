import HTTP1
import CLibEV
import ConfigModel
import Glibc

extension HTTPSession {
    // MARK: a transaction's start and end

    /// Counts a request in flight on the current generation of this listener's frontend.
    func begin(_ frontend: Frontend) {
        // A lingering connection's hold becomes this request's (no loop turn in between: the
        // generation cannot retire meanwhile).
        endLingering(notify: false)
        transaction.frontend = frontend
        let g = frontend.generation!
        transaction.generation = g
        g.shard(loop).begin(self)
        transaction.requestAt = loop.now
        transaction.requestWall = wallClock()
        requests += 1
        frontend.counters[loop].requests += 1
    }

    /// The answer is sent: the server connection is pooled (or closed), the request logged, and
    /// the connection waits for the next one (or closes).
    func checkTransactionEnd() {
        guard generation != nil, phase == .exchange, transaction.responseComplete else { return }
        guard clientOut.isEmpty, pendingBody == nil, serverIn.start >= responseParsed else { return }
        if !transaction.requestComplete { transaction.closeAfterResponse = true }
        // The server connection goes back to the pool when it can carry another request.
        let reusable = !transaction.localResponse && transaction.requestComplete && !transaction.serverEOF && !transaction.closeAfterResponse
            && responseParser.head.keepAlive && serverIn.end == responseParsed
            && backend?.proxy.http.connectionMode == .keepAlive && frontend?.proxy.http.connectionMode == .keepAlive
        if let c = transaction.connector.takeConnection() {
            if reusable {
                c.park()
            } else if transaction.requestComplete && !transaction.serverEOF && serverIn.end == responseParsed {
                c.abort()
            } else {
                c.close()
            }
        }
        serverIn.release(loop.buffers)
        responseParsed = 0
        // An HTTP/2 stream carries one request: its session ends with the answer.
        let closing = transaction.closeAfterResponse || mustClose || clientEOF || stream != nil
        endTransaction()
        if closing {
            close()
            return
        }
        phase = .idle
        idleSince = loop.now
        // A pipelined request may already be waiting.
        if requestParsed < clientIn.end {
            parseRequestHead()
        } else {
            clientIn.releaseIfEmpty(loop.buffers)
            if clientIn.isEmpty { requestParsed = 0 }
            armTimer()
        }
    }

    /// Logs the request and releases its generation.
    func endTransaction() {
        guard let generation else { return }
        transaction.connector.release()
        if transaction.responseStatus > 0 {
            frontend?.counters[loop].countResponse(status: transaction.responseStatus)
            backend?.counters[loop].countResponse(status: transaction.responseStatus)
        }
        // The generation's error share (a canary is compared with the active one by it): a 5xx
        // answer, or a server that closed or reset before answering.
        if transaction.responseStatus >= 500 || (transaction.responseStatus == 0 && transaction.termination.cause == UInt8(ascii: "S")) {
            generation.shard(loop).errors += 1
        }
        log()
        tracker?.endRequest(status: transaction.responseStatus)
        if !stickStores.isEmpty { stickStores = [] }
        backend?.counters.sessionEnded(on: loop)
        transaction.end()
        serverOut.release(loop.buffers)
        generation.shard(loop).end(self)
        worker.requestEnded(in: generation)
    }

    /// Closes the client (and server) side mid-request.
    func abortTransaction() {
        closeServerConnection()
        endTransaction()
        close()
    }

    // MARK: counters and log

    func countIn(_ n: Int) {
        if let tracker { tracker.bytesIn += n }
        frontend?.counters[loop].bytesIn += UInt64(n)
        backend?.counters[loop].bytesIn += UInt64(n)
        server?.state.counters[loop].bytesIn += UInt64(n)
    }

    func countOut(_ n: Int) {
        if let tracker { tracker.bytesOut += n }
        frontend?.counters[loop].bytesOut += UInt64(n)
        backend?.counters[loop].bytesOut += UInt64(n)
        server?.state.counters[loop].bytesOut += UInt64(n)
    }

    /// The request's record for the statistics and the log line (`option httplog` is HAProxy's
    /// `%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r`).
    /// `early`: `option logasap`'s line when the response head has been forwarded (not counted).
    func log(early: Bool = false) {
        guard let frontend, let generation else { return }
        let ms = { (v: Double) -> Int in v < 0 ? -1 : Int((v * 1000).rounded()) }
        var r = LogRecord(mode: .http, frontend: frontend, generation: generation.id, acceptDate: transaction.requestWall)
        r.backend = backend
        r.server = server
        r.applet = transaction.applet
        r.client = clientAddress
        if localAddress == nil && frontend.logPlan.needsLocalAddress { localAddress = localEndpoint(clientFD) }
        r.local = localAddress
        r.isTLS = clientTLS != nil
        r.tls = clientTLS
        r.requestDate = transaction.requestWall
        r.request = ms(transaction.requestAt - transaction.headStartedAt)
        // Tw: -1 for a request that never reached a queue (answered before a server was chosen,
        // or given up while queued).
        r.queue = transaction.connector.queueTime >= 0 ? ms(transaction.connector.queueTime) : (server == nil || transaction.termination.phase == UInt8(ascii: "Q") ? -1 : 0)
        r.connect = transaction.connector.connectTime < 0 ? -1 : ms(transaction.connector.connectTime)
        r.response = transaction.responseTime < 0 ? -1 : ms(transaction.responseTime - max(transaction.connector.connectTime, 0) - max(transaction.connector.queueTime, 0))
        r.active = ms(loop.now - transaction.requestAt)
        r.total = r.active
        r.status = transaction.responseStatus > 0 ? transaction.responseStatus : -1
        r.bytesOut = transaction.bytesToClient
        r.termination = transaction.termination
        r.activeConnections = worker.engine.currentSessions
        r.frontendConnections = frontend.counters.currentSessions
        r.backendConnections = backend?.counters.currentSessions ?? 0
        r.serverConnections = server?.state.currentSessions ?? 0
        r.retries = transaction.connector.retries
        r.redispatched = transaction.connector.redispatched
        r.backendQueue = backend?.queued ?? 0
        r.requestLine = transaction.requestLine
        r.requestCaptures = scratch?.capturedRequestHeaders
        if let scratch, !scratch.variables.isEmpty { r.variables = scratch.variables }
        if let rules = frontendRules, !rules.responseCaptureLayout.limits.isEmpty {
            let captured = scratch?.capturedResponseHeaders ?? HTTPRuleBytes.empty
            r.responseCaptures = captured.isEmpty ? rules.noResponseCaptures : captured
        }
        r.requestSlots = scratch?.requestSlots
        r.responseSlots = scratch?.responseSlots
        r.requestCookie = scratch?.cookieSlots.value(0)
        r.responseCookie = scratch?.cookieSlots.value(1)
        if let scratch, scratch.uniqueIDMade { r.uniqueID = scratch.uniqueID.bytes(from: 0) }
        r.logLevel = scratch?.logLevel
        if early {
            transaction.loggedEarly = frontend.logPlan.emitEarly(r, to: frontend.log)
            return
        }
        worker.account(r)
        if !transaction.loggedEarly { frontend.logPlan.emit(r, to: frontend.log) }
        transaction.loggedEarly = false
    }
}
