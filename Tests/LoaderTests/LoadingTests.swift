import ConfigModel
import Foundation
import Testing
@testable import Loader

/// Files, directories, the order errors come in, and the content hash.
@Suite struct LoadingTests {
    /// A fresh directory with `files` written in it.
    func directory(_ files: [String: String]) throws -> String {
        let path = NSTemporaryDirectory() + "strata-loader-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for (name, text) in files {
            let file = path + "/" + name
            try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try text.write(toFile: file, atomically: true, encoding: .utf8)
        }
        return path
    }

    @Test func aDirectoryLoadsItsCfgFilesInLexicalOrder() throws {
        let dir = try directory([
            "20-backend.cfg": "backend b\n    server s 127.0.0.1:2\n",
            "10-frontend.cfg": "frontend f\n    bind 127.0.0.1:1\n    default_backend b\n",
            "README.txt": "not configuration\n",
            "B.cfg": "backend upper\n",
            "sub/99.cfg": "not read: directories are not walked\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let loaded = try loader.load(paths: [dir + "/"]).get()
        #expect(loaded.files == [dir + "/10-frontend.cfg", dir + "/20-backend.cfg", dir + "/B.cfg"])
        #expect(loaded.config.proxies.map(\.name) == ["f", "b", "upper"])
    }

    @Test func severalPathsConcatenateInOrder() throws {
        let dir = try directory([
            "defaults.cfg": "defaults\n    retries 9\n",
            "proxies.cfg": "backend b\n    server s 127.0.0.1:2\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let loaded = try loader.load(paths: [dir + "/defaults.cfg", dir + "/proxies.cfg"]).get()
        #expect(loaded.config.backend(named: "b")?.retries == 9)
        #expect(loaded.files == [dir + "/defaults.cfg", dir + "/proxies.cfg"])
    }

    @Test func errorsOfEveryFileInFileThenLineOrder() throws {
        let dir = try directory([
            "a.cfg": "frontend f\n    bind 127.0.0.1:1\n    default_backend missing\n    bogus\n",
            "b.cfg": "backend b\n    retries x\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard case .failure(let errors) = loader.load(paths: [dir + "/b.cfg", dir + "/a.cfg"]) else {
            Issue.record("expected errors")
            return
        }
        #expect(errors.errors.map(\.description) == [
            "\(dir)/b.cfg:2: 'retries' expects an integer, got 'x'",
            "\(dir)/a.cfg:3: frontend 'f': unable to find required default_backend: 'missing'",
            "\(dir)/a.cfg:4: 'bogus' is not supported in section 'frontend'",
        ])
    }

    @Test func aMissingFileIsAnError() {
        guard case .failure(let errors) = loader.load(paths: ["/nonexistent/strata.cfg"]) else {
            Issue.record("expected an error")
            return
        }
        #expect(errors.description == "cannot read configuration file '/nonexistent/strata.cfg': No such file or directory")
        #expect(errors.errors.first?.location == nil)
    }

    @Test func textLoadsAsIfFromAFile() throws {
        let loaded = try loader.load(text: "backend b\n", file: "x/y.cfg").get()
        #expect(loaded.files == ["x/y.cfg"])
        #expect(loaded.config.proxies.first?.location == SourceLocation(file: "x/y.cfg", line: 1))
    }

    static let base = """
        global
            maxconn 100
        listen app
            bind 127.0.0.1:8080
            server app1 127.0.0.1:8081
        """

    @Test func hashIgnoresCommentsBlankLinesAndSpacing() throws {
        let variant = """
            # a comment
            global
                maxconn    100   # trailing

            listen\tapp
              bind "127.0.0.1:8080"
                server 'app1' 127.0.0.1:8081
            """
        let a = try load(Self.base).hash
        #expect(a == (try load(variant).hash))
        #expect(a.count == 16 && a.allSatisfy { $0.isHexDigit })
    }

    @Test func hashChangesWithAnyWord() throws {
        let a = try load(Self.base).hash
        #expect(a != (try load(Self.base.replacingOccurrences(of: "8081", with: "8082")).hash))
        #expect(a != (try load(Self.base.replacingOccurrences(of: "maxconn 100", with: "maxconn 1000")).hash))
        // Word boundaries count: one word "a b" is not two words, even where the model is the same.
        let one = try load("backend b\n    description \"a b\"\n")
        let two = try load("backend b\n    description a b\n")
        #expect(one.config == two.config)
        #expect(one.hash != two.hash)
    }

    @Test func hashIsStableAcrossProcesses() throws {
        // FNV-1a 64 of the words: a fixed value, whatever the process's hashing seed.
        #expect(try load("backend b\n").hash == "\(ConfigHashVectors.backendB)")
    }

    @Test func windowsLineEndings() throws {
        let loaded = try load("global\r\n    maxconn 5\r\n\r\nbackend b\r\n    retries 1\r\n")
        #expect(loaded.config.global.maxconn == 5)
        #expect(loaded.config.backend(named: "b")?.location.line == 4)
        #expect(loaded.hash == (try load("global\n    maxconn 5\n\nbackend b\n    retries 1\n").hash))
    }

    @Test func hashSeesExpandedValues() throws {
        let text = "listen l\n    bind \"127.0.0.1:${PORT}\"\n    server s 127.0.0.1:1\n"
        #expect(try load(text, environment: ["PORT": "1000"]).hash != (try load(text, environment: ["PORT": "2000"]).hash))
    }
}

/// Known digests, computed independently of Swift's hashing.
enum ConfigHashVectors {
    /// FNV-1a 64 over "backend" 0x00 "b" 0x00 0x0a.
    static let backendB: String = {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in Array("backend".utf8) + [0] + Array("b".utf8) + [0, 0x0a] {
            h ^= UInt64(byte)
            h = h &* 0x0000_0100_0000_01b3
        }
        let digits = String(h, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }()
}

@Suite struct StrictLimitsTests {
    @Test func strictLimitsIsWhatStrataDoesAndItsNegationIsRefused() throws {
        let ok = try load("global\n    strict-limits\n" + minimalListen)
        #expect(ok.config.proxies.count == 1)
        #expect(errors("global\n    no strict-limits\n" + minimalListen)
            == ["test.cfg:2: 'no strict-limits' is not supported: strata does not start with fewer file descriptors than maxconn needs (lower maxconn or raise the hard limit)"])
    }
}

@Suite struct HTTPErrorsSectionKeywordTests {
    @Test func unknownSectionsCodesAndKeywordsAreRefusedAtTheirLine() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("strata-he-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let page = directory.appendingPathComponent("503.http").path
        try "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".write(toFile: page, atomically: true, encoding: .utf8)
        let text = """
            http-errors site
                errorfile 503 \(page)
                errorloc 503 /x
            frontend fe
                mode http
                bind 127.0.0.1:1
                errorfiles site
                errorfiles nope
                errorfiles site 404
                errorfiles site 999
                default_backend b
            backend b
                mode http
                server s 127.0.0.1:2
            http-errors site
            """
        #expect(errors(text) == [
            "test.cfg:3: 'errorloc' is not an http-errors keyword (the section has 'errorfile CODE FILE' lines)",
            "test.cfg:8: 'errorfiles': unknown http-errors section 'nope'",
            "test.cfg:9: 'errorfiles': http-errors 'site' has no errorfile for 404",
            "test.cfg:10: 'errorfiles': status code 999 is not one strata answers (200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503 or 504)",
            "test.cfg:15: http-errors 'site' has the same name as another http-errors section declared at test.cfg:1",
        ])
    }
}

@Suite struct MaxqueueTests {
    @Test func maxqueueIsReadAndShownAsQlimit() throws {
        let loaded = try load("backend b\n    server s 127.0.0.1:2 maxconn 10 maxqueue 20\n    default-server maxqueue 5\n    server t 127.0.0.1:3\n")
        let servers = try #require(loaded.config.proxies.first).servers
        #expect(servers.map(\.options.maxqueue) == [20, 5])
        #expect(errors("backend b\n    server s 127.0.0.1:2 maxqueue x\n") == ["test.cfg:2: 'maxqueue' expects an integer, got 'x'"])
    }
}
