/// What `HTTPRuleSet.processRequest` decided.
enum HTTPRequestDecision {
    /// Forward to the backend `use_backend` named, or nil for the default one (`default_backend`,
    /// or the proxy itself for a `listen`). The backend's rules already ran.
    case forward(backend: String?)
    /// Answer locally (deny, return, redirect, a failed rewrite's 500, no backend's 503), and
    /// forward nothing.
    case respond(HTTPLocalResponse)
    /// `http-request tarpit`: answer this after `timeout tarpit`, forwarding nothing.
    case tarpit(HTTPLocalResponse)
    /// `http-request use-service NAME`: hand the request to that service (e.g.
    /// `prometheus-exporter`).
    case useService(String)
    /// `http-request silent-drop`: close the client connection without an answer (a reset).
    case silentDrop
    /// `http-request reject`: close the client connection at once, without an answer.
    case reject
}

/// What `HTTPRuleSet.processResponse` decided.
enum HTTPResponseDecision {
    /// Forward the response, written with `writeResponseHead`.
    case forward
    /// Drop the server's response and answer this instead (`http-response deny`: 502; a failed
    /// rewrite: 500; `http-response return`).
    case respond(HTTPLocalResponse)
    /// `http-response silent-drop`: close both connections, answer nothing (a reset).
    case silentDrop
}
