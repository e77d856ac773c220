import CLibEV
import Glibc

/// An errno with the name of the call that returned it.
public struct SystemError: Error, Sendable, CustomStringConvertible {
    public var call: String
    public var errno: Int32

    @usableFromInline
    init(_ call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call): \(String(cString: strerror(errno)))" }
}

/// The outcome of a non-blocking call: done with a count, or it would block.
@usableFromInline
enum IOResult: Equatable {
    case processed(Int)
    case wouldBlock
}

/// Runs a system call, retrying EINTR, mapping EAGAIN to `.wouldBlock` and throwing anything else.
@inlinable @inline(__always)
func syscall(_ name: @autoclosure () -> String, _ body: () -> Int) throws(SystemError) -> IOResult {
    while true {
        let r = body()
        if r >= 0 { return .processed(r) }
        let e = Glibc.errno
        if e == EINTR { continue }
        if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
        throw SystemError(name(), errno: e)
    }
}

/// Runs a system call that never blocks, retrying EINTR.
@inlinable @inline(__always)
func syscallOrThrow(_ name: @autoclosure () -> String, _ body: () -> Int32) throws(SystemError) -> Int32 {
    while true {
        let r = body()
        if r >= 0 { return r }
        let e = Glibc.errno
        if e == EINTR { continue }
        throw SystemError(name(), errno: e)
    }
}
