import HTTP1
import CLibEV
import ConfigModel
import Glibc

extension HTTPSession {
    // MARK: timeouts

    func deadline() -> Double? {
        func s(_ ms: Int?) -> Double? { ms.map { Double($0) / 1000 } }
        let f = (frontend ?? servingFrontend)?.proxy.timeouts ?? Timeouts()
        let b = backend?.proxy.timeouts ?? f
        switch phase {
        case .idle:
            let limit = requests == 0 ? (f.httpRequest ?? f.client) : (f.httpKeepAlive ?? f.httpRequest ?? f.client)
            // Lingering without any timeout set: a few seconds for a request on its way.
            if lingeringFrontend != nil { return idleSince + (s(limit) ?? HTTPSession.lingerWithoutTimeout) }
            return s(limit).map { idleSince + $0 }
        case .head:
            return s(f.httpRequest ?? f.client).map { transaction.headStartedAt + $0 }
        case .waitingServer:
            if transaction.tarpitAnswer != nil { return transaction.tarpitUntil }
            if transaction.waitingForBody {
                if let until = transaction.bodyWaitUntil { return until }
                return s(f.httpRequest ?? f.client).map { transaction.headStartedAt + $0 }
            }
            return transaction.connector.deadline
        case .exchange:
            // Each side's timeout runs while strata waits for that side: the client's while its
            // request is coming (and there is room for it) or an answer waits for it to read; the
            // server's while it owes request bytes a read or an answer strata has room for. A side
            // held back by the other one is not late (a client that stops reading a large answer
            // is governed by `timeout client`, not `timeout server`).
            let size = loop.buffers.size
            var d: Double?
            let clientRoom = clientIn.end < size || clientIn.start > 0
            if (!transaction.requestComplete && clientRoom) || !clientOut.isEmpty || pendingBody != nil || responseParsed > serverIn.start {
                d = s(f.client).map { lastClientActivity + $0 }
            }
            if serverConnection != nil, let sv = s(b.server) {
                let serverRoom = serverIn.end < size || serverIn.start > 0
                let requestPending = serverOutSent < serverOut.end || requestParsed > clientIn.start
                if (!transaction.responseComplete && serverRoom) || requestPending {
                    let t = lastServerActivity + sv
                    d = d.map { min($0, t) } ?? t
                }
            }
            return d
        case .tunnel:
            let limit = s(b.tunnel ?? min(f.client ?? Int.max, b.server ?? Int.max))
            return limit.map { max(lastClientActivity, lastServerActivity) + $0 }
        case .closing:
            return s(f.client).map { lastClientActivity + $0 } ?? loop.now + 10
        case .closed:
            return nil
        }
    }

    /// A connection with no timeout at all lingers this long after its listener stopped serving.
    static let lingerWithoutTimeout = 5.0

    func armTimer() {
        if let d = deadline() {
            armedDeadline = d
            timer.arm(after: d - loop.now, on: loop)
        } else {
            armedDeadline = .infinity
            timer.stop(on: loop)
        }
    }

    /// After an event: a deadline that moved earlier than the armed one re-arms the timer (a
    /// later one waits for the timer to fire and re-arm).
    @inline(__always)
    func tightenTimer() {
        guard let d = deadline(), d < armedDeadline - 0.001 else { return }
        armedDeadline = d
        timer.arm(after: d - loop.now, on: loop)
    }

    /// Before a timeout is declared, what the kernel already holds for either side is taken: the
    /// process may have been stopped for longer than a timeout, and the loop runs expired timers
    /// in the same turn as socket events it has not collected yet. True when something moved.
    private func collectReadyEvents() -> Bool {
        var fds = (pollfd(fd: -1, events: 0, revents: 0), pollfd(fd: -1, events: 0, revents: 0))
        let clientOutPending = !clientOut.isEmpty || pendingBody != nil || responseParsed > serverIn.start
        if phase != .closing && stream == nil {
            fds.0 = pollfd(fd: clientFD, events: Int16(POLLIN) | (clientOutPending ? Int16(POLLOUT) : 0), revents: 0)
        }
        if let c = serverConnection { fds.1 = pollfd(fd: c.fd, events: Int16(POLLIN | POLLOUT), revents: 0) }
        let ready = withUnsafeMutablePointer(to: &fds) {
            $0.withMemoryRebound(to: pollfd.self, capacity: 2) { poll($0, 2, 0) }
        }
        guard ready > 0 else { return false }
        let before = (lastClientActivity, lastServerActivity, phase)
        func mask(_ revents: Int16) -> Int32 {
            var m: Int32 = 0
            if revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 { m |= EV_READ_MASK }
            if revents & Int16(POLLOUT) != 0 { m |= EV_WRITE_MASK }
            return m
        }
        if fds.1.revents != 0, let c = serverConnection, c.fd == fds.1.fd {
            serverEvent(mask(fds.1.revents))
        }
        if phase != .closed, fds.0.revents != 0 { ioEvent(clientIO.raw, mask(fds.0.revents)) }
        return phase == .closed || before != (lastClientActivity, lastServerActivity, phase)
    }

    /// The timer fired: the deadline of the current phase passed (or moved).
    func timerFired() {
        armedDeadline = .infinity
        guard let d = deadline() else { return }
        let now = loop.now
        if d > now + 0.0005 {
            armTimer()
            return
        }
        if collectReadyEvents() {
            guard phase != .closed else { return }
            if let d = deadline(), d > now + 0.0005 { return armTimer() }
        }
        switch phase {
        case .idle:
            close()
        case .head:
            transaction.termination = TerminationState(cause: UInt8(ascii: "c"), phase: UInt8(ascii: "R"))
            transaction.requestLine = "<BADREQ>"
            transaction.closeAfterResponse = true
            respondLocally(status: 408)
        case .waitingServer:
            if let answer = transaction.tarpitAnswer {
                transaction.tarpitAnswer = nil
                sendLocal(answer)
            } else if transaction.waitingForBody, transaction.bodyWaitUntil != nil {
                // `wait-for-body`: its time is up; the request goes on with what came.
                transaction.waitingForBody = false
                connectToServer()
            } else if transaction.waitingForBody {
                transaction.waitingForBody = false
                transaction.termination = TerminationState(cause: UInt8(ascii: "c"), phase: UInt8(ascii: "R"))
                transaction.closeAfterResponse = true
                respondLocally(status: 408)
            } else {
                perform(transaction.connector.timerExpired(now: now))
            }
        case .exchange:
            let f = (frontend ?? servingFrontend)?.proxy.timeouts ?? Timeouts()
            let clientExpired = f.client.map { lastClientActivity + Double($0) / 1000 <= now + 0.0005 } ?? false
            if !clientExpired && !transaction.responseStarted {
                transaction.termination = TerminationState(cause: UInt8(ascii: "s"), phase: UInt8(ascii: "H"))
                closeServerConnection()
                respondLocally(status: 504)
            } else {
                transaction.termination = TerminationState(cause: UInt8(ascii: clientExpired ? "c" : "s"), phase: UInt8(ascii: "D"))
                abortTransaction()
            }
        case .tunnel:
            transaction.termination = TerminationState(cause: UInt8(ascii: "c"), phase: UInt8(ascii: "D"))
            abortTransaction()
        case .closing:
            close()
        case .closed:
            break
        }
        if phase != .closed {
            armTimer()
            afterEvent()
        }
    }
}
