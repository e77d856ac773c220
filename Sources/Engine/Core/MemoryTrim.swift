import CLibEV
import Glibc
import Synchronization

/// Gives the pages a freed generation leaves in glibc's arenas back to the kernel. A reload keeps
/// two generations alive for a moment (the new one built beside the old one) and glibc would keep
/// that peak resident for good: with a 10,000-server configuration, about 30% more RSS than one
/// generation needs. `malloc_trim` walks every arena, so it runs on a thread of its own, a moment
/// after the generation's last object is freed, and at most one at a time.
enum MemoryTrim {
    private static let pending = Atomic<Bool>(false)

    static func request() {
        guard !pending.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var thread = pthread_t()
        let started = pthread_create(&thread, nil, { _ in
            // The generation's members are freed after its deinit returns: let that finish.
            usleep(100_000)
            MemoryTrim.pending.store(false, ordering: .releasing)
            _ = CLibEV_malloc_trim(0)
            return nil
        }, nil)
        if started == 0 { pthread_detach(thread) } else { pending.store(false, ordering: .releasing) }
    }
}
