import CLibEV
import ConfigModel

/// One map (a file the `map*` converters name), shared by every event loop and by every
/// generation that has the same file unchanged, so that the admin socket's `add map`, `set map`,
/// `del map` and `clear map` are seen by all of them and kept across reloads (a changed file
/// starts the map again from the file).
///
/// Sharing: copy on write. The entries live in an immutable `MapSnapshot`; a change builds a new
/// snapshot under `lock` (control loop, or a reload's builder adding indexes) and bumps
/// `version` (an atomic, released). Each loop keeps its own reference to the snapshot it reads
/// in a slot of its own, with the version it took it at: a lookup loads `version` (acquire) and
/// only when it moved takes the lock to take the new snapshot. So the steady state has one atomic
/// load per lookup and no lock and no reference count change; a change is seen by the next
/// lookup of every loop (the admin command returns after the change is published); an old
/// snapshot is freed when the last loop has moved off it.
final class SharedMap: @unchecked Sendable {
    let name: String
    let path: String
    let location: SourceLocation
    let digest: UInt64
    /// What `get map` looks up with.
    let match: MapMatch

    private let lock = Lock()
    /// Under `lock`.
    private var current: MapSnapshot
    private var currentVersion = 1
    private var matches: Set<MapMatch>
    private var outputs: Set<MapOutput>
    private var nextID: UInt64 = 1
    private let version = LoopLocalInts.allocate(1)

    private struct Slot {
        var version = 0
        var snapshot: Unmanaged<MapSnapshot>?
    }
    private let slots: UnsafeMutablePointer<Slot>
    /// One slot per data loop, and the last for the control loop (and any other thread).
    let slotCount: Int

    init(_ file: MapFile, slots: Int) {
        name = file.name
        path = file.path
        location = file.location
        digest = file.digest
        match = file.match
        matches = file.matches
        outputs = file.outputs
        var id: UInt64 = 1
        let entries = file.entries.map { e -> MapSnapshot.Entry in
            defer { id += 1 }
            return MapSnapshot.Entry(id: id, key: Array(e.key.utf8), value: Array(e.value.utf8), line: e.line)
        }
        nextID = id
        current = MapSnapshot(entries: entries, matches: file.matches)
        slotCount = max(slots, 1)
        self.slots = UnsafeMutablePointer<Slot>.allocate(capacity: slotCount)
        self.slots.initialize(repeating: Slot(), count: slotCount)
        CLibEV_store(version, 1)
    }

    /// A map for a generation with another number of loops, taking `other`'s entries as they are now.
    convenience init(_ file: MapFile, slots: Int, entriesOf other: SharedMap) {
        self.init(file, slots: slots)
        let (entries, next) = other.lock.withLock { (other.current.entries, other.nextID) }
        lock.withLock {
            current = MapSnapshot(entries: entries, matches: matches)
            nextID = next
        }
    }

    deinit {
        for i in 0..<slotCount { slots[i].snapshot?.release() }
        slots.deinitialize(count: slotCount)
        slots.deallocate()
        LoopLocalInts.deallocate(version)
    }

    /// Calls `body` with the snapshot loop `slot` reads now (an index past the data loops is the
    /// control loop's slot). Only the thread of that loop may pass its slot.
    @inline(__always)
    func read<R>(slot: Int, _ body: (MapSnapshot) -> R) -> R {
        let i = slot < slotCount - 1 && slot >= 0 ? slot : slotCount - 1
        let v = CLibEV_load_acquire(version)
        if slots[i].version != v || slots[i].snapshot == nil {
            lock.withLock {
                let taken = Unmanaged.passRetained(current)
                slots[i].snapshot?.release()
                slots[i].snapshot = taken
                slots[i].version = currentVersion
            }
        }
        return slots[i].snapshot!._withUnsafeGuaranteedRef(body)
    }

    /// The snapshot now (control loop: `show map`, `get map`).
    var snapshot: MapSnapshot { lock.withLock { current } }
    /// The match methods and outputs its converters use.
    var uses: (matches: Set<MapMatch>, outputs: Set<MapOutput>) { lock.withLock { (matches, outputs) } }

    /// Makes lookups by `more` possible too (a reload that keeps the map and adds a converter
    /// with another match method).
    func require(_ more: Set<MapMatch>, _ moreOutputs: Set<MapOutput>) {
        lock.withLock {
            outputs.formUnion(moreOutputs)
            guard !more.isSubset(of: matches) else { return }
            matches.formUnion(more)
            publish(MapSnapshot(entries: current.entries, matches: matches))
        }
    }

    /// Changes the entries: `change` gets them and a maker of new entry ids; the new snapshot is
    /// published before this returns. Returns what `change` returned.
    func update<R>(_ change: (inout [MapSnapshot.Entry], () -> UInt64) -> R) -> R {
        rewrite(publishing: { _ in true }, change)
    }

    /// As `update`, publishing a new snapshot only when `change` returns true (it changed the
    /// entries): a rule that sets what is already there costs a scan, not a new snapshot.
    func updateIfChanged(_ change: (inout [MapSnapshot.Entry], () -> UInt64) -> Bool) {
        _ = rewrite(publishing: { $0 }, change)
    }

    /// `change` on a copy of the entries under the lock, published when `publishing` says so.
    private func rewrite<R>(publishing: (R) -> Bool, _ change: (inout [MapSnapshot.Entry], () -> UInt64) -> R) -> R {
        lock.withLock {
            var entries = current.entries
            var next = nextID
            let result = change(&entries) {
                defer { next += 1 }
                return next
            }
            if publishing(result) {
                nextID = next
                publish(MapSnapshot(entries: entries, matches: matches))
            }
            return result
        }
    }

    /// Under `lock`.
    private func publish(_ snapshot: MapSnapshot) {
        current = snapshot
        currentVersion += 1
        _ = CLibEV_fetch_add_release(version, 1)
    }
}
