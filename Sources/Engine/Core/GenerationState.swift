/// Where a generation is in its life: `loading -> active -> draining -> retired`, or
/// `loading -> failed` (DESIGN §2). A canary (`reload --canary`) is `loading -> canary`, then
/// `active` when promoted or `draining` when aborted.
public enum GenerationState: String, Hashable, Sendable {
    case loading
    case active
    /// Beside the active generation, taking a share of new work (`canary set`).
    case canary
    case draining
    case retired
    case failed
}
