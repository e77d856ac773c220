/// Where a generation is in its life: `loading -> active -> draining -> retired`, or
/// `loading -> failed` (DESIGN §2).
public enum GenerationState: String, Hashable, Sendable {
    case loading
    case active
    case draining
    case retired
    case failed
}
