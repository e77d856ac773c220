import Foundation
import Glibc

/// Waits until `condition` holds, polling every `interval` seconds; whether it held within
/// `seconds` (the condition is asked once more at the deadline).
public func eventually(seconds: Double = 10, every interval: Double = 0.02, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        usleep(UInt32(interval * 1_000_000))
    }
    return try condition()
}
