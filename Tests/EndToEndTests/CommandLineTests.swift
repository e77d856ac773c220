import Foundation
import Testing

/// The command line a new user tries first.
@Suite struct CommandLineTests {
    @Test(arguments: ["-v", "--version"])
    func versionNeedsNoConfiguration(_ flag: String) {
        let run = runTool(StrataProcess.binary, [flag])
        #expect(run.status == 0, "\(run.stderr)")
        // One line, as HAProxy's -v (the build options are -vv's).
        #expect(run.stdout.hasPrefix("strata version ") && run.stdout.split(separator: "\n").count == 1, "\(run.stdout)")
    }

    @Test func doubleVerboseVersionPrintsTheBuildOptions() {
        // As `haproxy -vv`: the libraries strata was built with and runs on.
        let run = runTool(StrataProcess.binary, ["-vv"])
        #expect(run.status == 0, "\(run.stderr)")
        let lines = run.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("strata version ") == true)
        for prefix in ["Running on: Linux ", "  SWIFT   = 6.", "Built with libev version : 4.", "Running on libev version : 4.",
                       "Built with OpenSSL version : OpenSSL ", "Running on OpenSSL version : OpenSSL "] {
            #expect(lines.contains { $0.hasPrefix(prefix) }, "\(prefix): \(run.stdout)")
        }
    }
}
