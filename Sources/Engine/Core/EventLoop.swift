import CLibEV
import Glibc
import Synchronization

/// Something a libev watcher calls back. Watchers keep an unretained pointer to their handler in
/// their `data` field; the handler keeps itself alive while any of its watchers is started.
/// Subclasses override only the kinds of watchers they own.
open class EventHandler {
    init() {}
    func ioEvent(_ watcher: UnsafeMutablePointer<ev_io>, _ revents: Int32) {}
    func timerEvent(_ watcher: UnsafeMutablePointer<ev_timer>) {}
    func asyncEvent() {}
    func signalEvent(_ signal: Int32) {}
    /// The loop is about to wait for events (`EventLoop.beforePoll`).
    func beforePoll() {}
    /// Events of a server connection this handler owns (`ServerConnection.owner`).
    func serverEvent(_ revents: Int32) {}
}

// Static C callbacks: each finds its handler through the watcher's data field.
private let ioCallback: CLibEV_io_cb = { _, watcher, revents in
    guard let watcher, let data = watcher.pointee.data else { return }
    Unmanaged<EventHandler>.fromOpaque(data).takeUnretainedValue().ioEvent(watcher, revents)
}
private let prepareCallback: CLibEV_prepare_cb = { _, watcher, _ in
    guard let watcher, let data = watcher.pointee.data else { return }
    Unmanaged<EventLoop>.fromOpaque(data).takeUnretainedValue().preparing()
}
private let timerCallback: CLibEV_timer_cb = { _, watcher, _ in
    guard let watcher, let data = watcher.pointee.data else { return }
    Unmanaged<EventHandler>.fromOpaque(data).takeUnretainedValue().timerEvent(watcher)
}
private let asyncCallback: CLibEV_async_cb = { _, watcher, _ in
    guard let watcher, let data = watcher.pointee.data else { return }
    Unmanaged<EventHandler>.fromOpaque(data).takeUnretainedValue().asyncEvent()
}
private let signalCallback: CLibEV_signal_cb = { _, watcher, _ in
    guard let watcher, let data = watcher.pointee.data else { return }
    Unmanaged<EventHandler>.fromOpaque(data).takeUnretainedValue().signalEvent(watcher.pointee.signum)
}

/// A child process ended: the watcher's data is a retained `ChildExit`, released here.
private let childCallback: CLibEV_child_cb = { loop, watcher, _ in
    guard let loop, let watcher, let data = watcher.pointee.data else { return }
    ev_child_stop(loop, watcher)
    let exit = Unmanaged<ChildExit>.fromOpaque(data).takeRetainedValue()
    let status = watcher.pointee.rstatus
    watcher.deallocate()
    exit.body(status)
}

final class ChildExit {
    let body: (Int32) -> Void
    init(_ body: @escaping (Int32) -> Void) { self.body = body }
}

let EV_READ_MASK: Int32 = 0x01
let EV_WRITE_MASK: Int32 = 0x02

/// An `ev_io` at a stable heap address, with the event mask it is started with.
struct IOWatcher: ~Copyable {
    let raw: UnsafeMutablePointer<ev_io>
    private(set) var events: Int32 = 0

    init(fd: Int32, handler: EventHandler) {
        raw = .allocate(capacity: 1)
        CLibEV_io_init(raw, ioCallback, fd, 0)
        raw.pointee.data = Unmanaged.passUnretained(handler).toOpaque()
    }

    var fd: Int32 { raw.pointee.fd }

    /// Starts, stops or changes the watcher so it waits for exactly `events`; nothing when unchanged.
    mutating func watch(_ events: Int32, on loop: EventLoop) {
        if events == self.events { return }
        if self.events != 0 { ev_io_stop(loop.raw, raw) }
        self.events = events
        if events != 0 {
            CLibEV_io_set(raw, raw.pointee.fd, events)
            ev_io_start(loop.raw, raw)
        }
    }

    /// Points the (stopped) watcher at another fd.
    mutating func setFD(_ fd: Int32, on loop: EventLoop) {
        watch(0, on: loop)
        CLibEV_io_set(raw, fd, 0)
    }

    mutating func release(on loop: EventLoop) {
        watch(0, on: loop)
        // An event fed to a watcher never started (an HTTP/2 stream's session) is still pending.
        ev_clear_pending(loop.raw, raw)
        raw.deallocate()
    }
}

/// An `ev_timer` at a stable heap address.
struct TimerWatcher: ~Copyable {
    let raw: UnsafeMutablePointer<ev_timer>

    init(handler: EventHandler) {
        raw = .allocate(capacity: 1)
        CLibEV_timer_init(raw, timerCallback, 0, 0)
        raw.pointee.data = Unmanaged.passUnretained(handler).toOpaque()
    }

    var isActive: Bool { CLibEV_is_active(raw) != 0 }

    /// Points the timer at the object whose `timerEvent` it calls (one made before its owner).
    func setHandler(_ handler: EventHandler) {
        raw.pointee.data = Unmanaged.passUnretained(handler).toOpaque()
    }

    /// (Re)arms the timer to fire once after `seconds`.
    func arm(after seconds: Double, on loop: EventLoop) {
        if isActive { ev_timer_stop(loop.raw, raw) }
        CLibEV_timer_set(raw, max(seconds, 0), 0)
        ev_timer_start(loop.raw, raw)
    }

    /// Arms a repeating timer.
    func arm(every seconds: Double, on loop: EventLoop) {
        if isActive { ev_timer_stop(loop.raw, raw) }
        CLibEV_timer_set(raw, seconds, seconds)
        ev_timer_start(loop.raw, raw)
    }

    func stop(on loop: EventLoop) {
        if isActive { ev_timer_stop(loop.raw, raw) }
    }

    func release(on loop: EventLoop) {
        stop(on: loop)
        raw.deallocate()
    }
}

/// One libev loop and what its thread owns: the buffer and pipe pools, and an inbox other
/// threads post work to (woken through `ev_async`). Everything else of the loop is touched on
/// its own thread only.
public final class EventLoop: EventHandler, @unchecked Sendable {
    let raw: OpaquePointer
    private let wakeup: UnsafeMutablePointer<ev_async>
    /// Handlers whose `beforePoll` runs once every pending event of this turn was handled, just
    /// before the loop waits again: an HTTP/2 connection writes what all its streams produced in
    /// one send there. The prepare watcher runs only while some handler waits for it.
    private let prepare: UnsafeMutablePointer<ev_prepare>
    @exclusivity(unchecked) private var beforePollQueue: [EventHandler] = []
    private let inbox = Locked<[@Sendable () -> Void]>([])
    let buffers: BufferPool
    let pipes = PipePool()

    /// Which data loop this is (0 for `strata-loop-1`): what the per-loop shards of generations,
    /// backends, servers and counters are indexed by. The control loop has `EventLoop.control`,
    /// an index no shard has (it owns none).
    let index: Int
    static let control = Int.max

    /// `isDefault`: libev's default loop, the one that may also watch signals (one a process).
    init(bufferSize: Int = 16384, isDefault: Bool = true, index: Int = EventLoop.control) {
        self.index = index
        raw = isDefault ? CLibEV_default_loop(0) : CLibEV_loop_new(0)
        wakeup = .allocate(capacity: 1)
        buffers = BufferPool(size: bufferSize)
        prepare = .allocate(capacity: 1)
        super.init()
        CLibEV_async_init(wakeup, asyncCallback)
        wakeup.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        ev_async_start(raw, wakeup)
        CLibEV_prepare_init(prepare, prepareCallback)
        prepare.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        // The wakeup watcher alone must not keep ev_run from returning once everything else stops.
        ev_unref(raw)
    }

    /// Loop time in seconds (updated once per iteration: cheap to read on the hot path).
    var now: Double { ev_now(raw) }

    /// Runs until `stop()` or until no watcher is left.
    func run() { ev_run(raw, 0) }

    func stop() { ev_break(raw, 2 /* EVBREAK_ALL */) }

    /// Runs `work` on this loop's thread. Safe from any thread.
    public func post(_ work: @escaping @Sendable () -> Void) {
        inbox.withLock { $0.append(work) }
        ev_async_send(raw, wakeup)
    }

    /// Runs `handler.beforePoll()` once before the loop next waits (the handler is retained
    /// until then). Call it once per turn: the caller keeps its own "queued" flag.
    func runBeforePoll(_ handler: EventHandler) {
        if beforePollQueue.isEmpty { ev_prepare_start(raw, prepare) }
        beforePollQueue.append(handler)
    }

    fileprivate func preparing() {
        // What a handler queues from here runs before the next wait, not in this one.
        let queued = beforePollQueue
        beforePollQueue.removeAll(keepingCapacity: true)
        ev_prepare_stop(raw, prepare)
        for handler in queued { handler.beforePoll() }
    }

    override func asyncEvent() {
        let work = inbox.withLock { queue -> [@Sendable () -> Void] in
            let taken = queue
            queue.removeAll(keepingCapacity: true)
            return taken
        }
        for item in work { item() }
    }

    /// Calls `body` with the wait status once child `pid` ends (libev reaps the default loop's
    /// children itself, so a `waitpid` elsewhere would find none).
    func watchChild(_ pid: Int32, _ body: @escaping (Int32) -> Void) {
        let w = UnsafeMutablePointer<ev_child>.allocate(capacity: 1)
        CLibEV_child_init(w, childCallback, pid)
        w.pointee.data = Unmanaged.passRetained(ChildExit(body)).toOpaque()
        ev_child_start(raw, w)
        ev_unref(raw)
    }

    func makeSignalWatcher(_ signal: Int32, handler: EventHandler) -> UnsafeMutablePointer<ev_signal> {
        let w = UnsafeMutablePointer<ev_signal>.allocate(capacity: 1)
        CLibEV_signal_init(w, signalCallback, signal)
        w.pointee.data = Unmanaged.passUnretained(handler).toOpaque()
        ev_signal_start(raw, w)
        ev_unref(raw)
        return w
    }
}

/// Fixed-size I/O buffers reused across sessions: a session takes one while it has bytes in
/// flight and gives it back when it is empty, so idle connections hold none.
final class BufferPool {
    let size: Int
    /// The loop's thread only: no runtime exclusivity checks (a take and a give per buffer use).
    @exclusivity(unchecked) private var free: [UnsafeMutableRawPointer] = []
    /// Buffers allocated and not freed, and those of them in `free`: written by the loop (a relaxed
    /// store, a plain move), read by `show info` (PoolAlloc_bytes, PoolUsed_bytes).
    private let figures = LoopLocalInts.allocate(2)

    init(size: Int) {
        self.size = size
        free.reserveCapacity(1024)
    }

    deinit { LoopLocalInts.deallocate(figures) }

    /// Buffers allocated (in use or pooled) and pooled, for readers on any thread.
    var allocated: Int { CLibEV_load(figures) }
    var pooled: Int { CLibEV_load(figures + 1) }

    func take() -> UnsafeMutableRawPointer {
        if let b = free.popLast() {
            CLibEV_store(figures + 1, free.count)
            return b
        }
        CLibEV_store(figures, CLibEV_load(figures) + 1)
        return .allocate(byteCount: size, alignment: 16)
    }

    func give(_ buffer: UnsafeMutableRawPointer) {
        if free.count < 4096 {
            free.append(buffer)
            CLibEV_store(figures + 1, free.count)
        } else {
            buffer.deallocate()
            CLibEV_store(figures, CLibEV_load(figures) - 1)
        }
    }
}

/// A pipe used to splice between two sockets, owned by one session at a time.
struct PipePair {
    var readFD: Int32
    var writeFD: Int32
}

/// Pipes reused across sessions: a session holds one only while it splices.
final class PipePool {
    private var free: [PipePair] = []
    static let capacity = 65536
    /// Pipes open (in use or pooled), those pooled, and the bytes spliced to clients: written by
    /// the loop (relaxed stores), read by `show info` (PipesUsed, PipesFree, TotalSplicdedBytesOut).
    private let figures = LoopLocalInts.allocate(3)

    deinit { LoopLocalInts.deallocate(figures) }

    var open: Int { CLibEV_load(figures) }
    var pooled: Int { CLibEV_load(figures + 1) }
    var splicedBytesOut: Int { CLibEV_load(figures + 2) }

    /// `n` bytes went from a pipe to a client.
    @inline(__always) func countSplicedOut(_ n: Int) { CLibEV_store(figures + 2, CLibEV_load(figures + 2) &+ n) }

    func take() -> PipePair? {
        if let p = free.popLast() {
            CLibEV_store(figures + 1, free.count)
            return p
        }
        var fds: [Int32] = [0, 0]
        guard CLibEV_pipe2(&fds, CLibEV_O_NONBLOCK | O_CLOEXEC) == 0 else { return nil }
        _ = CLibEV_pipe_set_size(fds[1], Int32(PipePool.capacity))
        CLibEV_store(figures, CLibEV_load(figures) + 1)
        return PipePair(readFD: fds[0], writeFD: fds[1])
    }

    /// Takes back an empty pipe; a pipe with bytes left in it is closed instead.
    func give(_ pipe: PipePair, empty: Bool) {
        if empty && free.count < 256 {
            free.append(pipe)
            CLibEV_store(figures + 1, free.count)
        } else {
            close(pipe.readFD)
            close(pipe.writeFD)
            CLibEV_store(figures, CLibEV_load(figures) - 1)
        }
    }

    /// Closes pooled pipes (when fds run out, they are the first to give back).
    func drain() {
        for p in free { close(p.readFD); close(p.writeFD) }
        CLibEV_store(figures, CLibEV_load(figures) - free.count)
        free.removeAll()
        CLibEV_store(figures + 1, 0)
    }
}
