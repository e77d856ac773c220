/// Maps (HAProxy's `map*` converters): a file of `KEY VALUE` lines read when the configuration
/// loads, looked up with one of HAProxy's match methods, answering the value as a string, an
/// integer or an address. A file is one map however many converters name it (HAProxy's
/// "reference"): the admin socket's `add map` changes what every one of them sees.

/// How a map compares the sample with its keys (`map_beg`: the key is a prefix of the sample).
public enum MapMatch: String, Hashable, Sendable, CaseIterable {
    /// Equal (`map`, `map_str`).
    case str
    /// The longest key that begins the sample.
    case beg
    /// The first key (in file order) found in the sample.
    case sub
    /// The first key equal to a run of `/`-delimited words of the sample.
    case dir
    /// The first key equal to a run of `.`- or `/`-delimited words of the sample.
    case dom
    /// The first key that ends the sample.
    case end
    /// The first key (a POSIX extended regular expression) that matches the sample.
    case reg
    /// The first key (an integer or a range `A:B`) that holds the sample as an integer.
    case int
    /// The longest network (an address or `ADDR/PREFIX`) that holds the sample as an address.
    case ip
}

/// What a map's value becomes: `map_str_int` answers integers.
public enum MapOutput: String, Hashable, Sendable {
    case str
    case int
    case ip
}

/// One `map*` converter: which map, how it matches, what it answers, and the value it answers
/// when no key matches (none: the converter fails, as HAProxy's without a default).
public struct MapLookup: Hashable, Sendable {
    /// The map's path as the file system opens it (`Config.maps`' key).
    public var path: String
    public var match: MapMatch
    public var output: MapOutput
    public var defaultValue: String?

    public init(path: String, match: MapMatch, output: MapOutput, defaultValue: String?) {
        self.path = path
        self.match = match
        self.output = output
        self.defaultValue = defaultValue
    }
}

/// One line of a map file: the key is the line's first word, the value the rest of the line.
public struct MapEntry: Hashable, Sendable {
    public var key: String
    public var value: String
    public var line: Int

    public init(key: String, value: String, line: Int) {
        self.key = key
        self.value = value
        self.line = line
    }
}

/// A map file as the load read it.
public struct MapFile: Hashable, Sendable {
    /// The path as the first converter naming it wrote it (what `show map` shows).
    public var name: String
    /// The path the file was read at.
    public var path: String
    /// The line of the configuration that named it first.
    public var location: SourceLocation
    public var entries: [MapEntry]
    /// The match method of the first converter naming it: what `get map` looks up with.
    public var match: MapMatch
    /// The match methods and outputs its converters use: a runtime `add map` is checked for each.
    public var matches: Set<MapMatch>
    public var outputs: Set<MapOutput>
    /// FNV-1a of the file's bytes: a reload keeps the runtime changes of a map whose file is
    /// unchanged, and starts a changed one from its file.
    public var digest: UInt64

    public init(name: String, path: String, location: SourceLocation, entries: [MapEntry], match: MapMatch,
                matches: Set<MapMatch>, outputs: Set<MapOutput>, digest: UInt64) {
        self.match = match
        self.name = name
        self.path = path
        self.location = location
        self.entries = entries
        self.matches = matches
        self.outputs = outputs
        self.digest = digest
    }
}
