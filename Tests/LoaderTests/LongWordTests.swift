import ConfigModel
import Foundation
import Testing
@testable import Loader

/// A word of megabytes (a pasted blob, a quote never closed) is reported at once, and the message
/// shows its start, not the whole word.
@Suite struct LongWordTests {
    static let huge = String(repeating: "x", count: 3_000_000)
    static let shown = "'" + String(repeating: "x", count: 63) + "…'"

    static func seconds(_ body: () -> Void) -> Double {
        let start = Date()
        body()
        return Date().timeIntervalSince(start)
    }

    @Test func aThreeMegabyteKeywordIsReportedAtOnceAndCut() {
        var found: [String] = []
        let elapsed = Self.seconds {
            found = errors("""
                global
                    \(Self.huge) 1
                frontend web
                    bind 127.0.0.1:8080
                    \(Self.huge)
                    maxconn \(Self.huge)
                    default_backend app
                backend app
                    server a 127.0.0.1:9000
                """)
        }
        // Not a timing goal (those are in bench/): a bound that only a quadratic walk over the
        // word (6 s before the fix, on a quiet machine) breaks, loose enough for a loaded one.
        #expect(elapsed < 5, "took \(elapsed) s")
        #expect(found == [
            "test.cfg:2: \(Self.shown) is not supported in section 'global'",
            "test.cfg:5: \(Self.shown) is not supported in section 'frontend'",
            "test.cfg:6: 'maxconn' expects an integer, got \(Self.shown)",
        ])
    }

    @Test func suggestionsAreLinearInTheWordAndStillFindNearKeywords() {
        let keywords = KeywordReader.globalKeywords
        #expect(KeywordSuggestion.nearest(to: "maxcon", among: keywords) == "maxconn")
        #expect(KeywordSuggestion.nearest(to: "maxconns", among: keywords) == "maxconn")
        #expect(KeywordSuggestion.nearest(to: "pidfiel", among: keywords) == "pidfile")
        #expect(KeywordSuggestion.nearest(to: "tune.buf", among: keywords) == "tune.bufsize")
        #expect(KeywordSuggestion.nearest(to: "zzzz", among: keywords) == nil)
        // A prefix is a suggestion however long the word: its distance is the difference in length.
        var nearest: String?
        let elapsed = Self.seconds { nearest = KeywordSuggestion.nearest(to: "maxconn" + Self.huge, among: keywords) }
        #expect(nearest == "maxconn")
        #expect(elapsed < 3, "took \(elapsed) s")  // a quadratic walk takes far longer; loose for a loaded machine
        #expect(KeywordSuggestion.nearest(to: Self.huge, among: keywords) == nil)
    }

    @Test func aMessageKeepsTheStartOfALongWordAndWhatClosedIt() {
        let short = "'maxconn' expects an integer, got '" + String(repeating: "7", count: 100) + "'"
        #expect(ConfigError.shortened(short) == short)
        let long = String(repeating: "é", count: 200)
        #expect(ConfigError.shortened("cannot read '\(long)': No such file or directory")
                == "cannot read '\(String(repeating: "é", count: 63))…': No such file or directory")
        #expect(ConfigError.shortened("unknown (\(long)), then") == "unknown (\(String(repeating: "é", count: 63))…), then")
        #expect(ConfigError(nil, "got \(Self.huge)").message == "got " + String(repeating: "x", count: 64) + "…")
    }
}
