import Broker
import ConfigModel
import Engine
import Foundation
import Loader

/// What a reload answers to everyone who asked for it.
struct ReloadOutcome: Sendable {
    var success: Bool
    var generationID: Int
    /// Success: what changed. Failure: every error as `file:line: message`.
    var messages: [String]
    /// systemd's `STATUS=` after it, when not `generation N active` (a canary, a refusal).
    var status: String? = nil
}

/// `reload canary PERCENT [abort-on-errors POINTS] [window SECONDS]`: how the new generation starts.
struct CanaryOptions: Sendable {
    var share: Int
    var abortOnErrors: Double?
    var window: Double = 30

    /// The admin command's arguments after `reload canary`, or nil when they make no sense.
    init?(arguments: ArraySlice<String>) {
        var words = Array(arguments)
        guard let first = words.first, let share = Int(first), (0...100).contains(share) else { return nil }
        self.share = share
        words.removeFirst()
        while words.count >= 2 {
            let value = words[1]
            switch words[0] {
            case "abort-on-errors":
                guard let p = Double(value), p > 0, p <= 100 else { return nil }
                abortOnErrors = p
            case "window":
                guard let w = Double(value), w > 0 else { return nil }
                window = w
            default:
                return nil
            }
            words.removeFirst(2)
        }
        guard words.isEmpty else { return nil }
    }
}

/// Serialises reloads and reload plans. One builds at a time, on a thread of its own (reading,
/// parsing, resolving and binding never run on the event loop); reloads asked for meanwhile are
/// coalesced into one more reload, which reads the files again, so no request is lost and none
/// is answered with a configuration older than the request. A plan waits its turn the same way:
/// it is then compared with the generation a reload before it made, and its test binds never
/// meet a reload's binds. Everything but the builder runs on the loop's thread.
final class ReloadCoordinator: @unchecked Sendable {
    typealias Reply = (ReloadOutcome) -> Void
    typealias PlanReply = (ReloadPlan) -> Void

    private enum Request {
        case reload(Reply)
        case plan(PlanReply)
        case rollback(Reply)
        case canary(CanaryOptions, Reply)
        /// Builds the next rollback's generation ahead (`Standby`); nobody waits for it.
        case standby

        /// Requests of one kind asked together are served by one run (a canary by its own).
        var kind: Int {
            switch self {
            case .reload: 0
            case .plan: 1
            case .rollback: 2
            case .canary: 3
            case .standby: 4
            }
        }
    }

    let engine: Engine
    let cache: ListenerCache
    let files: [String]
    let loader: ConfigLoader
    private var nextID: Int
    private var running = false
    private var startPosted = false
    private var answering: [Reply] = []
    private var answeringPlans: [PlanReply] = []
    /// The generation current when the running reload or plan started (see `start`).
    private var carrying: Generation?
    private var queued: [Request] = []
    /// The next rollback's generation, built ahead from `Engine.rollbackPoint` on the reload
    /// thread after each activation, carrying from the generation current then: a rollback
    /// while both are unchanged only binds what is missing and swaps (no build). It counts as a
    /// generation against `max-generations` (none is built when the live ones fill it); built on
    /// the loop's owner thread's behalf and freed on the loop.
    private var standby: (generation: Generation, point: Int, needs: FileDescriptorNeeds?, keys: [ListenerKey])? {
        didSet { engine.rollbackPrepared = standby != nil }
    }
    /// Called on the loop after every reload attempt (systemd status, logs).
    var finished: (ReloadOutcome) -> Void = { _ in }
    /// The privilege broker every reload reads and binds through, when privileges were dropped.
    var broker: BrokerClient?
    var started: () -> Void = {}

    init(engine: Engine, cache: ListenerCache, files: [String], loader: ConfigLoader, firstID: Int) {
        self.engine = engine
        self.cache = cache
        self.files = files
        self.loader = loader
        self.nextID = firstID
    }

    var isRunning: Bool { running }

    /// The runtime API's `reload` (HAProxy 2.7 master CLI's, an admin command): answers when the
    /// reload is done, `Success=1` or `Success=0`, a line `--`, then its messages or errors. And
    /// strata's `reload plan [json]`: what that reload would change, answered the same way
    /// (`Success=1` when it would succeed) so that a client reads both alike.
    var adminCommands: [AdminCommand] {
        [
            AdminCommand(["reload"], usage: ("reload", "reload the configuration in place (admin level)"), level: .admin) { [weak self] c in
                guard c.arguments.isEmpty, let self else { return .unknown }
                return .later { answer in
                    self.request { outcome in
                        answer((outcome.success ? "Success=1" : "Success=0") + "\n--\n" + outcome.messages.joined(separator: "\n"))
                    }
                }
            },
            AdminCommand(["rollback"], usage: ("rollback", "make the previous generation's configuration current again, from memory (admin level)"),
                         level: .admin) { [weak self] c in
                guard c.arguments.isEmpty, let self else { return .unknown }
                return .later { answer in
                    self.rollback { outcome in
                        answer((outcome.success ? "Success=1" : "Success=0") + "\n--\n" + outcome.messages.joined(separator: "\n"))
                    }
                }
            },
            AdminCommand(["reload", "canary"], usage: ("reload canary <pct> [abort-on-errors <pts>] [window <s>]",
                                                       "reload as a canary taking pct% of new work (admin level)"),
                         level: .admin) { [weak self] c in
                guard let self else { return .unknown }
                guard let options = CanaryOptions(arguments: c.arguments) else {
                    return .text("Success=0\n--\nusage: reload canary PERCENT (0 to 100) [abort-on-errors POINTS] [window SECONDS]")
                }
                return .later { answer in
                    self.enqueue(.canary(options, { outcome in
                        answer((outcome.success ? "Success=1" : "Success=0") + "\n--\n" + outcome.messages.joined(separator: "\n"))
                    }))
                }
            },
            AdminCommand(["reload", "plan"], usage: ("reload plan [json]", "what a reload would change; changes nothing (admin level)"),
                         level: .admin) { [weak self] c in
                guard let self, c.arguments.isEmpty || c.arguments.elementsEqual(["json"]) else { return .unknown }
                let json = !c.arguments.isEmpty
                return .later { answer in
                    self.plan { plan in
                        answer((plan.succeeds ? "Success=1" : "Success=0") + "\n--\n" + (json ? plan.json : plan.text))
                    }
                }
            },
        ]
    }

    /// Asks for a reload; `reply` is called on the loop when it is done.
    func request(_ reply: @escaping Reply) {
        enqueue(.reload(reply))
    }

    /// Asks what a reload would change; `reply` is called on the loop with the plan. Nothing is
    /// bound, activated or counted, and no generation id is used.
    func plan(_ reply: @escaping PlanReply) {
        enqueue(.plan(reply))
    }

    /// Makes the configuration of the generation current before the current one current again
    /// (`Engine.rollbackPoint`), reading no file; `reply` is called on the loop when it is done.
    /// In turn with reloads and plans; rollbacks asked together make one.
    func rollback(_ reply: @escaping Reply) {
        enqueue(.rollback(reply))
    }

    /// An activation happened: the standby (if any) is stale; build the next one.
    func prepareStandby() {
        standby = nil
        enqueue(.standby)
    }

    /// The standby, when it is what a rollback now would build: from the rollback point, carrying
    /// from the generation current now, no canary running.
    private func usableStandby() -> (Generation, RollbackPoint, FileDescriptorNeeds?, [ListenerKey])? {
        guard let s = standby, let point = engine.rollbackPoint, s.point == point.generation, engine.canary == nil,
              let current = engine.current, s.generation.carriedFrom == ObjectIdentifier(current) else { return nil }
        return (s.generation, point, s.needs, s.keys)
    }

    private func startStandby() {
        standby = nil
        guard let point = engine.rollbackPoint, engine.canary == nil, let current = engine.current,
              engine.liveCount < current.config.config.global.maxGenerations else {
            if !queued.isEmpty { startQueued() }
            return
        }
        running = true
        carrying = current
        let build = Handoff(value: (engine, point, Unmanaged.passUnretained(current)))
        let loop = engine.loop
        let thread = Thread { [self] in
            let (engine, point, from) = build.value
            // The id is the old one's until a rollback gives it the next (`Generation.assign`).
            // Handed over in a box the loop empties: whether kept or dropped, the generation (and
            // the server states it shares) is released on the loop, never on this thread.
            let box = StandbyBox()
            box.generation = try? engine.makeGeneration(point.configuration(id: point.generation), carryingFrom: from.takeUnretainedValue())
            // What the rollback's file descriptor limit needs and the binds it acquires, computed
            // here rather than on the loop.
            let needs = FileDescriptorNeeds(point.config)
            let keys = ListenerPlan.keys(of: point.config)
            loop.post { [self] in
                let built = box.generation
                box.generation = nil
                if let generation = built, engine.current === carrying, engine.canary == nil,
                   engine.rollbackPoint?.generation == point.generation {
                    standby = (generation, point.generation, needs, keys)
                }
                carrying = nil
                running = false
                if !queued.isEmpty { startQueued() }
            }
        }
        thread.name = "strata-standby"
        thread.start()
    }

    /// A rollback with the standby: bind what is missing, swap. On the loop, nothing built.
    private func rollbackNow(_ replies: [Reply], to ready: (Generation, RollbackPoint, FileDescriptorNeeds?, [ListenerKey])) {
        let (generation, point, needs, keys) = ready
        standby = nil
        running = true
        answering = replies
        let id = nextID
        nextID += 1
        started()
        let start = MonotonicClock.now()
        let built: Swift.Result<ReloadJob.Built, ConfigErrors>
        let limitErrors = FileDescriptorLimit.apply(point.config, atStart: false, changing: true, needs: .some(needs))
        if !limitErrors.isEmpty {
            built = .failure(ConfigErrors(limitErrors))
            standby = (generation, point.generation, needs, keys)
        } else {
            var newBinds = 0
            switch cache.acquire(keys, newBinds: &newBinds) {
            case .failure(let bindErrors):
                built = .failure(ConfigErrors(bindErrors.errors.map { ListenerPlan.error(for: $0, in: point.config) }))
                // Nothing changed: it is still the next rollback's generation.
                standby = (generation, point.generation, needs, keys)
            case .success(let fds):
                generation.assign(id: id)
                built = .success(ReloadJob.Built(generation: Handoff(value: generation), listenerFDs: fds, newListeners: newBinds))
            }
        }
        finish(ReloadJob.Result(id: id, built: built, seconds: MonotonicClock.now() - start), restoring: point, preparedAt: start)
    }

    private func enqueue(_ request: Request) {
        queued.append(request)
        guard !running && !startPosted else { return }
        // Start after the events already read in this loop iteration: requests that arrived
        // together (a storm) share one reload.
        startPosted = true
        engine.loop.post { [self] in
            startPosted = false
            if !running { startQueued() }
        }
    }

    /// Starts the requests at the head of the queue that are of one kind, in the order asked:
    /// reloads asked together share one reload, plans asked together one plan.
    private func startQueued() {
        guard let head = queued.first else { return }
        let count = head.kind == 3 ? 1 : queued.prefix { $0.kind == head.kind }.count
        let next = queued.prefix(count)
        queued.removeFirst(count)
        if case .standby = head, !queued.isEmpty {
            // Something else waits: it changes what the standby would be built from, or goes first.
            return startQueued()
        }
        switch head {
        case .reload: start(next.compactMap { if case .reload(let r) = $0 { r } else { nil } })
        case .plan: startPlan(next.compactMap { if case .plan(let r) = $0 { r } else { nil } })
        case .rollback:
            let replies = next.compactMap { if case .rollback(let r) = $0 { r } else { nil } }
            if let ready = usableStandby() { rollbackNow(replies, to: ready) } else { start(replies, restoring: engine.rollbackPoint, rollback: true) }
        case .standby: startStandby()
        case .canary(let options, let reply): start([reply], canary: options)
        }
    }

    private func startPlan(_ replies: [PlanReply]) {
        running = true
        answeringPlans = replies
        // Read on the loop now, taken to the builder as values: the configuration serving, the
        // listeners held, the generations alive with their sessions.
        let facts = ReloadPlan.Facts(engine: engine, heldListeners: cache.openKeys)
        // The candidate is built as a reload builds it, carrying from the generation serving
        // (held here, as `start` holds it).
        carrying = engine.current
        let job = ReloadJob(id: nextID, files: files, loader: loader, broker: broker, cache: cache, engine: Handoff(value: engine),
                            previous: engine.current?.config.config, carrying: Handoff(value: carrying.map { Unmanaged.passUnretained($0) }))
        let loop = engine.loop
        let thread = Thread { [self] in
            job.plan(facts: facts) { plan in
                loop.post { [self] in answerPlans(plan) }
            }
            // Only once the candidate is freed: it holds server states of the generation serving,
            // and no reload may start (and retire some of them) while this thread releases them.
            loop.post { [self] in finishPlan() }
        }
        thread.name = "strata-plan"
        thread.start()
    }

    private func answerPlans(_ plan: ReloadPlan) {
        for reply in answeringPlans { reply(plan) }
        answeringPlans = []
    }

    private func finishPlan() {
        carrying = nil
        running = false
        if !queued.isEmpty { startQueued() }
    }

    /// A reload, or (`rollback`) a rollback to `restoring`: the same build from the configuration
    /// kept in memory instead of the files (nothing is read), the same binds through the listener
    /// cache, the same carry-over and swap.
    private func start(_ replies: [Reply], restoring: RollbackPoint? = nil, rollback: Bool = false, canary: CanaryOptions? = nil) {
        running = true
        // While a canary runs there are two active generations: a reload, a rollback or a
        // second canary would have to say which one it replaces. The operator decides first.
        if let running = engine.canary {
            let what = canary != nil ? "canary" : rollback ? "rollback" : "reload"
            let outcome = ReloadOutcome(success: false, generationID: engine.current?.id ?? 0,
                                        messages: ["\(what) refused: generation \(running.id) is a canary beside generation \(engine.current?.id ?? 0); 'canary promote' or 'canary abort' first; nothing was changed"],
                                        status: engine.canaryStatusLine)
            engine.report(outcome.messages[0], level: .warning)
            for reply in replies { reply(outcome) }
            self.running = false
            if !queued.isEmpty { startQueued() }
            return
        }
        if rollback && restoring == nil {
            let outcome = ReloadOutcome(success: false, generationID: engine.current?.id ?? 0,
                                        messages: ["rollback: no previous generation to restore; nothing was changed"])
            engine.report(outcome.messages[0], level: .warning)
            for reply in replies { reply(outcome) }
            running = false
            if !queued.isEmpty { startQueued() }
            return
        }
        answering = replies
        let id = nextID
        nextID += 1
        started()
        // The builder reads the current generation (counters and server states to carry) without
        // owning it: this reference keeps it alive until `finish`, so it is never freed off the loop.
        carrying = engine.current
        let previous = engine.current?.config.config
        var building = ReloadJob(id: id, files: files, loader: loader, broker: broker, cache: cache, engine: Handoff(value: engine), previous: previous,
                            carrying: Handoff(value: carrying.map { Unmanaged.passUnretained($0) }))
        building.restoring = restoring
        let job = building
        let loop = engine.loop
        let thread = Thread { [self] in
            let result = job.build()
            loop.post { [self] in self.finish(result, restoring: restoring, canary: canary) }
        }
        thread.name = restoring == nil ? "strata-reload-\(id)" : "strata-rollback-\(id)"
        thread.start()
    }

    /// `preparedAt`: a rollback with its generation built ahead, started then (its answer says how
    /// long acquiring the listeners and swapping every loop took).
    private func finish(_ result: ReloadJob.Result, restoring: RollbackPoint? = nil, canary: CanaryOptions? = nil, preparedAt: Double? = nil) {
        // The generation this reload replaces is held until the callers have their answer: when
        // it retires at once (no session left), freeing its objects (milliseconds for 10,000
        // servers) then runs after the reply instead of before it.
        let replaced = engine.current
        var outcome: ReloadOutcome
        switch result.built {
        case .success(let built) where canary != nil:
            let generation = built.generation.value, options = canary!
            engine.startCanary(generation, share: options.share, listenerFDs: built.listenerFDs,
                               abortOnErrors: options.abortOnErrors, window: options.window)
            let listeners = generation.listenerCount
            var messages = ["generation \(generation.id) canary (hash \(generation.config.hash)) at \(options.share)% of new work beside generation \(replaced?.id ?? 0): \(listeners) listeners, \(built.newListeners) new; built in \(Int((result.seconds * 1000).rounded())) ms"]
            if let p = options.abortOnErrors {
                messages.append("aborted by itself if its error share is \(Engine.formatNumber(p)) points above generation \(replaced?.id ?? 0)'s over \(Engine.formatNumber(options.window)) s")
            }
            messages.append("then: 'canary promote', 'canary abort' or 'canary set PERCENT'")
            outcome = ReloadOutcome(success: true, generationID: result.id, messages: messages, status: engine.canaryStatusLine)
        case .success(let built):
            let generation = built.generation.value
            var messages: [String] = built.warnings
            for w in built.warnings { engine.report(w, level: .warning) }
            let engine = self.engine
            let dropped = engine.activate(generation, listenerFDs: built.listenerFDs) { closed in
                // Its binds, every one acquired (not the sockets: one per loop for each).
                let listeners = generation.listenerCount
                let kept = listeners - built.newListeners
                let from = restoring.map { "rollback from generation \(replaced?.id ?? 0): generation \($0.generation)'s configuration restored as " } ?? ""
                let took: String
                if restoring == nil {
                    took = "built in \(Int((result.seconds * 1000).rounded())) ms"
                } else if let preparedAt {
                    took = "built ahead from memory; listeners acquired and every loop swapped in \(String(format: "%.1f", (MonotonicClock.now() - preparedAt) * 1000)) ms"
                } else {
                    took = "built from memory in \(String(format: "%.1f", result.seconds * 1000)) ms"
                }
                let active = "\(from)generation \(generation.id) active (hash \(generation.config.hash)): \(listeners) listeners, \(kept) kept, \(built.newListeners) new, \(closed.count) closed; \(took)"
                messages.append(active)
                engine.report(active)
                // The stick tables it kept with their entries, and those that start empty.
                messages += generation.stickTableChanges
            }
            cache.release(dropped)
            // For the caller's answer: the drain itself was reported as it started.
            let draining = engine.generations.filter { $0.state == .draining }
            if !draining.isEmpty {
                messages.append("draining: " + draining.map { "generation \($0.id) (\($0.sessions) sessions)" }.joined(separator: ", "))
            }
            outcome = ReloadOutcome(success: true, generationID: result.id, messages: messages)
        case .failure(let errors):
            outcome = ReloadOutcome(success: false, generationID: result.id,
                                    messages: errors.errors.map(\.description) + [restoring.map { "rollback to generation \($0.generation)'s configuration (generation \(result.id)) failed: nothing was changed" }
                                        ?? "generation \(result.id) failed: nothing was changed"])
            for m in outcome.messages { engine.report(m, level: .alert) }
        }
        // The reload counts of `show info` and the exporter, the duration histogram, the stats
        // page's last reloads (the events themselves were reported as they happened: every reload
        // and rollback with its generation id). Before the answers: whoever has one sees it counted.
        engine.metrics.recordReload(success: outcome.success, generation: outcome.generationID,
                                    seconds: result.seconds, messages: outcome.messages)
        finished(outcome)
        for reply in answering { reply(outcome) }
        answering = []
        withExtendedLifetime(replaced) {}
        carrying = nil
        running = false
        if !queued.isEmpty { startQueued() }
    }
}

/// A generation built ahead, written by the standby thread before it posts and taken (emptied)
/// by the loop.
private final class StandbyBox: @unchecked Sendable {
    var generation: Generation?
}

/// Lets a value built on the reload thread travel to the loop that takes it over.
struct Handoff<T>: @unchecked Sendable {
    let value: T
}

/// One reload's build: load, check what cannot change, bind, build the engine's generation; or
/// a plan of it (`plan(facts:)`).
struct ReloadJob: Sendable {
    struct Built: Sendable {
        var generation: Handoff<Generation>
        var listenerFDs: [ListenerSocketKey: Int32]
        var newListeners: Int
        /// The candidate's warnings (lines HAProxy 2.6 ignores too), for the answer and the log.
        var warnings: [String] = []
    }
    struct Result: Sendable {
        var id: Int
        var built: Swift.Result<Built, ConfigErrors>
        var seconds: Double
    }

    var id: Int
    var files: [String]
    var loader: ConfigLoader
    var broker: BrokerClient?
    var cache: ListenerCache
    /// Builds the generation for the engine's data loops (reads only immutable engine state).
    var engine: Handoff<Engine>
    var previous: Config?
    /// The generation serving when the reload started, owned by the coordinator until the
    /// result is back on the loop.
    var carrying: Handoff<Unmanaged<Generation>?>
    /// A rollback: the configuration kept in memory, built instead of the files (nothing read).
    var restoring: RollbackPoint?

    func build() -> Result {
        let start = MonotonicClock.now()
        let built = buildGeneration()
        return Result(id: id, built: built, seconds: MonotonicClock.now() - start)
    }

    /// What a reload of the files would change, found by the same steps as `build` with nothing
    /// kept: the fd limits are checked, not raised; new listener keys are test-bound and closed;
    /// the engine's generation is built (TLS contexts, regular expressions), carrying from the
    /// serving one as a reload's does, and dropped. It is built on a second thread while this one
    /// test-binds and compares, so a plan answers in about the time a reload takes to build.
    /// `answer` is called once, with the plan; what the plan built is freed after it, on this thread.
    func plan(facts: ReloadPlan.Facts, answer: (ReloadPlan) -> Void) {
        let loaded: LoadedConfig
        switch candidate(changingLimits: false) {
        case .success(let l): loaded = l
        case .failure(let e): return answer(ReloadPlan(refusing: e.errors, facts: facts))
        }
        let build = BackgroundBuild(ConfigGeneration(id: id, hash: loaded.hash, config: loaded.config, files: loaded.files),
                                    engine: engine, carrying: carrying)
        let bindErrors = cache.probe(ListenerPlan.keys(of: loaded.config))
        guard bindErrors.isEmpty else {
            // A reload binds before it builds: the bind errors are the ones it gives.
            let built = build.wait()
            return withExtendedLifetime(built) {
                answer(ReloadPlan(refusing: bindErrors.map { ListenerPlan.error(for: $0, in: loaded.config) },
                                  candidateHash: loaded.hash, facts: facts))
            }
        }
        let plan = ReloadPlan(from: previous, to: loaded.config, candidateHash: loaded.hash, facts: facts)
        let built = build.wait()
        // Freed once the answer is on its way: 10,000 servers take milliseconds to free.
        withExtendedLifetime(built) {
            switch built {
            case .success: answer(plan)
            case .failure(let errors): answer(ReloadPlan(refusing: errors.errors, candidateHash: loaded.hash, facts: facts))
            }
        }
    }

    /// Reads and checks the files as a reload does before it binds: load, what cannot change in
    /// a running process, file descriptor limits (`changingLimits`: raised to what it needs).
    private func candidate(changingLimits: Bool) -> Swift.Result<LoadedConfig, ConfigErrors> {
        if let broker, broker.exitText != nil {
            return .failure(ConfigErrors([ConfigError(nil, "cannot reload: the privilege broker (pid \(broker.pid)) has exited (\(broker.exitText ?? "?")); strata keeps serving the running configuration, restart it to reload")]))
        }
        let loaded: LoadedConfig
        switch loader.load(paths: files) {
        case .success(let l): loaded = l
        case .failure(let e): return .failure(e)
        }
        if let previous {
            let fixed = GlobalInvariants.changes(from: previous.global, to: loaded.config.global)
            if !fixed.isEmpty { return .failure(ConfigErrors(fixed)) }
        }
        let limitErrors = FileDescriptorLimit.apply(loaded.config, atStart: false, changing: changingLimits)
        if !limitErrors.isEmpty { return .failure(ConfigErrors(limitErrors)) }
        return .success(loaded)
    }

    private func buildGeneration() -> Swift.Result<Built, ConfigErrors> {
        let loaded: LoadedConfig
        if let restoring {
            // It ran in this process: what cannot change on reload is what runs now. The fd
            // limit is raised again if the current configuration lowered what it needs.
            loaded = LoadedConfig(config: restoring.config, hash: restoring.hash, files: restoring.files)
            let limitErrors = FileDescriptorLimit.apply(loaded.config, atStart: false, changing: true)
            if !limitErrors.isEmpty { return .failure(ConfigErrors(limitErrors)) }
        } else {
            switch candidate(changingLimits: true) {
            case .success(let l): loaded = l
            case .failure(let e): return .failure(e)
            }
        }
        let keys = ListenerPlan.keys(of: loaded.config)
        let before = Set(cache.openKeys)
        switch cache.acquire(keys) {
        case .failure(let bindErrors):
            return .failure(ConfigErrors(bindErrors.errors.map { ListenerPlan.error(for: $0, in: loaded.config) }))
        case .success(let fds):
            let config = ConfigGeneration(id: id, hash: loaded.hash, config: loaded.config, files: loaded.files)
            let generation: Generation
            do {
                generation = try engine.value.makeGeneration(config, carryingFrom: carrying.value?.takeUnretainedValue())
            } catch {
                cache.release(keys.filter { !before.contains($0) })
                return .failure(error)
            }
            let fresh = keys.filter { !before.contains($0) }.count
            return .success(Built(generation: Handoff(value: generation), listenerFDs: fds, newListeners: fresh,
                                  warnings: loaded.warnings.map { "warning: \($0)" }))
        }
    }
}

/// `Engine.makeGeneration` on a thread of its own; `wait` returns what it built.
private final class BackgroundBuild: @unchecked Sendable {
    private var result: Result<Generation, ConfigErrors>?
    private let done = DispatchSemaphore(value: 0)

    init(_ config: ConfigGeneration, engine: Handoff<Engine>, carrying: Handoff<Unmanaged<Generation>?>) {
        let thread = Thread { [self] in
            result = Result { () throws(ConfigErrors) in
                try engine.value.makeGeneration(config, carryingFrom: carrying.value?.takeUnretainedValue())
            }
            done.signal()
        }
        thread.name = "strata-plan-build"
        thread.start()
    }

    /// Written by the build's thread before it signals; read here after the wait.
    func wait() -> Result<Generation, ConfigErrors> {
        done.wait()
        return result!
    }
}

/// Listener keys of a configuration, and bind errors as `file:line`.
enum ListenerPlan {
    static func keys(of config: Config) -> [ListenerKey] {
        var keys: [ListenerKey] = []
        // Indexed: `for proxy in proxies` copies every Proxy (a rollback asks it on the loop).
        let proxies = config.proxies
        for p in proxies.indices where proxies[p].isFrontend && !proxies[p].disabled {
            for b in proxies[p].binds.indices { keys.append(ListenerKey(proxies[p].binds[b])) }
        }
        return keys
    }

    static func error(for failure: ListenerBindError, in config: Config) -> ConfigError {
        for proxy in config.proxies where proxy.isFrontend {
            for bind in proxy.binds where ListenerKey(bind) == failure.key {
                return ConfigError(bind.location, "cannot bind \(bind.endpoint) for \(proxy.kind.rawValue) '\(proxy.name)': \(String(cString: strerror(failure.errno))) (\(failure.call))")
            }
        }
        return ConfigError(nil, failure.description)
    }
}

/// Global settings that size or shape the running process: a reload that changes one fails
/// rather than half-applies it.
enum GlobalInvariants {
    static func changes(from old: GlobalSettings, to new: GlobalSettings) -> [ConfigError] {
        var errors: [ConfigError] = []
        func check(_ keyword: String, _ changed: Bool) {
            guard changed else { return }
            if let location = new.locations[keyword] {
                errors.append(ConfigError(location, "'\(keyword)' cannot change on reload, restart to apply it"))
            } else if let location = old.locations[keyword] {
                // The line it was on is gone (or now says something else): name the file alone.
                errors.append(ConfigError(SourceLocation(file: location.file),
                                          "'\(keyword)' was removed; it cannot change on reload, restart to apply it"))
            } else {
                errors.append(ConfigError(nil, "'\(keyword)' cannot change on reload, restart to apply it"))
            }
        }
        check("nbthread", old.nbthread != new.nbthread)
        check(new.locations["user"] != nil || old.locations["user"] != nil ? "user" : "uid", old.uid != new.uid)
        check(new.locations["group"] != nil || old.locations["group"] != nil ? "group" : "gid", old.gid != new.gid)
        check("daemon", old.daemon != new.daemon)
        check("chroot", old.chroot != new.chroot)
        check("pidfile", old.pidfile != new.pidfile)
        // The event loop's buffers are allocated at this size for the process's life (a head has
        // to fit in one). `tune.http.maxhdr` and `maxconn` are read per generation: they may change.
        check("tune.bufsize", old.bufferSize != new.bufferSize)
        check("stats socket", old.statsSockets.map(\.address) != new.statsSockets.map(\.address)
              || old.statsSockets.map(\.level) != new.statsSockets.map(\.level)
              || old.statsSockets.map(\.mode) != new.statsSockets.map(\.mode)
              || old.statsSockets.map(\.maxconn) != new.statsSockets.map(\.maxconn)
              || old.statsSockets.map(\.owner) != new.statsSockets.map(\.owner)
              || old.statsSockets.map(\.group) != new.statsSockets.map(\.group)
              || old.statsSockets.map(\.exposeListeners) != new.statsSockets.map(\.exposeListeners))
        return errors.sorted { ($0.location?.line ?? 0) < ($1.location?.line ?? 0) }
    }
}
