import HTTP1
import CLibEV
import ConfigModel
import Glibc
import Synchronization

/// What lets a client resume its TLS session on a listener, whatever generation serves it: the
/// session ticket keys and the session cache (session IDs). One per listener identity, carried by
/// the engine from generation to generation, so a reload does not force full handshakes.
/// Shared by the data loops (OpenSSL calls back during their handshakes) and configured by the
/// control loop: one lock guards it (held for a lookup or an insert, once per handshake).
final class TLSSessionStore: @unchecked Sendable {
    private let lock = Lock()
    /// A ticket key: 16 bytes of name, then the HMAC key, then the AES key (HAProxy's 48-byte
    /// keys: AES-128 and a 16-byte HMAC key; 80-byte keys: AES-256 and a 32-byte HMAC key).
    struct TicketKey: Equatable {
        var bytes: [UInt8]
        var name: ArraySlice<UInt8> { bytes[0..<16] }
        var hmac: ArraySlice<UInt8> { bytes.count == 48 ? bytes[16..<32] : bytes[16..<48] }
        var aes: ArraySlice<UInt8> { bytes.count == 48 ? bytes[32..<48] : bytes[48..<80] }
    }

    /// Keys made when the listener first served TLS, used while no `tls-ticket-keys` file says otherwise.
    private let generated: TicketKey
    /// `tls-ticket-keys FILE`: the last three keys decrypt, the one before the last encrypts
    /// (HAProxy's rotation: append a key to the file and reload).
    private(set) var fileKeys: [TicketKey] = []
    private(set) var encryptionKey: TicketKey
    /// Keys that may decrypt a ticket: the file's, then the generated one (tickets issued before a
    /// file was configured still resume).
    private(set) var decryptionKeys: [TicketKey]

    // The session cache: DER-encoded sessions by ID, oldest first for eviction.
    private struct Entry {
        var der: [UInt8]
        var expires: Double
    }
    private var sessions: [[UInt8]: Entry] = [:]
    private var order: [[UInt8]] = []
    private var orderStart = 0
    private(set) var capacity: Int
    private(set) var lifetime: Double

    /// Resumptions served from this store (ticket or cache) and sessions stored: for tests and stats.
    private(set) var resumed = 0
    private(set) var stored = 0

    init(capacity: Int = 20000, lifetimeMS: Int = 300_000) {
        var bytes = [UInt8](repeating: 0, count: 80)
        _ = RAND_bytes(&bytes, 80)
        generated = TicketKey(bytes: bytes)
        encryptionKey = generated
        decryptionKeys = [generated]
        self.capacity = capacity
        self.lifetime = Double(lifetimeMS) / 1000
    }

    /// Takes the settings of the generation now serving the listener.
    func configure(ticketKeys: [[UInt8]]?, capacity: Int, lifetimeMS: Int) {
        lock.withLock {
            self.capacity = max(capacity, 0)
            self.lifetime = Double(lifetimeMS) / 1000
            let keys = (ticketKeys ?? []).filter { $0.count == 48 || $0.count == 80 }.map(TicketKey.init)
            fileKeys = Array(keys.suffix(3))
            if fileKeys.isEmpty {
                encryptionKey = generated
                decryptionKeys = [generated]
            } else {
                encryptionKey = fileKeys.count >= 2 ? fileKeys[fileKeys.count - 2] : fileKeys[0]
                decryptionKeys = fileKeys + [generated]
            }
            trim()
            }
    }

    // MARK: tickets

    /// OpenSSL's ticket key callback: `enc` 1 sets up a new ticket (returns 1), 0 finds the key a
    /// ticket names (0: unknown, full handshake; 1: fine; 2: fine, but issue a fresh ticket).
    /// `renew`: ask for a fresh ticket even when the key is current (TLS 1.3, where a client is
    /// expected to use a ticket once: without a new one its next connection is a full handshake).
    func ticketKey(name: UnsafeMutablePointer<UInt8>, iv: UnsafeMutablePointer<UInt8>, cipher: OpaquePointer,
                   mac: OpaquePointer, encrypt: Bool, renew: Bool = false) -> Int32 {
        lock.withLock {
            if encrypt {
                let key = encryptionKey
                guard RAND_bytes(iv, 16) == 1 else { return -1 }
                key.bytes.withUnsafeBufferPointer { k in
                    name.update(from: k.baseAddress!, count: 16)
                }
                return setUp(key, iv: iv, cipher: cipher, mac: mac, encrypt: true) ? 1 : -1
            }
            for key in decryptionKeys {
                let matches = key.bytes.withUnsafeBufferPointer { memcmp($0.baseAddress!, name, 16) == 0 }
                guard matches else { continue }
                guard setUp(key, iv: iv, cipher: cipher, mac: mac, encrypt: false) else { return -1 }
                resumed += 1
                return key == encryptionKey && !renew ? 1 : 2
            }
            return 0
            }
    }

    private func setUp(_ key: TicketKey, iv: UnsafeMutablePointer<UInt8>, cipher: OpaquePointer, mac: OpaquePointer, encrypt: Bool) -> Bool {
        key.bytes.withUnsafeBufferPointer { k in
            let base = k.baseAddress!
            let hmacLength = key.bytes.count == 48 ? 16 : 32
            let aesLength = key.bytes.count == 48 ? 16 : 32
            return CLibEV_ticket_key_init(cipher, mac, base + 16, hmacLength, base + 16 + hmacLength, aesLength, iv, encrypt ? 1 : 0) == 1
        }
    }

    // MARK: session cache

    /// Stores a session OpenSSL just made (`SSL_SESSION *`).
    func add(_ session: OpaquePointer, now: Double) {
        lock.withLock {
            guard capacity > 0 else { return }
            var idLength: UInt32 = 0
            guard let idPointer = SSL_SESSION_get_id(session, &idLength), idLength > 0 else { return }
            let id = Array(UnsafeBufferPointer(start: idPointer, count: Int(idLength)))
            let size = i2d_SSL_SESSION(session, nil)
            guard size > 0 else { return }
            var der = [UInt8](repeating: 0, count: Int(size))
            der.withUnsafeMutableBufferPointer { buffer in
                var p: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
                _ = i2d_SSL_SESSION(session, &p)
            }
            if sessions.updateValue(Entry(der: der, expires: now + lifetime), forKey: id) == nil { order.append(id) }
            stored += 1
            trim()
            }
    }

    /// The session with `id`, decoded (the caller owns the reference), or nil.
    func find(_ id: UnsafeRawBufferPointer, now: Double) -> OpaquePointer? {
        lock.withLock {
            let key = Array(id.bindMemory(to: UInt8.self))
            guard let entry = sessions[key] else { return nil }
            guard entry.expires > now else {
                sessions[key] = nil
                return nil
            }
            let session = entry.der.withUnsafeBufferPointer { buffer -> OpaquePointer? in
                var p: UnsafePointer<UInt8>? = buffer.baseAddress
                return d2i_SSL_SESSION(nil, &p, buffer.count)
            }
            if session != nil { resumed += 1 }
            return session
            }
    }

    func remove(_ session: OpaquePointer) {
        lock.withLock {
            var idLength: UInt32 = 0
            guard let idPointer = SSL_SESSION_get_id(session, &idLength), idLength > 0 else { return }
            sessions[Array(UnsafeBufferPointer(start: idPointer, count: Int(idLength)))] = nil
            }
    }

    var cachedSessions: Int { lock.withLock { sessions.count } }

    /// Evicts the oldest sessions beyond the capacity (and forgets IDs already removed).
    private func trim() {
        while sessions.count > capacity || (orderStart < order.count && sessions[order[orderStart]] == nil && order.count - orderStart > sessions.count) {
            guard orderStart < order.count else { break }
            sessions[order[orderStart]] = nil
            orderStart += 1
        }
        if orderStart > 1024 && orderStart * 2 > order.count {
            order.removeFirst(orderStart)
            orderStart = 0
        }
    }
}
