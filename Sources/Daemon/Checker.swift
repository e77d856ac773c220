import ConfigModel
import Foundation
import Loader

/// `strata -c`: every error as `file:line: message` on stderr; exit 0 valid, 1 invalid.
struct Checker {
    var files: [String]

    func run() -> Int32 {
        switch ConfigLoader().load(paths: files) {
        case .success(let loaded):
            print("Configuration file is valid (\(loaded.config.proxies.count) proxies, hash \(loaded.hash))")
            return 0
        case .failure(let errors):
            for e in errors.errors { FileHandle.standardError.write(Data((e.description + "\n").utf8)) }
            return 1
        }
    }
}
