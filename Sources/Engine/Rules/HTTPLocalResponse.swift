import HTTP1
import ConfigModel
/// An answer the proxy makes itself: an error page, a `deny`, a `return`, a redirect. Its bytes
/// are the generation's (error pages, files) or the session's `HTTPRuleScratch` (valid until the
/// next request on that scratch).
struct HTTPLocalResponse {
    let status: Int
    /// The status line and the field lines, each with its CRLF, without the empty line ending the
    /// head (empty for a raw message).
    let head: UnsafeRawBufferPointer
    /// The body; for a raw message, the whole message.
    let body: UnsafeRawBufferPointer
    /// HAProxy closes the connection after this answer: its 400 and 408 pages, and raw `errorfile`
    /// messages, whose framing strata does not check.
    let closesConnection: Bool
    /// An `errorfile` message, sent as it is.
    let isRawMessage: Bool
    let headHasConnectionClose: Bool
    /// An `http-request deny` (logged `PR`, a refusal by the proxy; other local answers are `LR`).
    var isDenial = false

    init(status: Int, head: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer, closesConnection: Bool = false,
         isRawMessage: Bool = false, headHasConnectionClose: Bool = false) {
        self.status = status
        self.head = head
        self.body = body
        self.closesConnection = closesConnection
        self.isRawMessage = isRawMessage
        self.headHasConnectionClose = headHasConnectionClose
    }

    /// A raw HTTP message (an `errorfile`), sent as it is, then the connection is closed.
    static func raw(status: Int, _ message: UnsafeRawBufferPointer) -> HTTPLocalResponse {
        HTTPLocalResponse(status: status, head: HTTPRuleBytes.empty, body: message, closesConnection: true,
                          isRawMessage: true)
    }

    /// Writes the head: its lines, then `connection: close` when `close` (unless the page has it),
    /// or `connection: keep-alive` for an HTTP/1.0 client kept alive, then the empty line. Nothing
    /// for a raw message (send `body`, then close). Send `body` after the head.
    func writeHead(into writer: inout HTTPHeadWriter, close: Bool, clientVersion: HTTPVersion = .http11) {
        guard !isRawMessage else { return }
        writer.write(head)
        if close || closesConnection {
            if !headHasConnectionClose { writer.write("connection: close\r\n") }
        } else if clientVersion == .http10 {
            writer.write("connection: keep-alive\r\n")
        }
        writer.writeEndOfHead()
    }

    /// HAProxy's built-in page for `status` (400, 401, 403, 404, 405, 407, 408, 410, 413, 414, 421,
    /// 422, 425, 429, 431, 500, 501, 502, 503, 504; 200 for monitor answers); a status without a page
    /// gets the 500 page, as in HAProxy.
    static func errorPage(_ status: Int) -> HTTPLocalResponse {
        let page = HTTPErrorPages.page(status) ?? HTTPErrorPages.page(500)!
        let head = HTTPRuleBytes.literal(page.head)
        let close = status == 400 || status == 408 || status == 505
        return HTTPLocalResponse(status: page.status, head: head, body: HTTPRuleBytes.literal(page.body),
                                 closesConnection: close, headHasConnectionClose: close)
    }
}

/// HAProxy's error pages, as its HTTP/1 side sends them (field names in lowercase), and its reason
/// phrases.
enum HTTPErrorPages {
    static func page(_ status: Int) -> (status: Int, head: StaticString, body: StaticString)? {
        guard let (head, body) = text(status) else { return nil }
        return (status, head, body)
    }

    private static func text(_ status: Int) -> (StaticString, StaticString)? {
        switch status {
        case 200: return ("HTTP/1.1 200 OK\r\ncontent-length: 58\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n",
                          "<html><body><h1>200 OK</h1>\nService ready.\n</body></html>\n")
        case 400: return ("HTTP/1.1 400 Bad request\r\ncontent-length: 90\r\ncache-control: no-cache\r\nconnection: close\r\ncontent-type: text/html\r\n",
                          "<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n")
        case 401: return ("HTTP/1.1 401 Unauthorized\r\ncontent-length: 112\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n",
                          "<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n")
        case 403: return ("HTTP/1.1 403 Forbidden\r\ncontent-length: 93\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n",
                          "<html><body><h1>403 Forbidden</h1>\nRequest forbidden by administrative rules.\n</body></html>\n")
        case 404: return ("HTTP/1.1 404 Not Found\r\ncontent-length: 83\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n",
                          "<html><body><h1>404 Not Found</h1>\nThe resource could not be found.\n</body></html>\n")
        case 405: return ("HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 147\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n",
                          "<html><body><h1>405 Method Not Allowed</h1>\nA request was made of a resource using a request method not supported by that resource.\n</body></html>\n")
        case 407: return ("HTTP/1.1 407 Unauthorized\r\ncontent-length: 112\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n",
                          "<html><body><h1>407 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n")
        case 408: return ("HTTP/1.1 408 Request Time-out\r\ncontent-length: 110\r\ncache-control: no-cache\r\nconnection: close\r\ncontent-type: text/html\r\n",
                          "<html><body><h1>408 Request Time-out</h1>\nYour browser didn't send a complete request in time.\n</body></html>\n")
        case 410: return ("HTTP/1.1 410 Gone\r\ncontent-length: 114\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n",
                          "<html><body><h1>410 Gone</h1>\nThe resource is no longer available and will not be available again.\n</body></html>\n")
        case 413: return ("HTTP/1.1 413 Payload Too Large\r\ncontent-length: 106\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n",
                          "<html><body><h1>413 Payload Too Large</h1>\nThe request entity exceeds the maximum allowed.\n</body></html>\n")
        case 414: return ("HTTP/1.1 414 URI Too Long\r\ncontent-length: 110\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n",
                          "<html><body><h1>414 URI Too Long</h1>\nThe URI provided was too long for the server to process.\n</body></html>\n")
        case 421: return ("HTTP/1.1 421 Misdirected Request\r\ncontent-length: 104\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n",
                          "<html><body><h1>421 Misdirected Request</h1>\nRequest sent to a non-authoritative server.\n</body></html>\n")
        case 422: return ("HTTP/1.1 422 Unprocessable Content\r\ncontent-length: 116\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n",
                          "<html><body><h1>422 Unprocessable Content</h1>\nThe server cannot process the contained instructions.\n</body></html>\n")
        case 425: return ("HTTP/1.1 425 Too Early\r\ncontent-length: 80\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n",
                          "<html><body><h1>425 Too Early</h1>\nYour browser sent early data.\n</body></html>\n")
        case 429: return ("HTTP/1.1 429 Too Many Requests\r\ncontent-length: 117\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n",
                          "<html><body><h1>429 Too Many Requests</h1>\nYou have sent too many requests in a given amount of time.\n</body></html>\n")
        case 431: return ("HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 105\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n",
                          "<html><body><h1>431 Request Header Fields Too Large</h1>\nRequest Header Fields Too Large.\n</body></html>\n")
        case 500: return ("HTTP/1.1 500 Internal Server Error\r\ncontent-length: 97\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n",
                          "<html><body><h1>500 Internal Server Error</h1>\nAn internal server error occurred.\n</body></html>\n")
        case 501: return ("HTTP/1.1 501 Not Implemented\r\ncontent-length: 135\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n",
                          "<html><body><h1>501 Not Implemented</h1>\nThe server does not support the functionality required to fulfill the request.\n</body></html>\n")
        case 502: return ("HTTP/1.1 502 Bad Gateway\r\ncontent-length: 107\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n",
                          "<html><body><h1>502 Bad Gateway</h1>\nThe server returned an invalid or incomplete response.\n</body></html>\n")
        case 503: return ("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 107\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n",
                          "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n")
        case 504: return ("HTTP/1.1 504 Gateway Time-out\r\ncontent-length: 92\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n",
                          "<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n")
        case 505: return ("HTTP/1.1 505 HTTP Version Not Supported\r\ncontent-length: 128\r\ncache-control: no-cache\r\nconnection: close\r\ncontent-type: text/html\r\n",
                          "<html><body><h1>505 HTTP Version Not Supported</h1>\nThe server does not support the HTTP version of the request.\n</body></html>\n")
        default: return nil
        }
    }

    /// The reason phrase HAProxy writes for `status` (`return`, `set-status`).
    static func reason(_ status: Int) -> StaticString { HTTPStatusReason.phrase(status) }
}
