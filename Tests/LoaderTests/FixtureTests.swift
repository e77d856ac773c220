import ConfigModel
import Foundation
import Testing
@testable import Loader

/// Every fixtures/invalid/NAME.cfg fails with exactly the lines of NAME.errors; every valid
/// fixture loads. The system resolver is used, as strata does.
@Suite struct FixtureTests {
    @Test(arguments: fixtureNames("invalid", extension: "cfg"))
    func invalidFixture(_ name: String) throws {
        let path = "fixtures/invalid/\(name).cfg"
        let expectedText = try String(contentsOfFile: packageRoot + "/fixtures/invalid/\(name).errors", encoding: .utf8)
        let expected = expectedText.split(separator: "\n").map(String.init)
        guard let errors = fixtureErrors([path]) else {
            Issue.record("\(path) loaded without errors")
            return
        }
        #expect(errors == expected)
    }

    @Test func everyInvalidFixtureHasItsErrors() {
        #expect(fixtureNames("invalid", extension: "cfg") == fixtureNames("invalid", extension: "errors"))
        #expect(fixtureNames("invalid", extension: "cfg").count >= 18)
    }

    @Test(arguments: ["fixtures/quickstart.cfg"] + fixtureNames("valid", extension: "cfg").map { "fixtures/valid/\($0).cfg" })
    func validFixture(_ path: String) {
        if let errors = fixtureErrors([path]) { Issue.record("\(path):\n\(errors.joined(separator: "\n"))") }
    }
}
