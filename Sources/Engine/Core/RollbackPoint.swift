import ConfigModel

/// The configuration a `rollback` makes current again: the generation that was current before
/// the current one, as it was loaded (the parsed model and the bytes of every file it read:
/// certificates, CA and CRL files, error files). Values only: no runtime object, no session, no
/// socket. A rollback builds a fresh generation from it, with a new id, as a reload builds one
/// from what it read, and carries state from the current generation the same way.
public struct RollbackPoint: Sendable {
    /// The id and hash of the generation it was (what `show generations` and the answers name).
    public let generation: Int
    public let hash: String
    public let config: Config
    public let files: [String]

    init(_ generation: Generation) {
        self.generation = generation.id
        hash = generation.config.hash
        config = generation.config.config
        files = generation.config.files
    }

    /// The configuration to build generation `id` from.
    public func configuration(id: Int) -> ConfigGeneration {
        ConfigGeneration(id: id, hash: hash, config: config, files: files)
    }
}
