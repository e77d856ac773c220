import ConfigModel
import Engine
import Foundation
import Loader

/// `strata -c`: every error as `file:line: message` on stderr; exit 0 valid, 1 invalid.
struct Checker {
    var files: [String]
    /// `-dr`.
    var resolutionFailuresWarn = false
    /// `-L NAME`.
    var localPeer: String? = nil

    func run() -> Int32 {
        var loader = ConfigLoader()
        loader.resolutionFailuresWarn = resolutionFailuresWarn
        loader.localPeer = localPeer
        switch loader.load(paths: files) {
        case .success(let loaded):
            if !loaded.config.global.quiet {
                for w in loaded.warnings { FileHandle.standardError.write(Data("[WARNING] \(w)\n".utf8)) }
            }
            // What only the engine checks (TLS contexts: certificates, ciphers, curves; the rules'
            // regular expressions) is checked too, as a start or a reload would: `-c` must not
            // pass a file that `-f` refuses.
            do {
                try Engine.checkGeneration(ConfigGeneration(id: 1, hash: loaded.hash, config: loaded.config, files: loaded.files))
            } catch {
                for e in error.errors { FileHandle.standardError.write(Data((e.description + "\n").utf8)) }
                return 1
            }
            // As `haproxy -c`: the server-state files `load-server-state-from-file` names are read
            // and their problems reported (a warning does not make the configuration invalid).
            for m in ServerStateFile.restore(for: loaded.config).messages {
                FileHandle.standardError.write(Data("[\(m.level.rawValue)] \(m.text)\n".utf8))
            }
            print("Configuration file is valid (\(loaded.config.proxies.count) proxies, hash \(loaded.hash))")
            return 0
        case .failure(let errors):
            for e in errors.errors { FileHandle.standardError.write(Data((e.description + "\n").utf8)) }
            return 1
        }
    }
}
