/// How a session ended, HAProxy's two-character termination state (`%ts`): who or what ended it
/// (`C`lient, `S`erver, `P`roxy, `R`esource, `L`ocal answer, `K`illed, lower case for a timeout),
/// then in which phase (`R`equest, `Q`ueue, `C`onnect, `H`eaders, `D`ata).
struct TerminationState {
    var cause: UInt8 = UInt8(ascii: "-")
    var phase: UInt8 = UInt8(ascii: "-")
    var text: String { String(decoding: [cause, phase], as: UTF8.self) }
}
