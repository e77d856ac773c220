import HTTP1
import ConfigModel

/// `server … ssl sni EXPR` with a fetch (`req.hdr(host)`): the expression compiled once per
/// backend, rendered from each request's head before the server connection is made.
final class HTTPServerName {
    private let constants = HTTPRuleConstants()
    let format: HTTPCompiledFormat

    init(_ format: FormatString) {
        self.format = HTTPCompiledFormat(format, constants: constants)
    }
}

extension HTTPRuleSet {
    /// The server name for this request (nil when the expression has no value), read from the
    /// head as the rules left it. Renders into the scratch's text: call after the head is written.
    func render(_ name: HTTPServerName, _ head: HTTPHead, input: UnsafeRawBufferPointer, connection: HTTPConnectionInfo,
                scratch: HTTPRuleScratch) -> String? {
        withUnsafePointer(to: head) { head in
            withUnsafePointer(to: connection) { connection in
                let ev = HTTPEvaluation(request: HTTPMessageView(input: input, head: head, edits: scratch.request), response: nil,
                                        connection: connection, scratch: scratch, frontend: self, backend: nil)
                guard let bytes = ev.render(name.format, .raw), bytes.count > 0 else { return nil }
                return String(decoding: bytes, as: UTF8.self)
            }
        }
    }
}
