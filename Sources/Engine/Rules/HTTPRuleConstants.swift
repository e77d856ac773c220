import HTTP1
import ConfigModel
/// Bytes that live as long as a rule set: header names, patterns, literals, bodies, error pages.
/// Each is its own allocation at a stable address, freed with the set; never mutated after
/// the set is built. Also the compiled conditions' tables (`buffer`), so that evaluating them
/// copies plain values and touches no reference count.
final class HTTPRuleConstants {
    private var blocks: [UnsafeMutableRawBufferPointer] = []
    private var tables: [UnsafeMutableRawPointer] = []
    /// Objects the tables point at without retaining them (compiled regexes).
    private var objects: [AnyObject] = []

    func bytes(_ source: some Collection<UInt8>, lowercased: Bool = false) -> UnsafeRawBufferPointer {
        let block = UnsafeMutableRawBufferPointer.allocate(byteCount: max(source.count, 1), alignment: 1)
        var i = 0
        for b in source {
            block[i] = lowercased ? HTTPByte.lowercased(b) : b
            i += 1
        }
        blocks.append(block)
        return UnsafeRawBufferPointer(start: block.baseAddress, count: source.count)
    }

    func bytes(_ string: String, lowercased: Bool = false) -> UnsafeRawBufferPointer {
        bytes(Array(string.utf8), lowercased: lowercased)
    }

    /// `elements` in a buffer that lives as long as the set. Plain values only (no references).
    func buffer<T>(_ elements: [T]) -> UnsafeBufferPointer<T> {
        precondition(_isPOD(T.self), "HTTPRuleConstants.buffer holds plain values only")
        let p = UnsafeMutablePointer<T>.allocate(capacity: max(elements.count, 1))
        p.initialize(from: elements, count: elements.count)
        tables.append(UnsafeMutableRawPointer(p))
        return UnsafeBufferPointer(start: p, count: elements.count)
    }

    /// The proxy's `userlist` sections by name, compiled on first use (the Loader checked each
    /// name a fetch uses; an unknown one is an empty list, which authenticates nobody).
    var userlists: [String: Userlist] = [:]
    /// The generation's maps by path (what `map*` converters look up).
    var maps: [String: SharedMap] = [:]

    /// The map at `path` for a `set-map`/`del-map` rule (the Loader checked that one is loaded).
    func map(_ path: String, _ location: SourceLocation) throws(ConfigError) -> SharedMap {
        guard let map = maps[path] else { throw ConfigError(location, "unable to find map '\(path)'") }
        return map
    }
    /// The proxy's name: `http-request auth`'s realm when it names none, and the table an
    /// `src_*` fetch reads when it names none.
    var proxyName = ""
    /// The generation's stick tables by name (they outlive it: see StickTable).
    var stickTables: [String: StickTable] = [:]
    /// The generation's caches, by section name.
    var caches: [String: HTTPCache] = [:]

    func cache(_ name: String, _ location: SourceLocation) throws(ConfigError) -> HTTPCache {
        guard let cache = caches[name] else { throw ConfigError(location, "unable to find cache '\(name)'") }
        return cache
    }

    /// `name`'s table ("" is the proxy's own), kept alive as long as the set; nil when missing
    /// (the Loader refuses that: only a test's configuration gets here).
    func stickTable(_ name: String?) -> Unmanaged<StickTable>? {
        guard let name else { return nil }
        return stickTables[name.isEmpty ? proxyName : name].map { keep($0) }
    }
    private var compiledUserlists: [String: Unmanaged<HTTPUserlist>] = [:]

    func userlist(_ name: String) -> Unmanaged<HTTPUserlist> {
        if let done = compiledUserlists[name] { return done }
        let list = keep(HTTPUserlist(userlists[name] ?? Userlist(name: name, location: SourceLocation(file: "")), constants: self))
        compiledUserlists[name] = list
        return list
    }

    /// `object`, kept alive as long as the set (a table points at it unretained).
    func keep<T: AnyObject>(_ object: T) -> Unmanaged<T> {
        objects.append(object)
        return Unmanaged.passUnretained(object)
    }

    deinit {
        for block in blocks { block.deallocate() }
        for table in tables { table.deallocate() }
    }
}
