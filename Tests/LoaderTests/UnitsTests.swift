import Testing
@testable import Loader

@Suite struct UnitsTests {
    @Test(arguments: [
        ("0", 0), ("1500", 1500), ("1us", 1), ("999us", 1), ("1000us", 1), ("1001us", 2), ("0us", 0),
        ("5ms", 5), ("5s", 5000), ("2m", 120_000), ("1h", 3_600_000), ("1d", 86_400_000),
        ("24d", 2_073_600_000),
    ])
    func time(_ text: String, _ milliseconds: Int) {
        #expect(ConfigUnits.parseTime(text) == .success(milliseconds))
    }

    @Test func timeFailures() {
        #expect(ConfigUnits.parseTime("5x") == .failure(.unknownUnit("x", expected: "us, ms, s, m, h or d")))
        #expect(ConfigUnits.parseTime("5S") == .failure(.unknownUnit("S", expected: "us, ms, s, m, h or d")))
        #expect(ConfigUnits.parseTime("") == .failure(.notANumber))
        #expect(ConfigUnits.parseTime("s") == .failure(.notANumber))
        #expect(ConfigUnits.parseTime("-5s") == .failure(.notANumber))
        #expect(ConfigUnits.parseTime("25d") == .failure(.tooLarge(maximum: "2147483647 ms, about 24.8 days")))
        #expect(ConfigUnits.parseTime("99999999999999999999") != .success(0))
    }

    @Test func timeFailureNamesTheUnit() {
        #expect(UnitFailure.unknownUnit("x", expected: "us, ms, s, m, h or d").description
            == "unknown unit 'x', expected us, ms, s, m, h or d")
    }

    @Test(arguments: [
        ("0", 0), ("512", 512), ("1k", 1024), ("16K", 16_384), ("2m", 2_097_152), ("1g", 1_073_741_824),
        ("3G", 3_221_225_472),
    ])
    func size(_ text: String, _ bytes: Int) {
        #expect(ConfigUnits.parseSize(text) == .success(bytes))
    }

    @Test func sizeFailures() {
        #expect(ConfigUnits.parseSize("1kb") == .failure(.unknownUnit("kb", expected: "k, m or g")))
        #expect(ConfigUnits.parseSize("k") == .failure(.notANumber))
    }

    @Test func timeoutsLandInMilliseconds() throws {
        let loaded = try load("""
            defaults
                timeout connect 1500us
                timeout client 2m
                timeout server 250
            """ + minimalListen)
        let timeouts = try #require(loaded.config.proxies.first).timeouts
        #expect(timeouts.connect == 2)
        #expect(timeouts.client == 120_000)
        #expect(timeouts.server == 250)
    }
}
