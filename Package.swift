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
        // Real functions for libev's macros and the Linux calls Glibc's module does not export.
        .target(
            name: "CLibEV",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("ev"), .linkedLibrary("ssl"), .linkedLibrary("crypto")]
        ),
        .target(name: "ConfigModel"),
        .target(name: "Loader", dependencies: ["ConfigModel"]),
        .target(name: "Engine", dependencies: ["ConfigModel", "CLibEV"]),
        .executableTarget(
            name: "Daemon",
            dependencies: [
                "Loader", "Engine", "ConfigModel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "LoaderTests", dependencies: ["Loader", "ConfigModel"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "ConfigModel", "Loader"]),
        .testTarget(name: "EndToEndTests", dependencies: ["CLibEV"]),
    ]
)
