import ConfigModel
import Glibc
import Testing

@testable import Engine

/// The connector's rules that need no socket.
struct ServerConnectorTests {
    static let here = SourceLocation(file: "test", line: 1)

    static func server(port: UInt16?) -> BackendServer {
        BackendServer(config: ConfigModel.Server(name: "s1", location: here, id: 1, host: "127.0.0.1",
                                                 address: .v4(0x7f00_0001), port: port, options: ServerOptions()),
                      backendName: "be")
    }

    @Test func aServerWithAPortIsReachedOnIt() {
        let endpoint = ServerConnector.endpoint(of: Self.server(port: 8081), clientFD: -1)
        #expect(endpoint == SocketEndpoint(address: .v4(0x7f00_0001), port: 8081))
    }

    /// Without a port and without the client's destination (a socket that cannot be read), the
    /// port stays 0 as HAProxy leaves it: the connect fails and counts as the server's.
    @Test func aServerWithoutAPortAndAnUnknownDestinationGetsPortZero() {
        #expect(ServerConnector.endpoint(of: Self.server(port: nil), clientFD: -1).port == 0)
    }

    /// The client's destination port, read from its socket (a listening socket stands in).
    @Test func aServerWithoutAPortTakesTheClientsDestinationPort() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0)
        let port = try #require(localEndpoint(fd)?.port)
        #expect(ServerConnector.endpoint(of: Self.server(port: nil), clientFD: fd).port == port)
    }

    /// HAProxy's turn-around after a refused connect: min(1 s, `timeout connect`).
    @Test func theTurnaroundIsTheShorterOfOneSecondAndTheConnectTimeout() {
        #expect(ServerConnector.turnaroundDelay(connectTimeout: nil) == 1)
        #expect(ServerConnector.turnaroundDelay(connectTimeout: 200) == 0.2)
        #expect(ServerConnector.turnaroundDelay(connectTimeout: 5000) == 1)
    }
}
