import Glibc

/// A keep-alive HTTP client connection for tests.
public final class TestHTTPClient {
    public let fd: Int32
    public let reader: HTTPTestReader

    public init?(port: UInt16, timeout: Double = 10) {
        guard let fd = TestSocket.connect(port, timeout: timeout) else { return nil }
        self.fd = fd
        reader = HTTPTestReader(fd: fd)
    }

    deinit { close(fd) }

    public func send(_ text: String) { TestSocket.sendAll(fd, text) }

    public func readResponse() -> (status: Int, head: String, body: String)? { reader.readResponse() }
    public func readHead() -> String? { reader.readHead() }
    public func read(count: Int) -> [UInt8]? { reader.read(count: count) }

    /// Sends `GET path` with Host and extra header lines, reads the response.
    public func get(_ path: String, host: String = "test.local", headers: [String] = []) -> (status: Int, head: String, body: String)? {
        send("GET \(path) HTTP/1.1\r\nHost: \(host)\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n")
        return reader.readResponse()
    }

    /// Whether the server closed the connection (reads EOF within the timeout).
    public func isClosedByPeer() -> Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, 0) == 0
    }
}
