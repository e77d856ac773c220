// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "strata",
    products: [
        .executable(name: "strata", targets: ["Daemon"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // Real functions for libev's macros and the Linux calls Glibc's module does not export;
        // c-ares (the resolvers' DNS client) driven by the engine's loop; libnghttp2 (HTTP/2 framing,
        // HPACK, flow control) driven by the same loop over strata's own buffers; zlib (HTTP
        // compression's deflate, gzip and raw deflate) over the same buffers.
        .target(
            name: "CLibEV",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("ev"), .linkedLibrary("ssl"), .linkedLibrary("crypto"), .linkedLibrary("cares"), .linkedLibrary("crypt"), .linkedLibrary("nghttp2"), .linkedLibrary("xxhash"), .linkedLibrary("z"), .linkedLibrary("deflate")]
        ),
        .target(name: "ConfigModel"),
        .target(name: "Loader", dependencies: ["ConfigModel"]),
        // The HTTP/1 parser and writer: pure values, no I/O (the fuzz target builds it alone).
        .target(name: "HTTP1"),
        // The TCP layer's wire formats (PROXY protocol header, TLS ClientHello): pure values, no
        // I/O, built alone by the fuzz target like HTTP1.
        .target(name: "TCPWire"),
        .target(name: "Engine", dependencies: ["ConfigModel", "HTTP1", "TCPWire", "CLibEV"]),
        // The privilege broker: its protocol and policy (plain values) and the forked process.
        .target(name: "Broker", dependencies: ["ConfigModel", "Loader", "Engine", "CLibEV"]),
        .executableTarget(
            name: "Daemon",
            dependencies: [
                "Loader", "Engine", "ConfigModel", "Broker",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // What the test targets share: sockets, HTTP and TLS clients, certificates, the tools tests
        // run (openssl, python, chromium), message builders. The C shim gives the TLS client OpenSSL.
        .target(name: "StrataTestSupport", dependencies: ["CLibEV"], path: "Tests/StrataTestSupport"),
        .testTarget(name: "LoaderTests", dependencies: ["Loader", "ConfigModel", "StrataTestSupport"]),
        .testTarget(name: "HTTP1Tests", dependencies: ["HTTP1", "StrataTestSupport"]),
        .testTarget(name: "TCPWireTests", dependencies: ["TCPWire"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "HTTP1", "ConfigModel", "Loader", "StrataTestSupport"]),
        .testTarget(name: "BrokerTests", dependencies: ["Broker", "Engine", "Loader", "ConfigModel", "CLibEV", "StrataTestSupport"]),
        .testTarget(name: "EndToEndTests", dependencies: ["CLibEV", "StrataTestSupport"]),
    ]
)
