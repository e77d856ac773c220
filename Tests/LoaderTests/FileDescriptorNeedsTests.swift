import ConfigModel
import Testing
@testable import Loader

/// What a global maxconn needs in file descriptors (HAProxy's maxsock, from what strata opens),
/// and `ulimit-n`.
@Suite struct FileDescriptorNeedsTests {
    @Test func twoPerConnectionThenListenersChecksSocketsLogsAndAMargin() throws {
        let config = try load("""
            global
                maxconn 1000
                stats socket /tmp/a.sock
                log 127.0.0.1:514 local0
            frontend web
                mode http
                bind 127.0.0.1:8080
                bind 127.0.0.1:8081
                log 127.0.0.1:514 local0
                log 127.0.0.1:515 local0
                default_backend app
            frontend off
                mode http
                bind 127.0.0.1:8082
                disabled
                default_backend app
            backend app
                mode http
                server a 127.0.0.1:9000 check
                server b 127.0.0.1:9001 check
                server c 127.0.0.1:9002
            """).config
        let needs = try #require(FileDescriptorNeeds(config))
        // 2 listeners (not the disabled one), 2 checks, 1 admin socket, 2 log destinations.
        #expect(needs.required == 2000 + 2 + 2 + 1 + 2 + 64)
        // HTTP only: no splice pipes.
        #expect(needs.wanted == needs.required)
    }

    @Test func tcpModeAsksForAPipePerFourConnections() throws {
        let config = try load("global\n    maxconn 1000\n" + minimalListen).config
        let needs = try #require(FileDescriptorNeeds(config))
        #expect(needs.required == 2000 + 1 + 64)
        #expect(needs.wanted == needs.required + 500)
    }

    @Test func withoutMaxconnTheEngineDerivesItFromTheLimit() throws {
        #expect(FileDescriptorNeeds(try load(minimalListen).config) == nil)
    }

    @Test func ulimitN() throws {
        let config = try load("global\n    ulimit-n 65535\n" + minimalListen).config
        #expect(config.global.fileLimit == 65535)
        #expect(config.global.locations["ulimit-n"] == SourceLocation(file: "test.cfg", line: 2))
        #expect(errors("global\n    ulimit-n 0\n" + minimalListen)
                == ["test.cfg:2: 'ulimit-n' expects a positive integer, got '0'"])
    }
}
