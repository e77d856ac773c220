import ConfigModel

extension Worker {
    /// What the statistics take from a finished session's (TCP) or request's (HTTP) record: the
    /// queue/connect/response/total time averages and maxima of its backend and server, the
    /// server's HTTP response classes, client and server aborts, and `lastsess`. Call it once per
    /// session or request, with the record filled as for the log, whether or not a line is logged
    /// (the frontend's and backend's response classes stay where the session counts them). Plain
    /// integer updates on the loop's thread: no lock, no allocation.
    @inline(__always)
    func account(_ r: LogRecord) {
        let now = loop.now
        let cause = r.termination.cause
        let inData = r.termination.phase == UInt8(ascii: "D")
        let clientAbort = inData && (cause == UInt8(ascii: "C") || cause == UInt8(ascii: "c"))
        let serverAbort = inData && (cause == UInt8(ascii: "S") || cause == UInt8(ascii: "s"))
        // HAProxy's ttime: the request's active time in HTTP, the session's in TCP; rtime is 0 in TCP.
        let total = r.mode == .http ? r.active : r.total
        let response = r.mode == .http ? r.response : 0
        if let b = r.backend {
            let c = b.counters[loop]
            c.lastSession = now
            if clientAbort { c.clientAborts += 1 }
            if serverAbort { c.serverAborts += 1 }
            // Times of sessions that reached a server (HAProxy: no figures for local answers or
            // connections that never established).
            if r.server != nil && r.connect >= 0 {
                var t = c.times
                t.add(queue: r.queue, connect: r.connect, response: response, total: total)
                c.times = t
            }
        }
        guard let s = r.server else { return }
        let st = s.state.counters[loop]
        st.lastSession = now
        if clientAbort { st.clientAborts += 1 }
        if serverAbort { st.serverAborts += 1 }
        if r.connect >= 0 {
            var t = st.times
            t.add(queue: r.queue, connect: r.connect, response: response, total: total)
            st.times = t
        }
        // The server's own answers (a response head arrived from it).
        if r.mode == .http && r.status > 0 && r.response >= 0 { st.countResponse(status: r.status) }
    }
}
