import CLibEV
import ConfigModel

/// One name asked of a `resolvers` section for the servers that follow it (HAProxy's
/// `resolv_resolution`): a query to every nameserver at once, the first valid answer taken;
/// when every nameserver answered an error, the other address family is tried once (an error
/// other than a timeout), then the query is sent again after `timeout retry`, `resolve_retries`
/// times in all; then the next resolution `timeout resolve` after this one ended.
///
/// The records of the answers are kept with when each was last seen: one missing from an answer
/// is still used for `hold obsolete`. The last valid answer counts against errors for `hold
/// nx|refused|timeout|other`, and a new server following the name takes the records at once
/// while they are younger than `hold valid`.
final class Resolution: EventHandler {
    struct Key: Hashable {
        var name: String
        /// The type asked first: SRV for an SRV label, else the preferred address family's.
        var type: DNSQueryType
    }

    let key: Key
    unowned(unsafe) let section: ResolverSection
    /// The servers following this name in the current generation, in configuration order.
    var requesters: [BackendServer] = []

    private(set) var addresses: [IPAddress] = []
    private(set) var services: [SRVRecord] = []
    private var lastSeen: [AnyHashable: Double] = [:]
    /// Which record each server holds (by its state), HAProxy's attached servers.
    var heldAddresses: [ObjectIdentifier: IPAddress] = [:]
    var heldServices: [ObjectIdentifier: SRVRecord] = [:]

    private(set) var status = ResolutionStatus.none
    /// Monotonic seconds. The hold periods count from the resolution's creation until a first
    /// valid answer (HAProxy's rule).
    private(set) var lastValid: Double
    private(set) var lastResolution: Double?
    /// The nameserver whose answer was applied last (`SECTION/NAMESERVER`, the log's updater).
    private(set) var answeredBy = ""

    // The resolution in flight.
    private(set) var running = false
    private var round = 0
    private var awaiting = 0
    private var triesLeft = 0
    private var queryType: DNSQueryType
    private var fellBack = false
    private var lastError: DNSFailure?
    private var roundStart = 0.0
    private let timer = TimerWatcher(handler: EventHandler())

    init(key: Key, section: ResolverSection) {
        self.key = key
        self.section = section
        queryType = key.type
        lastValid = MonotonicClock.now()
        super.init()
        timer.setHandler(self)
    }

    var isSRV: Bool { key.type == .srv }

    /// A valid answer no older than `hold valid`: a new requester takes its records at once.
    var isFresh: Bool {
        guard status == .valid, let last = lastResolution else { return false }
        return MonotonicClock.now() - last <= Double(section.config.hold.valid) / 1000
    }

    /// Starts a resolution now unless one runs.
    func start() {
        guard !running else { return }
        running = true
        triesLeft = section.config.resolveRetries
        queryType = key.type
        fellBack = false
        send()
    }

    /// Its section's channels were made again: what was in flight is asked again.
    func restart() {
        guard running else { return }
        running = false
        start()
    }

    func close() {
        running = false
        round += 1
        timer.release(on: section.loop)
    }

    private func send() {
        timer.stop(on: section.loop)
        round += 1
        let current = round
        lastError = nil
        roundStart = MonotonicClock.now()
        let channels = section.channels
        awaiting = channels.count
        guard !channels.isEmpty else { return roundFailed() }
        for channel in channels {
            channel.query(key.name, queryType) { [weak self, unowned channel] answer in
                self?.received(answer, round: current, from: channel)
            }
        }
    }

    private func received(_ answer: DNSAnswer, round answered: Int, from channel: NameserverChannel) {
        let valid: Bool
        switch (answer, isSRV) {
        case (.addresses, false), (.services, true): valid = true
        default: valid = false
        }
        guard running, answered == round else {
            if valid { channel.counters.outdated += 1 }
            return
        }
        awaiting -= 1
        guard valid else {
            if case .failure(let failure) = answer { lastError = failure } else { lastError = .invalid }
            if awaiting == 0 { roundFailed() }
            return
        }
        channel.counters.valid += 1
        running = false
        round += 1
        let now = MonotonicClock.now()
        status = .valid
        lastValid = now
        lastResolution = now
        answeredBy = "\(section.config.name)/\(channel.nameserver.id)"
        switch answer {
        case .addresses(let list, _):
            for a in list where lastSeen.updateValue(now, forKey: a) == nil { addresses.append(a) }
        case .services(let list):
            for s in list {
                let key = ServiceKey(s)
                if lastSeen.updateValue(now, forKey: key) == nil {
                    services.append(s)
                } else if let i = services.firstIndex(where: { ServiceKey($0) == key }) {
                    services[i] = s  // its weight may have changed
                }
            }
        case .failure:
            break
        }
        purgeObsolete(now: now)
        scheduleNext()
        section.discovery?.resolved(self, by: channel)
    }

    /// Every nameserver answered with an error or none answered in time.
    private func roundFailed() {
        let error = lastError ?? .timeout
        if error != .timeout, !fellBack, let other = queryType.otherFamily {
            // HAProxy's fallback: the other address type, at once, without spending a try.
            fellBack = true
            queryType = other
            return send()
        }
        triesLeft -= 1
        queryType = key.type
        fellBack = false
        if triesLeft > 0 {
            let wait = roundStart + Double(section.config.timeoutRetry) / 1000 - MonotonicClock.now()
            if wait <= 0 { return send() }
            timer.arm(after: wait, on: section.loop)
            return
        }
        running = false
        round += 1
        status = ResolutionStatus(error)
        lastResolution = MonotonicClock.now()
        scheduleNext()
        section.discovery?.failed(self)
    }

    /// The error's `hold` is over: no valid answer for that long.
    var holdExpired: Bool {
        let hold = section.config.hold
        let ms: Int
        switch status {
        case .nx: ms = hold.nx
        case .refused: ms = hold.refused
        case .timeout: ms = hold.timeout
        case .other: ms = hold.other
        case .valid, .none: return false
        }
        return MonotonicClock.now() - lastValid >= Double(ms) / 1000
    }

    /// Forgets the records (an error past its hold): the servers holding them lose them.
    func forgetRecords() {
        addresses.removeAll()
        services.removeAll()
        lastSeen.removeAll()
        heldAddresses.removeAll()
        heldServices.removeAll()
    }

    private func purgeObsolete(now: Double) {
        let hold = Double(section.config.hold.obsolete) / 1000
        func alive(_ key: AnyHashable) -> Bool { (lastSeen[key] ?? 0) + hold >= now }
        addresses.removeAll { a in
            if alive(a) { return false }
            lastSeen[a] = nil
            return true
        }
        services.removeAll { s in
            if alive(ServiceKey(s)) { return false }
            lastSeen[ServiceKey(s)] = nil
            return true
        }
    }

    private func scheduleNext() {
        timer.arm(after: Double(section.config.timeoutResolve) / 1000, on: section.loop)
    }

    override func timerEvent(_ watcher: UnsafeMutablePointer<ev_timer>) {
        if running { send() } else { start() }
    }

    /// An SRV record is the same record while its target and port are (its weight may change).
    struct ServiceKey: Hashable {
        var target: String
        var port: UInt16
        init(_ s: SRVRecord) {
            target = s.target
            port = s.port
        }
    }
}
