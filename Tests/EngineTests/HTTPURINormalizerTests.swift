import Testing
@testable import Engine

/// The normalizers on HAProxy's documented examples (configuration.txt, `normalize-uri`).
@Suite struct HTTPURINormalizerTests {
    func run(_ input: String, _ body: (UnsafeRawBufferPointer, HTTPScratchBuffer) -> Void) -> String {
        let out = HTTPScratchBuffer(capacity: 1024)
        Array(input.utf8).withUnsafeBytes { body($0, out) }
        return String(decoding: out.bytes(from: 0), as: UTF8.self)
    }

    @Test(arguments: [
        ("/foo/../", "/", "/"), ("/foo/../bar/", "/bar/", "/bar/"), ("/foo/bar/../", "/foo/", "/foo/"),
        ("/../bar/", "/../bar/", "/bar/"), ("/bar/../../", "/../", "/"), ("/foo//../", "/foo/", "/foo/"),
        ("/foo/%2E%2E/", "/foo/%2E%2E/", "/foo/%2E%2E/"),
    ])
    func stripDotDot(_ input: String, _ plain: String, _ full: String) {
        #expect(run(input) { HTTPURINormalizer.stripDotDot($0, $1, full: false) } == plain)
        #expect(run(input) { HTTPURINormalizer.stripDotDot($0, $1, full: true) } == full)
    }

    @Test(arguments: [("/.", "/"), ("/./bar/", "/bar/"), ("/a/./a", "/a/a"), ("/.well-known/", "/.well-known/")])
    func stripDot(_ input: String, _ expected: String) {
        #expect(run(input) { HTTPURINormalizer.stripDot($0, $1) } == expected)
    }

    @Test func mergeSlashesPercentAndQuery() {
        #expect(run("//a///b/") { HTTPURINormalizer.mergeSlashes($0, $1) } == "/a/b/")
        var valid = true
        #expect(run("/%7e%2f%41") { valid = HTTPURINormalizer.percent($0, $1, decode: true) } == "/~%2fA")
        #expect(valid)
        #expect(run("/%7e%2f%4") { valid = HTTPURINormalizer.percent($0, $1, decode: false) } == "/%7E%2F%4")
        #expect(!valid)
        #expect(run("b=1&a=2&&a=1") { HTTPURINormalizer.sortQuery($0, $1) } == "&a=2&a=1&b=1")
    }
}
