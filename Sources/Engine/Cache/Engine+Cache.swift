/// The admin socket's `show cache` (HAProxy's format): each cache of the current generation,
/// then each entry not expired.
extension Engine {
    static let cacheCommands = [
        AdminCommand(["show", "cache"], usage: ("show cache", "show cache status"), level: .admin) { c in
            .text(c.engine.showCache())
        },
    ]

    func showCache() -> String {
        guard let current else { return "" }
        let now = HTTPCachePolicy.wallSeconds()
        var out = ""
        for section in current.config.config.caches {
            guard let cache = current.caches[section.name] else { continue }
            let address = Engine.pointer(cache)
            // HAProxy's cache names its shared memory area apart; strata's cache is one object.
            out += "\(address): \(section.name) (shctx:\(address), available blocks:\(cache.totalBlocks - cache.usedBlocks))\n"
            for entry in cache.liveEntries(now: now) {
                let variant = entry.signature == 0 ? String(repeating: "0", count: 40) : Engine.hex(entry.variant)
                out += "\(Engine.pointer(entry)) hash:\(UInt32(truncatingIfNeeded: entry.hash)) vary:0x\(variant) size:\(entry.size) (\(entry.blocks) blocks), refcount:\(entry.readers), expire:\(entry.expire - now)\n"
            }
        }
        if out.hasSuffix("\n") { out.removeLast() }
        return out
    }

    private static func pointer(_ object: AnyObject) -> String {
        "0x" + String(UInt(bitPattern: Unmanaged.passUnretained(object).toOpaque()), radix: 16)
    }

    /// The secondary key as HAProxy prints it: the Accept-Encoding bitmap, then the Referer and
    /// Origin hashes (20 bytes), in hexadecimal.
    private static func hex(_ v: HTTPCacheVariant) -> String {
        func bytes<T: FixedWidthInteger>(_ value: T) -> String {
            withUnsafeBytes(of: value.littleEndian) { $0.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }
        }
        return bytes(v.encodings) + bytes(v.referer) + bytes(v.origin)
    }
}
