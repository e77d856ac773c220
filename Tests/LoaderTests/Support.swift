import ConfigModel
import Foundation
@testable import Loader

/// The package root, found from this file's path, so that fixtures load by the relative paths
/// their `.errors` files are written with.
let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }  // Support.swift, LoaderTests, Tests
    return url.path
}()

/// Loads fixture paths given relative to the package root, with the real resolver as strata
/// does, and gives the errors with those relative paths (without changing the process's working
/// directory, which parallel tests share).
func fixtureErrors(_ paths: [String]) -> [String]? {
    let prefix = packageRoot + "/"
    switch ConfigLoader(environment: [:]).load(paths: paths.map { prefix + $0 }) {
    case .success: return nil
    case .failure(let errors): return errors.errors.map { $0.description.replacingOccurrences(of: prefix, with: "") }
    }
}

/// A valid fixture's configuration.
func loadFixture(_ paths: String...) throws -> LoadedConfig {
    try ConfigLoader(environment: [:]).load(paths: paths.map { packageRoot + "/" + $0 }).get()
}

/// Names tests resolve without DNS.
let testResolver = HostResolver.table([
    "localhost": .v4(0x7f00_0001),
    "app.internal": .v4(0x0a00_0005),
    "v6.internal": IPAddress("2001:db8::5")!,
])

/// For fragments (a backend alone, a global section): the rule that a configuration must listen
/// somewhere is tested on its own.
let loader: ConfigLoader = {
    var loader = ConfigLoader(environment: [:], resolver: testResolver)
    loader.requiresListener = false
    return loader
}()

/// Loads `text`, expecting success.
func load(_ text: String, environment: [String: String] = [:]) throws -> LoadedConfig {
    var loader = ConfigLoader(environment: environment, resolver: testResolver)
    loader.requiresListener = false
    switch loader.load(text: text, file: "test.cfg") {
    case .success(let loaded): return loaded
    case .failure(let errors): throw errors
    }
}

/// The error lines of loading `text`, empty when it loads.
func errors(_ text: String) -> [String] {
    switch loader.load(text: text, file: "test.cfg") {
    case .success: return []
    case .failure(let errors): return errors.errors.map(\.description)
    }
}

/// A minimal valid proxy to append to snippets that test something else.
let minimalListen = """

    listen minimal
        bind 127.0.0.1:65000
        server s 127.0.0.1:65001

    """

/// The fixture files of a folder under fixtures/, sorted.
func fixtureNames(_ folder: String, extension ext: String) -> [String] {
    let directory = packageRoot + "/fixtures/" + folder
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    return names.filter { $0.hasSuffix("." + ext) }.map { String($0.dropLast(ext.count + 1)) }.sorted()
}
