import ConfigModel
import Foundation
import Glibc
import Testing
@testable import Loader

/// Files the configuration names are read only when regular and within their kind's limit, so
/// that a reload's build (inside the serving process) never blocks on a FIFO or allocates
/// without bound.
@Suite struct FileLimitTests {
    /// A fresh directory for files a test makes.
    static func directory() throws -> String {
        let path = NSTemporaryDirectory() + "strata-files-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A sparse file of `size` bytes: big on paper, nothing on disk.
    static func sparse(_ path: String, size: Int) throws {
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        #expect(truncate(path, off_t(size)) == 0)
    }

    static func fifo(_ path: String) {
        #expect(mkfifo(path, 0o600) == 0)
    }

    static func seconds(_ body: () -> Void) -> Double {
        let start = Date()
        body()
        return Date().timeIntervalSince(start)
    }

    /// The errors of loading `config` as `dir/t.cfg`, with `dir/` taken out of them.
    static func errors(ofFile config: String, in dir: String) throws -> [String] {
        let path = dir + "/t.cfg"
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        switch ConfigLoader(environment: [:], resolver: testResolver).load(paths: [path]) {
        case .success: return []
        case .failure(let e): return e.errors.map { $0.description.replacingOccurrences(of: dir + "/", with: "") }
        }
    }

    @Test func aFIFOIsRefusedWithoutWaitingForAWriter() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        Self.fifo(dir + "/fifo")
        var result: Result<[UInt8], FileProblem>?
        #expect(Self.seconds { result = FileReader.read(dir + "/fifo", .patterns) } < 1)
        #expect(result == .failure(.notRegular("a FIFO")))

        let errors = try Self.errors(ofFile: """
            frontend web
                mode http
                bind 127.0.0.1:8080
                errorfile 503 \(dir)/fifo
                acl blocked path -f \(dir)/fifo
                http-request deny if blocked
                default_backend app
            backend app
                mode http
                server a 127.0.0.1:9000
            """, in: dir)
        #expect(errors == [
            "t.cfg:4: 'errorfile': cannot read 'fifo': not a regular file (a FIFO)",
            "t.cfg:5: acl 'blocked': cannot read pattern file 'fifo': not a regular file (a FIFO)",
        ])
        // As a configuration file itself, and as a server state file.
        switch ConfigLoader(environment: [:]).load(paths: [dir + "/fifo"]) {
        case .success: Issue.record("a FIFO loaded as a configuration")
        case .failure(let e):
            #expect(e.errors.map(\.description) == ["cannot read configuration file '\(dir)/fifo': not a regular file (a FIFO)"])
        }
        #expect(ServerStateFile.readFile(dir + "/fifo") == .failure(.init(.notRegular("a FIFO"))))
    }

    @Test func aFileOverItsLimitIsRefusedBeforeItIsRead() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.sparse(dir + "/big", size: 100 << 20)
        var result: Result<[UInt8], FileProblem>?
        #expect(Self.seconds { result = FileReader.read(dir + "/big", .configuration) } < 0.5)
        #expect(result == .failure(.tooLarge(size: 100 << 20, limit: "the 32 MiB limit for a configuration file")))
        #expect(FileReader.read(dir + "/big", .tls)
                == .failure(.tooLarge(size: 100 << 20, limit: "the 16 MiB limit for a TLS file")))

        let errors = try Self.errors(ofFile: """
            global
                tune.bufsize 32768
            frontend web
                mode http
                bind 127.0.0.1:8080
                errorfile 503 \(dir)/big
                http-request return status 200 content-type text/plain file \(dir)/big if { path /x }
                default_backend app
            backend app
                mode http
                server a 127.0.0.1:9000
            """, in: dir)
        #expect(errors == [
            "t.cfg:6: 'errorfile': cannot read 'big': it is 104857600 bytes, over tune.bufsize (32768 bytes)",
            "t.cfg:7: 'http-request return': cannot read file 'big': it is 104857600 bytes, over tune.bufsize (32768 bytes)",
        ])
        switch ConfigLoader(environment: [:]).load(paths: [dir + "/big"]) {
        case .success: Issue.record("100 MB of zeros loaded as a configuration")
        case .failure(let e):
            #expect(e.errors.map(\.description)
                    == ["cannot read configuration file '\(dir)/big': it is 104857600 bytes, over the 32 MiB limit for a configuration file"])
        }
    }

    @Test func devicesAreRefusedAndDevNullIsEmpty() {
        #expect(FileReader.read("/dev/zero", .patterns) == .failure(.notRegular("a character device")))
        #expect(FileReader.read("/dev/urandom", .tls) == .failure(.notRegular("a character device")))
        #expect(FileReader.read("/dev/null", .patterns) == .success([]))
        #expect(FileReader.read("/", .patterns) == .failure(.system(EISDIR)))
        #expect(FileReader.read("/nonexistent/x", .patterns) == .failure(.system(ENOENT)))
    }

    @Test func aLoadReadsAFileOnceAndNoMoreThanItsBudgetInAll() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = String(repeating: "/blocked\n", count: 100)  // 900 bytes
        for name in ["a", "b", "c"] { try text.write(toFile: "\(dir)/\(name)", atomically: true, encoding: .utf8) }
        let paths = LoadPaths(budget: 2000)
        #expect(paths.read(dir + "/a", .patterns).map(\.count) == .success(900))
        // Named again (by a thousand proxies, say): not read, not counted again.
        #expect(paths.read(dir + "/a", .patterns).map(\.count) == .success(900))
        #expect(paths.read(dir + "/b", .patterns).map(\.count) == .success(900))
        #expect(paths.read(dir + "/c", .patterns) == .failure(.overBudget(2000)))
        #expect(FileProblem.overBudget(2000).description == "the files this configuration names come to more than 2000 bytes in all")
        #expect(FileProblem.overBudget(LoadPaths.defaultBudget).description
                == "the files this configuration names come to more than 256 MiB in all")
    }
}
