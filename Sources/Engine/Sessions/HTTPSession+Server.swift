import HTTP1
import CLibEV
import ConfigModel
import Glibc

extension HTTPSession {
    // MARK: the server's transport

    // The server connection's bytes, as the client's (`ServerConnection.tls` for `server … ssl`).

    @inline(__always)
    func serverRead(_ c: ServerConnection, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
        if let tls = c.tls { return tls.read(buffer, count) }
        if let h2 = c.h2 { return h2.read(buffer, count) }
        return recv(c.fd, buffer, count, Int32(MSG_DONTWAIT))
    }

    @inline(__always)
    private func serverWrite(_ c: ServerConnection, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
        if let tls = c.tls { return tls.write(bytes, count) }
        if let h2 = c.h2 { return h2.write(bytes, count) }
        return send(c.fd, bytes, count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
    }

    func serverShutdownWrite(_ c: ServerConnection) {
        if let tls = c.tls { return tls.shutdownWrite(fd: c.fd) }
        if let h2 = c.h2 { return h2.shutdownWrite() }
        shutdown(c.fd, Int32(SHUT_WR))
    }

    // MARK: the server side (the transaction's ServerConnector)

    /// Sends the request towards a server of its backend: persistence or balancing, the queue, a
    /// pooled or a new connection, retries.
    func connectToServer() {
        guard let backend else { return }
        let reuse = backend.proxy.http.reuse
        // safe: a client's first request never rides an idle connection another client used
        // (a failure there could not be told apart from the server refusing this client). An
        // HTTP/2 stream's session carries one request: the connection's first stream is its first.
        let laterRequest = stream.map { $0.ordinal > 1 } ?? (requests > 1)
        transaction.connector.mayReuse = backend.proxy.http.connectionMode == .keepAlive
            && (reuse == .always || reuse == .aggressive || (reuse == .safe && laterRequest))
        if backend.proxy.http.preferLastServer, transaction.connector.persistentServer == nil, let last = lastServerState,
           let s = backend.servers.first(where: { $0.state === last }), s.isUsable {
            // Tried before balancing, as a persistence cookie's server is (HAProxy's prefer-last-server).
            transaction.connector.persistentServer = s
        }
        if backend.sendsProxy {
            transaction.connector.proxySource = ProxyHeaderSource(client: clientAddress,
                                                                  local: localAddress ?? localEndpoint(clientFD), tls: clientTLS)
        }
        perform(transaction.connector.start(for: self, backend: backend, worker: worker, clientFD: clientFD,
                                            source: clientAddress?.address, now: loop.now))
    }

    /// Carries out what the connector asks for.
    func perform(_ action: ServerConnector.Action) {
        if !stickStores.isEmpty, let s = transaction.connector.server {
            StickRuleSet.store(stickStores, server: s)
            stickStores = []
        }
        switch action {
        case .connecting:
            serverConnectionAttached()
            phase = .waitingServer
            if let c = serverConnection { c.watch(c.connectInterest) }
            armTimer()
        case .reused:
            serverConnectionAttached()
            phase = .exchange
            lastServerState = server?.state
            flushToServer()
        case .connected:
            lastServerState = server?.state
            phase = .exchange
            lastServerActivity = loop.now
            flushToServer()
            armTimer()
        case .waiting:
            phase = .waitingServer
            armTimer()
        case .failed(let termination):
            transaction.termination = termination
            respondLocally(status: 503)
        }
    }

    /// The server connection is done with (a failed or abandoned exchange).
    func closeServerConnection() {
        transaction.connector.closeConnection()
    }

    /// Another connection carries the request from now on: its bytes start a new response, the
    /// last one's end (EOF) is behind us.
    private func serverConnectionAttached() {
        transaction.serverEOF = false
        responseParser.reset()
        serverIn.release(loop.buffers)
        responseParsed = 0
        lastServerActivity = loop.now
    }

    /// Request bytes to the server: the rewritten head, then the body as the parser validated it.
    /// Nothing of a request strata answered itself (refused, denied) is ever sent.
    func flushToServer() {
        guard let c = serverConnection, !transaction.localResponse, phase == .exchange || phase == .tunnel else { return }
        // A client held back by a full buffer: its timeout starts again once there is room.
        let clientInWasFull = clientIn.end == loop.buffers.size && clientIn.start == 0
        defer { if clientInWasFull && !(clientIn.end == loop.buffers.size && clientIn.start == 0) { lastClientActivity = loop.now } }
        while serverOutSent < serverOut.end, let base = serverOut.base {
            let n = serverWrite(c, base + serverOutSent, serverOut.end - serverOutSent)
            if n > 0 {
                serverOutSent += n
                lastServerActivity = loop.now
            } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                return
            } else {
                serverWriteFailed()
                return
            }
        }
        while requestParsed > clientIn.start, let base = clientIn.base {
            let n = serverWrite(c, base + clientIn.start, requestParsed - clientIn.start)
            if n > 0 {
                clientIn.start += n
                lastServerActivity = loop.now
            } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                return
            } else {
                serverWriteFailed()
                return
            }
        }
        if clientIn.isEmpty { clientIn.releaseIfEmpty(loop.buffers); requestParsed = clientIn.end }
        if phase == .tunnel && clientEOF && clientIn.isEmpty { serverShutdownWrite(c) }
    }

    private func serverWriteFailed() {
        if retryReusedConnection(neverReached: serverOutSent == 0) { return }
        transaction.termination = TerminationState(cause: UInt8(ascii: "S"), phase: UInt8(ascii: transaction.responseStarted ? "D" : "H"))
        server?.state.counters[loop].connectionErrors += 1
        if transaction.responseStarted { abortTransaction() } else { respondLocally(status: 502) }
    }

    /// A reused idle connection the server closed as we sent on it: nothing of the response came
    /// and the request is fully in our hands (no body streamed). It is sent again on a new
    /// connection when that is safe: the server cannot have read it (`neverReached`: the first
    /// write failed), or its method is idempotent.
    func retryReusedConnection(neverReached: Bool = false) -> Bool {
        guard transaction.connector.reused, server != nil, !transaction.responseStarted, serverIn.isEmpty,
              !transaction.hasBody, neverReached || transaction.method.isIdempotent else { return false }
        serverOutSent = 0
        perform(transaction.connector.reconnect(now: loop.now))
        return true
    }
}
