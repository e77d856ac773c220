import Glibc
import HTTP1
import ConfigModel

/// A fetched value: bytes of the message (or of the session's scratch), an integer, a boolean
/// or an address. HAProxy's sample types, minus the ones strata does not fetch.
enum HTTPSample {
    case bytes(UnsafeRawBufferPointer)
    case integer(Int)
    case boolean(Bool)
    case address(HTTPAddressBits)
}

/// A sample expression ready to evaluate: the fetch with its names as bytes, and the case
/// mapping its converters amount to (`lower` and `upper` compose into the last one).
struct HTTPCompiledSample {
    enum Fetch {
        case path
        case url
        case query
        case urlParameter(UnsafeRawBufferPointer)
        /// Lowercase name; occurrence as in `SampleFetch.header`.
        case header(UnsafeRawBufferPointer, occurrence: Int?)
        case fullHeader(UnsafeRawBufferPointer)
        case headerCount(UnsafeRawBufferPointer)
        /// `hdr_val`, `res.hdr_val`: as `header`, `responseHeader`, read as integers.
        case headerValue(UnsafeRawBufferPointer, occurrence: Int?)
        case headerIP(UnsafeRawBufferPointer, occurrence: Int?)
        case responseHeaderValue(UnsafeRawBufferPointer, occurrence: Int?)
        case method
        case source
        case sourcePort
        case destination
        case destinationPort
        case base
        case requestVersion
        case sslFrontend
        case tls(TLSSampleFetch)
        case constant(Bool)
        /// `str`, `env` (nil: the variable was not set), `int`.
        case literalBytes(UnsafeRawBufferPointer?)
        case literalInteger(Int)
        case receivedRequestLine(RequestLinePart)
        case serverID, serverName
        case proxyProtocol(ProxyProtocolFetch)
        case status
        case responseHeader(UnsafeRawBufferPointer, occurrence: Int?)
        /// `http_auth(L)` and `http_auth_group(L)`: the list lives in the rule set's constants.
        case httpAuth(Unmanaged<HTTPUserlist>)
        case httpAuthGroup(Unmanaged<HTTPUserlist>)
        case variable(HTTPVariableKey)
        case variableOrDefault(HTTPVariableKey, UnsafeRawBufferPointer)
        case requestLength
        case requestPayload(offset: Int, length: Int)
        case sslHello(SSLHelloFetch)
        case protoHTTP
        /// `sc*_*` (`source` false: counter `counter`, `table` an alternate table) and `src_*`
        /// (`source` true: `table` is the table read).
        case stick(StickFetchKind, counter: Int, table: Unmanaged<StickTable>?, source: Bool)
        case uniqueID
        case uuid
        /// `fc_err` and the TLS error codes: 0 (see `ConnectionErrorFetch`).
        case connectionError(tlsOnly: Bool)
        /// `capture.req.hdr(N)`, `capture.res.hdr(N)`: the frontend's capture slot N.
        case capturedRequest(Int)
        case capturedResponse(Int)
    }

    enum CaseMapping {
        case none, lower, upper
    }

    var fetch: Fetch
    var caseMapping: CaseMapping
    /// Converters other than case mappings, applied in order (nil for most samples).
    var chain: Unmanaged<HTTPConverterChain>?

    init(_ expression: SampleExpression, constants: HTTPRuleConstants) {
        switch expression.fetch {
        case .path: fetch = .path
        case .url: fetch = .url
        case .query: fetch = .query
        case .urlParameter(let name): fetch = .urlParameter(constants.bytes(name))
        case .header(let name, let occurrence):
            fetch = .header(constants.bytes(name, lowercased: true), occurrence: occurrence == 0 ? nil : occurrence)
        case .fullHeader(let name): fetch = .fullHeader(constants.bytes(name, lowercased: true))
        case .headerCount(let name): fetch = .headerCount(constants.bytes(name, lowercased: true))
        case .headerIP(let name, let occurrence):
            fetch = .headerIP(constants.bytes(name, lowercased: true), occurrence: occurrence == 0 ? nil : occurrence)
        case .headerValue(let name, let occurrence):
            fetch = .headerValue(constants.bytes(name, lowercased: true), occurrence: occurrence == 0 ? nil : occurrence)
        case .responseHeaderValue(let name, let occurrence):
            fetch = .responseHeaderValue(constants.bytes(name, lowercased: true), occurrence: occurrence == 0 ? nil : occurrence)
        case .method: fetch = .method
        case .source: fetch = .source
        case .sourcePort: fetch = .sourcePort
        case .destination: fetch = .destination
        case .destinationPort: fetch = .destinationPort
        case .base: fetch = .base
        case .requestVersion: fetch = .requestVersion
        case .sslFrontend: fetch = .sslFrontend
        case .tls(let f): fetch = .tls(f)
        case .constant(let value): fetch = .constant(value)
        case .literalString(let text): fetch = .literalBytes(constants.bytes(text))
        case .literalInteger(let n): fetch = .literalInteger(n)
        case .receivedRequestLine(let part): fetch = .receivedRequestLine(part)
        case .serverID: fetch = .serverID
        case .serverName: fetch = .serverName
        case .environment(let name): fetch = .literalBytes(getenv(name).map { constants.bytes(String(cString: $0)) })
        case .proxyProtocol(let f): fetch = .proxyProtocol(f)
        case .status: fetch = .status
        case .responseHeader(let name, let occurrence):
            fetch = .responseHeader(constants.bytes(name, lowercased: true), occurrence: occurrence == 0 ? nil : occurrence)
        case .httpAuth(let name): fetch = .httpAuth(constants.userlist(name))
        case .httpAuthGroup(let name): fetch = .httpAuthGroup(constants.userlist(name))
        case .variable(let name): fetch = .variable(HTTPVariableKey(name))
        case .variableOrDefault(let name, let value): fetch = .variableOrDefault(HTTPVariableKey(name), constants.bytes(value))
        case .requestLength: fetch = .requestLength
        case .requestPayload(let offset, let length): fetch = .requestPayload(offset: offset, length: length)
        case .sslHello(let f): fetch = .sslHello(f)
        case .protoHTTP: fetch = .protoHTTP
        // A `tcp-response content` rule set evaluates with the server's bytes as the payload.
        case .responseLength: fetch = .requestLength
        case .responsePayload(let offset, let length): fetch = .requestPayload(offset: offset, length: length)
        case .responseHelloType: fetch = .sslHello(.helloType)
        case .uniqueID: fetch = .uniqueID
        case .uuid: fetch = .uuid
        case .connectionError(let f): fetch = .connectionError(tlsOnly: f != .connection)
        case .capturedRequest(let slot): fetch = .capturedRequest(slot)
        case .capturedResponse(let slot): fetch = .capturedResponse(slot)
        case .stickCounter(let f):
            switch f.source {
            case .tracked(let n, let table):
                fetch = .stick(f.kind, counter: n, table: constants.stickTable(table), source: false)
            case .source(let table):
                fetch = .stick(f.kind, counter: 0, table: constants.stickTable(table), source: true)
            }
        }
        if expression.converters.allSatisfy(\.isCaseMapping) {
            // The common case stays a plain mapping: the last of lower/upper wins.
            switch expression.converters.last {
            case .lower?: caseMapping = .lower
            case .upper?: caseMapping = .upper
            default: caseMapping = .none
            }
            chain = nil
        } else {
            caseMapping = .none
            chain = constants.keep(HTTPConverterChain(expression.converters, constants: constants))
        }
    }
}
