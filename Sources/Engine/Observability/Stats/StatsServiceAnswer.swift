import HTTP1
import ConfigModel

/// An answer strata's own services make (the stats page, `use-service prometheus-exporter`):
/// its head and body in one allocation this object owns. The session keeps the object until the
/// body is sent (`response.body` points into it), then drops it: nothing else to release.
///
///     // in HTTPSession (see StatsService.swift for the call sites):
///     serviceAnswer = answer          // a stored property: keeps the bytes alive
///     sendLocal(answer.response)      // head through the writer, body as `pendingBody`
final class StatsServiceAnswer {
    let status: Int
    let response: HTTPLocalResponse
    private let storage: UnsafeMutableRawBufferPointer
    /// A body handed over by its writer (a scrape), freed with the answer.
    private let ownedBody: UnsafeMutableRawBufferPointer?

    /// `headers` are written as given (lowercase names, as HAProxy's own answers);
    /// `content-length` and `cache-control: no-cache` are added. `headOnly` (a HEAD request)
    /// keeps the length and sends no body.
    init(status: Int, headers: [(String, String)], body: [UInt8], headOnly: Bool = false) {
        self.status = status
        ownedBody = nil
        var head = "HTTP/1.1 \(status) \(StatsServiceAnswer.reason(status))\r\ncontent-length: \(body.count)\r\ncache-control: no-cache\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        let headBytes = Array(head.utf8)
        let sent = headOnly ? [] : body
        storage = .allocate(byteCount: max(headBytes.count + sent.count, 1), alignment: 1)
        storage.copyBytes(from: headBytes)
        if !sent.isEmpty { UnsafeMutableRawBufferPointer(rebasing: storage[headBytes.count...]).copyBytes(from: sent) }
        let base = UnsafeRawBufferPointer(storage)
        response = HTTPLocalResponse(status: status,
                                     head: UnsafeRawBufferPointer(rebasing: base[0..<headBytes.count]),
                                     body: UnsafeRawBufferPointer(rebasing: base[headBytes.count..<(headBytes.count + sent.count)]))
    }

    /// An answer whose body is `body`, taken over (deallocated with the answer): no copy.
    init(status: Int, headers: [(String, String)], taking body: UnsafeMutableRawBufferPointer, headOnly: Bool = false) {
        self.status = status
        var head = "HTTP/1.1 \(status) \(StatsServiceAnswer.reason(status))\r\ncontent-length: \(body.count)\r\ncache-control: no-cache\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        let headBytes = Array(head.utf8)
        storage = .allocate(byteCount: max(headBytes.count, 1), alignment: 1)
        storage.copyBytes(from: headBytes)
        ownedBody = body
        response = HTTPLocalResponse(status: status,
                                     head: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(storage)[0..<headBytes.count]),
                                     body: headOnly ? UnsafeRawBufferPointer(start: nil, count: 0) : UnsafeRawBufferPointer(body))
    }

    /// HAProxy's error page for `status` (`stats http-request deny`).
    static func errorPage(_ status: Int, headOnly: Bool) -> StatsServiceAnswer {
        let body = HTTPErrorPages.page(status).map { page in page.body.withUTF8Buffer { Array($0) } } ?? []
        return StatsServiceAnswer(status: status, headers: [("content-type", "text/html")], body: body, headOnly: headOnly)
    }

    deinit {
        storage.deallocate()
        if let b = ownedBody?.baseAddress { b.deallocate() }
    }

    /// The whole answer as text (tests).
    var text: String {
        String(decoding: response.head, as: UTF8.self) + "\r\n" + String(decoding: response.body, as: UTF8.self)
    }

    var body: [UInt8] { Array(response.body) }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 303: "See Other"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 405: "Method Not Allowed"
        default: String(describing: HTTPErrorPages.reason(status))
        }
    }
}
