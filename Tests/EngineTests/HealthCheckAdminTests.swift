import ConfigModel
import Testing

@testable import Engine

/// The runtime API's server commands: parsing, levels and HAProxy's answers to mistakes.
@Suite struct HealthCheckAdminTests {
    typealias C = ServerAdminCommand
    static func parse(_ line: String) -> Result<C, ServerAdminError>? {
        C.parse(line.split(separator: " ").map(String.init))
    }
    static let t = C.Target(backend: "be", server: "s1")

    @Test func commandsParse() {
        #expect(Self.parse("show servers state") == .success(.showServersState(backend: nil)))
        #expect(Self.parse("show servers state be") == .success(.showServersState(backend: "be")))
        #expect(Self.parse("show backend") == .success(.showBackends))
        #expect(Self.parse("disable server be/s1") == .success(.setState(Self.t, .maint)))
        #expect(Self.parse("enable server be/s1") == .success(.enableServer(Self.t)))
        #expect(Self.parse("set server be/s1 state drain") == .success(.setState(Self.t, .drain)))
        #expect(Self.parse("set server be/s1 health stopping") == .success(.setHealth(Self.t, .stopping)))
        #expect(Self.parse("set server be/s1 weight 50%") == .success(.setWeight(Self.t, "50%")))
        #expect(Self.parse("set weight be/s1 3") == .success(.setWeight(Self.t, "3")))
        #expect(Self.parse("set server be/s1 addr 10.0.0.1 port 81") == .success(.setAddress(Self.t, address: "10.0.0.1", port: "81")))
        #expect(Self.parse("disable health be/s1") == .success(.setChecks(Self.t, enabled: false)))
        #expect(Self.parse("enable health be/s1") == .success(.setChecks(Self.t, enabled: true)))
        #expect(Self.parse("disable agent be/s1") == .success(.setAgent(Self.t, enabled: false)))
        #expect(Self.parse("enable agent be/s1") == .success(.setAgent(Self.t, enabled: true)))
        #expect(Self.parse("set server be/s1 agent down") == .success(.forceAgent(Self.t, up: false)))
        #expect(Self.parse("set server be/s1 agent up") == .success(.forceAgent(Self.t, up: true)))
        #expect(Self.parse("set server be/s1 agent sideways") == .failure(ServerAdminError("'set server <srv> agent' expects 'up' or 'down'.")))
        #expect(Self.parse("show info") == nil)
        #expect(Self.parse("show servers conn be") == .success(.showServersConnections(backend: "be")))
        #expect(Self.parse("del server be/s1") == .success(.deleteServer(Self.t)))
        #expect(Self.parse("set server be/s1 fqdn app.internal") == .success(.setFQDN(Self.t, "app.internal")))
        #expect(Self.parse("set server be/s1 fqdn") == .failure(ServerAdminError("set server <b>/<s> fqdn requires a FQDN.")))
        #expect(Self.parse("show servers bogus") == nil)
    }

    @Test func mistakesAnswerInHAProxysWords() {
        #expect(Self.parse("disable server be") == .failure(ServerAdminError("Require 'backend/server'.")))
        #expect(Self.parse("set server be/s1 state bogus")
            == .failure(ServerAdminError("'set server <srv> state' expects 'ready', 'drain' and 'maint'.")))
        #expect(Self.parse("set server be/s1 health x")
            == .failure(ServerAdminError("'set server <srv> health' expects 'up', 'stopping', or 'down'.")))
        #expect(Self.parse("set server be/s1") == .failure(ServerAdminError(C.usage)))
        #expect(Self.parse("set weight be/s1") == .failure(ServerAdminError("Require <weight> or <weight%>.")))
        #expect(Self.parse("set server be/s1 addr")
            == .failure(ServerAdminError("set server <b>/<s> addr requires an address and optionally a port.")))
    }

    @Test func weights() {
        #expect(C.weight("7", initial: 2, algorithm: .roundRobin) == .success(7))
        #expect(C.weight("50%", initial: 4, algorithm: .roundRobin) == .success(2))
        #expect(C.weight("200%", initial: 200, algorithm: .roundRobin) == .success(256))
        #expect(C.weight("300", initial: 1, algorithm: .roundRobin)
            == .failure(ServerAdminError("Absolute weight can only be between 0 and 256 inclusive.")))
        #expect(C.weight("x", initial: 1, algorithm: .roundRobin)
            == .failure(ServerAdminError("Empty weight string empty or preceded by garbage")))
        #expect(C.weight("3", initial: 1, algorithm: .source)
            == .failure(ServerAdminError("Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.")))
        #expect(C.weight("0%", initial: 1, algorithm: .source) == .success(0))
        #expect(C.weight("100%", initial: 1, algorithm: .staticRoundRobin) == .success(1))
    }
}
