import ConfigModel
import TCPWire

/// The client connection a request came on, as fetches see it (`src`, `dst`, `ssl_fc`, `%ci`).
struct HTTPConnectionInfo: Hashable, Sendable {
    /// The client's address and port (`src`, `src_port`); nil for a UNIX socket.
    var client: SocketEndpoint?
    /// The local address and port the client reached (`dst`, `dst_port`).
    var local: SocketEndpoint?
    /// Whether the client connection is TLS (`ssl_fc`).
    var isTLS: Bool
    /// The client connection's TLS, for `ssl_fc_*` and `ssl_c_*` (nil: plain, or a test's value).
    var tls: TLSConnection?
    /// The client socket, read (getsockname) for `localEndpoint` when `local` is nil: only the
    /// few rules that print or test the local address pay for the system call.
    var localFD: Int32 = -1
    /// The request came on an HTTP/2 stream (`req.ver` is 2.0, whatever head the stream made).
    var isHTTP2 = false
    /// The connection's stick counters (nil: no stick table in its generation).
    var tracker: StickTracker?
    /// The PROXY protocol header the connection began with (`fc_rcvd_proxy`, `fc_pp_*`).
    var proxyHeader: ProxyHeader?

    init(client: SocketEndpoint?, local: SocketEndpoint?, isTLS: Bool = false) {
        self.client = client
        self.local = local
        self.isTLS = isTLS
    }

    init(client: SocketEndpoint?, local: SocketEndpoint?, tls: TLSConnection?, localFD: Int32 = -1,
         tracker: StickTracker? = nil) {
        self.init(client: client, local: local, isTLS: tls != nil)
        self.tls = tls
        self.localFD = localFD
        self.tracker = tracker
    }

    /// `local`, else the client socket's local address (`dst`, `%fi`, `option originalto`).
    var localEndpoint: SocketEndpoint? {
        if let local { return local }
        return localFD >= 0 ? socketLocalEndpoint(localFD) : nil
    }
}

/// The global `localEndpoint(_:)`, which the property of the same name hides.
private func socketLocalEndpoint(_ fd: Int32) -> SocketEndpoint? { localEndpoint(fd) }

/// The `Connection` field the session wants on a head it forwards.
enum HTTPConnectionHeader: Hashable, Sendable {
    /// The connection stays open: nothing for HTTP/1.1, `Connection: keep-alive` for HTTP/1.0.
    case keepAlive
    /// `Connection: close`.
    case close
    /// `Connection: upgrade`, and the `Upgrade` field is kept.
    case upgrade
}
