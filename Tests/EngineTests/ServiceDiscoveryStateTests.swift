import ConfigModel
import Testing
@testable import Engine

/// The resolver's decisions as plain values: which address each server takes from an answer,
/// which SRV record each template server holds, resolution maintenance beside forced maintenance,
/// and c-ares's parsers over answers good and broken.
@Suite struct ServiceDiscoveryStateTests {
    static let a = IPAddress("10.0.0.1")!, b = IPAddress("10.0.0.2")!, c = IPAddress("10.0.0.3")!
    static let v6 = IPAddress("2001:db8::1")!

    static func server(current: IPAddress? = nil, held: IPAddress? = nil, prefer: AddressFamily = .ipv4,
                       networks: [IPNetwork] = [], duplicate: Bool = false) -> AddressAssignment.Server {
        AddressAssignment.Server(current: current, held: held, prefer: prefer, networks: networks, allowDuplicate: duplicate)
    }

    @Test func eachServerTakesAnAddressNobodyHolds() {
        let choices = AddressAssignment.assign(records: [Self.a, Self.b], servers: [Self.server(), Self.server(), Self.server()])
        // Two records for three servers: the third has none (resolution maintenance).
        #expect(choices == [.take(Self.a), .take(Self.b), .none])
    }

    @Test func aHeldRecordIsKeptWhileItIsAnswered() {
        // The second server holds b: it keeps it, the first takes what is left.
        let choices = AddressAssignment.assign(records: [Self.b, Self.c], servers: [Self.server(current: Self.a, held: Self.a),
                                                                                    Self.server(current: Self.b, held: Self.b)])
        #expect(choices == [.take(Self.c), .keep(Self.b)])
    }

    @Test func theSameAddressFromLibcGoesToOneServerOnly() {
        // A template resolved by libc at load: every server has the first address, none holds it.
        let choices = AddressAssignment.assign(records: [Self.a, Self.b], servers: [Self.server(current: Self.a), Self.server(current: Self.a)])
        #expect(choices == [.take(Self.a), .take(Self.b)])
    }

    @Test func scoresPreferTheFamilyThenTheNetworkThenWhatTheServerHas() {
        #expect(AddressAssignment.assign(records: [Self.a, Self.v6], servers: [Self.server(prefer: .ipv6)]) == [.take(Self.v6)])
        #expect(AddressAssignment.assign(records: [Self.v6, Self.a], servers: [Self.server(prefer: .ipv4)]) == [.take(Self.a)])
        let net = IPNetwork(address: Self.b, prefixLength: 32)
        #expect(AddressAssignment.assign(records: [Self.a, Self.b], servers: [Self.server(networks: [net])]) == [.take(Self.b)])
        // Its current address wins a tie, even when it holds no record (set from the socket).
        #expect(AddressAssignment.assign(records: [Self.a, Self.b], servers: [Self.server(current: Self.b)]) == [.take(Self.b)])
        // Only IPv6 answered for an IPv4-preferring server: it takes IPv6.
        #expect(AddressAssignment.assign(records: [Self.v6], servers: [Self.server(prefer: .ipv4)]) == [.take(Self.v6)])
    }

    @Test func allowDupIPLetsServersShareAnAddress() {
        let servers = [Self.server(duplicate: true), Self.server(duplicate: true)]
        #expect(AddressAssignment.assign(records: [Self.a], servers: servers) == [.take(Self.a), .take(Self.a)])
        // Without it on the second: nothing left for it.
        #expect(AddressAssignment.assign(records: [Self.a], servers: [Self.server(), Self.server()]) == [.take(Self.a), .none])
    }

    static func srv(_ target: String, _ port: UInt16, weight: UInt16 = 10) -> SRVRecord {
        SRVRecord(target: target, port: port, weight: weight, priority: 0)
    }

    @Test func srvRecordsGoToFreeServersAndStayWithTheirHolders() {
        let x = Self.srv("x.internal", 80), y = Self.srv("y.internal", 81), z = Self.srv("z.internal", 82)
        #expect(ServiceAssignment.assign(records: [x, y], held: [nil, nil, nil]) == [.take(x), .take(y), .free])
        // y stays where it is (a new weight is the same record); x went: its server is free and takes z.
        let heavier = Self.srv("y.internal", 81, weight: 500)
        #expect(ServiceAssignment.assign(records: [heavier, z], held: [x, y, nil]) == [.take(z), .keep(heavier), .free])
        // No record left for a holder: released.
        #expect(ServiceAssignment.assign(records: [], held: [x, nil]) == [.release, .free])
        // More records than servers: the extra ones wait.
        #expect(ServiceAssignment.assign(records: [x, y, z], held: [nil]) == [.take(x)])
        // Same target, another port: another record.
        #expect(ServiceAssignment.assign(records: [Self.srv("x.internal", 90)], held: [x]) == [.take(Self.srv("x.internal", 90))])
    }

    @Test func resolutionMaintenanceIsAFlagOfItsOwn() {
        var h = ServerHealth(options: ServerOptions())
        #expect(h.enterResolutionMaintenance(reason: "DNS NX status", now: 1) == .enteringMaintenance(wasDown: false, reason: "DNS NX status"))
        #expect(h.admin == [.resolutionMaintenance] && h.admin.rawValue == 0x20 && !h.isUsable && h.statusText == "MAINT (resolution)")
        // Forced maintenance on top says nothing more; leaving one of the two is not enough.
        #expect(h.enterMaintenance(now: 2) == nil)
        #expect(h.leaveResolutionMaintenance(name: "app.internal", now: 3) == nil)
        #expect(!h.isUsable && h.admin == [.forcedMaintenance])
        #expect(h.leaveMaintenance(now: 4) == .leavingMaintenance(drain: false))
        #expect(h.isUsable)
        // Back in it, then out by the resolver: HAProxy's "resolves again".
        _ = h.enterResolutionMaintenance(reason: "No IP for server", now: 5)
        #expect(h.leaveResolutionMaintenance(name: "app.internal", now: 6) == .leavingMaintenance(drain: false, resolved: "app.internal"))
        #expect(h.isUsable && h.checkStateFlags & 0x08 == 0)
    }

    /// A DNS answer to `name` (one question) with A records.
    static func answer(_ name: String, addresses: [[UInt8]]) -> [UInt8] {
        var m: [UInt8] = [0x12, 0x34, 0x81, 0x80, 0, 1, 0, UInt8(addresses.count), 0, 0, 0, 0]
        for label in name.split(separator: ".") { m.append(UInt8(label.utf8.count)); m += Array(label.utf8) }
        m += [0, 0, 1, 0, 1]
        for a in addresses { m += [0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4] + a }
        return m
    }

    @Test func cAresParsesAnswersAndRefusesBrokenOnes() {
        let good = Self.answer("app.internal", addresses: [[10, 0, 0, 1], [10, 0, 0, 2]])
        guard case .addresses(let list, cname: false) = good.withUnsafeBufferPointer({ NameserverChannel.parse($0, as: .a) }) else {
            Issue.record("no addresses")
            return
        }
        #expect(list == [Self.a, Self.b])
        // The wrong type asked: no data. Nothing at all: invalid.
        if case .failure(.noData) = good.withUnsafeBufferPointer({ NameserverChannel.parse($0, as: .aaaa) }) {} else { Issue.record("AAAA") }
        if case .failure(.invalid) = [UInt8]().withUnsafeBufferPointer({ NameserverChannel.parse($0, as: .a) }) {} else { Issue.record("empty") }
        // Every truncation and a few thousand corruptions of the answer: an answer or an error,
        // never a crash (the bytes come from the network).
        var generator = SystemRandomNumberGenerator()
        for length in 0..<good.count {
            for type in [DNSQueryType.a, .aaaa, .srv] { _ = Array(good.prefix(length)).withUnsafeBufferPointer { NameserverChannel.parse($0, as: type) } }
        }
        for _ in 0..<3000 {
            var bytes = good
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            for type in [DNSQueryType.a, .aaaa, .srv] { _ = bytes.withUnsafeBufferPointer { NameserverChannel.parse($0, as: type) } }
        }
    }
}
