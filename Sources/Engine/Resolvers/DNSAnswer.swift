import ConfigModel

/// The record types a resolution asks for.
enum DNSQueryType: Int32, Sendable {
    case a = 1
    case aaaa = 28
    case srv = 33

    /// The other address type (HAProxy's fallback after an invalid answer), nil for SRV.
    var otherFamily: DNSQueryType? {
        switch self {
        case .a: .aaaa
        case .aaaa: .a
        case .srv: nil
        }
    }
}

/// An SRV record (RFC 2782): where a service is, and how much of it to send there.
struct SRVRecord: Hashable, Sendable {
    /// Lowercased, without the final dot.
    var target: String
    var port: UInt16
    var weight: UInt16
    var priority: UInt16
}

/// What one nameserver answered to one query, as c-ares parsed it.
enum DNSAnswer: Sendable {
    case addresses([IPAddress], cname: Bool)
    case services([SRVRecord])
    case failure(DNSFailure)
}

/// Why an answer is not valid, in HAProxy's categories (each has its `hold` and its counter).
enum DNSFailure: Sendable, Equatable {
    /// NXDOMAIN.
    case nx
    case refused
    /// No answer in `timeout retry`, or none could be sent.
    case timeout
    /// NOERROR without a record of the type asked.
    case noData
    /// SERVFAIL, NOTIMP, FORMERR.
    case other
    /// An answer that does not parse.
    case invalid
}

/// A resolution's outcome, HAProxy's `RSLV_STATUS_*`.
enum ResolutionStatus: Sendable, Equatable {
    case none
    case valid
    case nx
    case refused
    case timeout
    case other

    init(_ failure: DNSFailure) {
        switch failure {
        case .nx: self = .nx
        case .refused: self = .refused
        case .timeout: self = .timeout
        case .noData, .other, .invalid: self = .other
        }
    }

    /// HAProxy's reason for the resolution maintenance an error leads to.
    var maintenanceReason: String {
        switch self {
        case .nx: "DNS NX status"
        case .timeout: "DNS timeout status"
        case .refused: "DNS refused status"
        default: "unspecified DNS error"
        }
    }
}
