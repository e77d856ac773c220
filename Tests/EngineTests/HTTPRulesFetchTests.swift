import ConfigModel
import StrataTestSupport
import Testing
@testable import Engine

@Suite struct HTTPRulesFetchTests {
    let get = ["GET /a/b.html?x=1&name=v1&y=;name=v2 HTTP/1.1", "Host: Example.com:8080",
               "Accept: text/html, application/json;q=0.9", "Accept: */*", "X-Quoted: \"a,b\", c"]

    func render(_ f: FormatString, _ lines: [String], connection: HTTPConnectionInfo? = nil) throws -> String {
        let harness = try RulesHarness { $0.requestRules = [requestRule(.setHeader(name: "X-Out", value: f))] }
        if let connection { harness.connection = connection }
        let outcome = harness.run(h1Message(lines.joined(separator: "\r\n")))
        let head = try #require(outcome.forwarded)
        for line in head.split(separator: "\r\n", omittingEmptySubsequences: false) where line.hasPrefix("X-Out:") {
            return String(line.dropFirst(6)).drop { $0 == " " }.description
        }
        return "<none>"
    }

    func value(_ fetch: SampleFetch, _ converters: SampleConverter..., lines: [String]? = nil) throws -> String {
        try render(FormatString(parts: [.sample(SampleExpression(fetch: fetch, converters: converters))], source: ""),
                   lines ?? get)
    }

    @Test func requestLineFetches() throws {
        #expect(try value(.path) == "/a/b.html")
        #expect(try value(.url) == "/a/b.html?x=1&name=v1&y=;name=v2")
        #expect(try value(.query) == "x=1&name=v1&y=;name=v2")
        #expect(try value(.method) == "GET")
        #expect(try value(.requestVersion) == "1.1")
        #expect(try value(.requestVersion, lines: ["GET / HTTP/1.0"]) == "1.0")
        #expect(try value(.base) == "Example.com:8080/a/b.html")
        #expect(try value(.base, lines: ["GET /p?q HTTP/1.0"]) == "/p")
        // No '?': no query (HAProxy's `query` is absent, `found` fails).
        #expect(try value(.query, lines: ["GET /p HTTP/1.1", "Host: a"]) == "")
        #expect(try !RulesHarness.matches(condition([term(criterion(.query, .found, .none))]), "GET /p HTTP/1.1", "Host: a"))
        #expect(try RulesHarness.matches(condition([term(criterion(.query, .found, .none))]), "GET /p? HTTP/1.1", "Host: a"))
    }

    @Test func absoluteFormTargets() throws {
        let lines = ["GET http://h.example:81/x/y?z=1 HTTP/1.1", "Host: h.example:81"]
        #expect(try value(.path, lines: lines) == "/x/y")
        #expect(try value(.query, lines: lines) == "z=1")
        #expect(try value(.url, lines: lines) == "http://h.example:81/x/y?z=1")
    }

    @Test func urlParameters() throws {
        #expect(try value(.urlParameter("name")) == "v1")
        #expect(try value(.urlParameter("y")) == "")
        #expect(try value(.urlParameter("nope")) == "")
        // ACLs test every occurrence.
        let second = condition([term(criterion(.urlParameter("name"), .exact, strings("v2")))])
        #expect(try RulesHarness.matches(second, get[0], "Host: a"))
        // The name is case-sensitive.
        #expect(try !RulesHarness.matches(condition([term(criterion(.urlParameter("NAME"), .found, .none))]), get[0], "Host: a"))
    }

    @Test func headerValuesSplitOnCommas() throws {
        // A sample expression takes the last value (occurrence -1), or the one asked for.
        #expect(try value(.header("accept", occurrence: -1)) == "*/*")
        #expect(try value(.header("ACCEPT", occurrence: 1)) == "text/html")
        #expect(try value(.header("accept", occurrence: 2)) == "application/json;q=0.9")
        #expect(try value(.header("accept", occurrence: -2)) == "application/json;q=0.9")
        #expect(try value(.header("x-quoted", occurrence: 1)) == "\"a,b\"")
        // fhdr: whole lines.
        #expect(try value(.fullHeader("accept")) == "*/*")
        #expect(try value(.fullHeader("x-quoted")) == "\"a,b\", c")
        #expect(try value(.headerCount("accept")) == "3")
        #expect(try value(.headerCount("missing")) == "0")
        // ACLs test each value.
        let json = condition([term(criterion(.header("accept", occurrence: nil), .exact, strings("application/json;q=0.9")))])
        #expect(try RulesHarness.matches(json, get[0], get[1], get[2], get[3]))
        let full = condition([term(criterion(.fullHeader("accept"), .exact, strings("text/html, application/json;q=0.9")))])
        #expect(try RulesHarness.matches(full, get[0], get[1], get[2], get[3]))
        let notSplit = condition([term(criterion(.fullHeader("accept"), .exact, strings("text/html")))])
        #expect(try !RulesHarness.matches(notSplit, get[0], get[1], get[2], get[3]))
    }

    @Test func connectionFetches() throws {
        let v6 = HTTPConnectionInfo(client: SocketEndpoint(address: IPAddress("2001:db8::1")!, port: 4000),
                                    local: SocketEndpoint(address: IPAddress("::1")!, port: 8443), isTLS: true)
        #expect(try value(.source) == "192.0.2.10")
        #expect(try value(.sourcePort) == "51000")
        #expect(try value(.destination) == "198.51.100.7")
        #expect(try value(.destinationPort) == "80")
        #expect(try value(.sslFrontend) == "0")
        #expect(try render(format(sample(.source)), get, connection: v6) == "2001:db8::1")
        #expect(try render(format(sample(.destination), .literal(" "), sample(.destinationPort), .literal(" "), sample(.sslFrontend)),
                           get, connection: v6) == "::1 8443 1")
        #expect(try RulesHarness.matches(condition([term(criterion(.sslFrontend, .boolean, .none))]), "GET / HTTP/1.1", "Host: a", connection: v6))
        #expect(try !RulesHarness.matches(condition([term(criterion(.sslFrontend, .boolean, .none))]), "GET / HTTP/1.1", "Host: a"))
        #expect(try RulesHarness.matches(condition([term(criterion(.constant(true), .boolean, .none))]), "GET / HTTP/1.1", "Host: a"))
        #expect(try !RulesHarness.matches(condition([term(criterion(.constant(false), .boolean, .none))]), "GET / HTTP/1.1", "Host: a"))
    }

    @Test func convertersAndVariables() throws {
        #expect(try value(.header("host", occurrence: -1), .lower) == "example.com:8080")
        #expect(try value(.path, .upper) == "/A/B.HTML")
        #expect(try value(.path, .upper, .lower) == "/a/b.html")
        #expect(try render(format(.variable("ci"), .literal(":"), .variable("cp"), .literal(" "), .variable("fi"), .literal(":"),
                                  .variable("fp"), .literal(" "), .variable("HM"), .literal(" "), .variable("HP"),
                                  .literal(" "), .variable("HQ"), .literal(" "), .variable("f"), .literal(" "),
                                  .variable("b")), get)
               == "192.0.2.10:51000 198.51.100.7:80 GET /a/b.html ?x=1&name=v1&y=;name=v2 fe fe")
    }

    @Test func samplesInFieldValuesAreEncoded() throws {
        // A sample cannot smuggle a line break into a field; percent-encoded as HAProxy does.
        let lines = ["GET /%0d%0a HTTP/1.1", "Host: a", "X-Tab: a\tb"]
        #expect(try render(format(sample(.header("x-tab", occurrence: -1))), lines) == "a\tb")
        #expect(try render(format(sample(.path)), lines) == "/%0d%0a")
    }
}
