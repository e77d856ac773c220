import ConfigModel
import StrataTestSupport
import Testing
@testable import Engine

@Suite struct HTTPRulesMatchTests {
    func matches(_ c: ACLCriterion, _ lines: String...) throws -> Bool {
        let harness = try RulesHarness { $0.requestRules = [requestRule(.deny(status: 403), condition([term(c)]))] }
        return harness.run(h1Message((lines.isEmpty ? ["GET /Static/Img/Logo.PNG?v=2 HTTP/1.1", "Host: WWW.Example.COM:8080",
                                                        "X-Num: 42", "X-Forwarded-For: 10.1.2.3, 2001:db8::7"] : lines)
                                        .joined(separator: "\r\n"))).status == 403
    }

    func host(_ m: MatchMethod, _ p: String..., i: Bool = false) -> ACLCriterion {
        criterion(.header("host", occurrence: nil), m, .strings(p), ignoreCase: i)
    }

    @Test func exact() throws {
        #expect(try matches(host(.exact, "WWW.Example.COM:8080")))
        #expect(try !matches(host(.exact, "www.example.com:8080")))
        #expect(try matches(host(.exact, "www.example.com:8080", i: true)))
        #expect(try matches(host(.exact, "other", "WWW.Example.COM:8080")))
        #expect(try !matches(host(.exact, "WWW.Example.COM")))
    }

    /// Eight patterns or more go through a hash table: the same answers as the scan.
    @Test func exactAgainstManyPatterns() throws {
        let others = (0..<40).map { "host\($0).example.com:8080" }
        #expect(others.count >= HTTPStringTable.threshold)
        func h(_ p: [String], i: Bool = false) -> ACLCriterion { criterion(.header("host", occurrence: nil), .exact, .strings(p), ignoreCase: i) }
        #expect(try matches(h(others + ["WWW.Example.COM:8080"])))
        #expect(try matches(h(["WWW.Example.COM:8080"] + others)))
        #expect(try !matches(h(others + ["www.example.com:8080"])))
        #expect(try matches(h(others + ["www.example.com:8080"], i: true)))
        #expect(try matches(h(others.map { $0.uppercased() } + ["WWW.EXAMPLE.com:8080"], i: true)))
        #expect(try !matches(h(others + ["WWW.Example.COM"])))
        #expect(try !matches(h(others + ["WWW.Example.COM:80800"])))
        #expect(try !matches(h(others, i: true)))
    }

    @Test func prefixSuffixSubstring() throws {
        #expect(try matches(criterion(.path, .prefix, strings("/Static/"))))
        #expect(try !matches(criterion(.path, .prefix, strings("/static/"))))
        #expect(try matches(criterion(.path, .prefix, strings("/static/"), ignoreCase: true)))
        #expect(try matches(criterion(.path, .suffix, strings(".PNG"))))
        #expect(try !matches(criterion(.path, .suffix, strings(".png"))))
        #expect(try matches(criterion(.path, .suffix, strings(".png", ".jpg"), ignoreCase: true)))
        #expect(try matches(criterion(.path, .substring, strings("Img"))))
        #expect(try !matches(criterion(.path, .substring, strings("img"))))
        #expect(try matches(criterion(.path, .substring, strings("IMG"), ignoreCase: true)))
        #expect(try !matches(criterion(.path, .suffix, strings("/Static/Img/Logo.PNG/"))))
    }

    @Test func regex() throws {
        #expect(try matches(criterion(.path, .regex, strings("^/Static/.*\\.(PNG|GIF)$"))))
        #expect(try !matches(criterion(.path, .regex, strings("^/static/.*\\.png$"))))
        #expect(try matches(criterion(.path, .regex, strings("^/static/.*\\.png$"), ignoreCase: true)))
        #expect(try matches(criterion(.url, .regex, strings("v=[0-9]+$"))))
        #expect(throws: ConfigError.self) {
            _ = try HTTPRuleSet(httpProxy { $0.requestRules = [requestRule(.deny(status: 403),
                                                                           condition([term(criterion(.path, .regex, strings("(unclosed")))]))] })
        }
    }

    @Test func domainAndDirectory() throws {
        #expect(try matches(host(.domain, "Example")))
        #expect(try !matches(host(.domain, "example")))
        #expect(try matches(host(.domain, "example", i: true)))
        #expect(try matches(host(.domain, ".example.com.", i: true)))
        #expect(try matches(host(.domain, "8080")))
        #expect(try !matches(host(.domain, "Exam")))
        #expect(try matches(criterion(.path, .directory, strings("Img"))))
        #expect(try matches(criterion(.path, .directory, strings("/Static/Img/"))))
        #expect(try !matches(criterion(.path, .directory, strings("img"))))
        #expect(try matches(criterion(.path, .directory, strings("img"), ignoreCase: true)))
        #expect(try !matches(criterion(.path, .directory, strings("Logo"))))
    }

    @Test func foundAndLength() throws {
        #expect(try matches(criterion(.header("x-num", occurrence: nil), .found, .none)))
        #expect(try !matches(criterion(.header("x-missing", occurrence: nil), .found, .none)))
        #expect(try matches(criterion(.path, .length, .integers([.equal(20)]))))
        #expect(try matches(criterion(.path, .length, .integers([.greater(10)]))))
        #expect(try !matches(criterion(.path, .length, .integers([.less(10)]))))
    }

    @Test func integers() throws {
        let num = SampleFetch.header("x-num", occurrence: nil)
        #expect(try matches(criterion(num, .integer, .integers([.equal(42)]))))
        #expect(try matches(criterion(num, .integer, .integers([.greaterOrEqual(42)]))))
        #expect(try !matches(criterion(num, .integer, .integers([.greater(42)]))))
        #expect(try matches(criterion(num, .integer, .integers([.lessOrEqual(42)]))))
        #expect(try !matches(criterion(num, .integer, .integers([.less(42)]))))
        #expect(try matches(criterion(num, .integer, .integers([.range(40, 50)]))))
        #expect(try matches(criterion(num, .integer, .integers([.range(nil, 42)]))))
        #expect(try !matches(criterion(num, .integer, .integers([.range(43, nil)]))))
        #expect(try matches(criterion(.destinationPort, .integer, .integers([.equal(80)]))))
        #expect(try matches(criterion(.headerCount("x-forwarded-for"), .integer, .integers([.equal(2)]))))
        // Not a number: no match.
        #expect(try !matches(criterion(.header("host", occurrence: nil), .integer, .integers([.greaterOrEqual(0)]))))
    }

    @Test func addresses() throws {
        let v4 = IPNetwork(address: IPAddress("192.0.2.0")!, prefixLength: 24)
        let other = IPNetwork(address: IPAddress("203.0.113.0")!, prefixLength: 24)
        #expect(try matches(criterion(.source, .ip, .networks([other, v4]))))
        #expect(try !matches(criterion(.source, .ip, .networks([other]))))
        #expect(try matches(criterion(.destination, .ip, .networks([IPNetwork(address: IPAddress("198.51.100.7")!, prefixLength: 32)]))))
        // Text samples are parsed; each value of the field is tested.
        let xff = SampleFetch.header("x-forwarded-for", occurrence: nil)
        #expect(try matches(criterion(xff, .ip, .networks([IPNetwork(address: IPAddress("10.0.0.0")!, prefixLength: 8)]))))
        #expect(try matches(criterion(xff, .ip, .networks([IPNetwork(address: IPAddress("2001:db8::")!, prefixLength: 32)]))))
        #expect(try !matches(criterion(xff, .ip, .networks([IPNetwork(address: IPAddress("2001:db9::")!, prefixLength: 32)]))))
        // IPv4 against an IPv4-mapped IPv6 network.
        let mapped = IPNetwork(address: IPAddress("::ffff:192.0.2.0")!, prefixLength: 120)
        #expect(try matches(criterion(.source, .ip, .networks([mapped]))))
        #expect(HTTPAddressBits.parse(HTTPRuleBytes.literal("1::2:3.4.5.6")) == HTTPAddressBits(IPAddress("1::2:3.4.5.6")!))
        #expect(HTTPAddressBits.parse(HTTPRuleBytes.literal("::")) == HTTPAddressBits(IPAddress("::")!))
        #expect(HTTPAddressBits.parse(HTTPRuleBytes.literal("1:2:3:4:5:6:7:8")) == HTTPAddressBits(IPAddress("1:2:3:4:5:6:7:8")!))
        #expect(HTTPAddressBits.parse(HTTPRuleBytes.literal("1:2::")) == HTTPAddressBits(IPAddress("1:2::")!))
        #expect(HTTPAddressBits.parse(HTTPRuleBytes.literal("1:::2")) == nil)
        #expect(HTTPAddressBits.parse(HTTPRuleBytes.literal("256.1.1.1")) == nil)
        #expect(HTTPAddressBits.parse(HTTPRuleBytes.literal("1.2.3")) == nil)
    }

    @Test func methodsAndConverters() throws {
        #expect(try matches(criterion(.method, .exact, strings("GET"))))
        #expect(try !matches(criterion(.method, .exact, strings("get"))))
        #expect(try matches(criterion(.header("host", occurrence: nil), .exact, strings("www.example.com:8080"), converters: [.lower])))
    }

    // MARK: Conditions

    let isGet = criterion(.method, .exact, strings("GET"))
    let isPost = criterion(.method, .exact, strings("POST"))
    let isAPI = criterion(.path, .prefix, strings("/api"))
    let isAdmin = criterion(.path, .prefix, strings("/admin"))

    func denies(_ c: Condition, _ requestLine: String) throws -> Bool {
        try RulesHarness.matches(c, requestLine, "Host: a")
    }

    @Test func termsAreANDed() throws {
        let c = condition([term(isGet), term(isAPI)])
        #expect(try denies(c, "GET /api/x HTTP/1.1"))
        #expect(try !denies(c, "POST /api/x HTTP/1.1"))
        #expect(try !denies(c, "GET /web HTTP/1.1"))
    }

    @Test func alternativesAreORed() throws {
        let c = condition([term(isPost), term(isAPI)], [term(isAdmin)])
        #expect(try denies(c, "POST /api/x HTTP/1.1"))
        #expect(try denies(c, "GET /admin HTTP/1.1"))
        #expect(try !denies(c, "GET /api HTTP/1.1"))
    }

    @Test func negationAndUnless() throws {
        let notGet = condition([term(isGet, negated: true)])
        #expect(try denies(notGet, "POST / HTTP/1.1"))
        #expect(try !denies(notGet, "GET / HTTP/1.1"))
        let unless = condition([term(isGet), term(isAPI, negated: true)], unless: true)
        // unless (GET and not /api): denies what is not a GET outside /api.
        #expect(try !denies(unless, "GET /web HTTP/1.1"))
        #expect(try denies(unless, "GET /api HTTP/1.1"))
        #expect(try denies(unless, "POST /web HTTP/1.1"))
    }

    @Test func namedACLLinesAreORed() throws {
        // acl static path_beg /static ; acl static path_end .css
        let staticACL = ConditionTerm(name: "static", criteria: [criterion(.path, .prefix, strings("/static")),
                                                                criterion(.path, .suffix, strings(".css"))], negated: false)
        let c = condition([staticACL])
        #expect(try denies(c, "GET /static/a.js HTTP/1.1"))
        #expect(try denies(c, "GET /site.css HTTP/1.1"))
        #expect(try !denies(c, "GET /index.html HTTP/1.1"))
    }

    @Test func anonymousACL() throws {
        // deny if { path /metrics } !{ src 192.0.2.0/24 }
        let anonymous = ConditionTerm(name: "{ path /metrics }", criteria: [criterion(.path, .exact, strings("/metrics"))], negated: false)
        let local = ConditionTerm(name: "{ src 10.0.0.0/8 }", criteria: [criterion(.source, .ip, .networks([IPNetwork(address: .v4(0x0A00_0000), prefixLength: 8)]))],
                                  negated: true)
        #expect(try denies(condition([anonymous, local]), "GET /metrics HTTP/1.1"))
        #expect(try !denies(condition([anonymous, local]), "GET /other HTTP/1.1"))
    }
}
