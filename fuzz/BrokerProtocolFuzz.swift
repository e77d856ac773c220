// libFuzzer target for the privilege broker's protocol (Sources/Broker/BrokerMessage.swift) and
// policy (BrokerPolicy.swift): what a compromised serving process can send the root broker.
// Built by fuzz/build-broker.sh with ConfigModel and the Loader's file kinds in one module.
//
// The input is a byte stream as the broker reads it: frames (a 4-byte length, then a body). For
// each frame the target traps when:
// - a length over the request limit is accepted, or a body is parsed past its end;
// - a request that parses does not survive its own encoding (encode, parse again: equal), or its
//   encoding is not a frame of its own length;
// - the same body parsed as an answer (the serving process's side) and re-encoded is not equal;
// - the policy's decisions on it (read, list, bind) trap, or a policy that was given no
//   configuration allows anything but the `-f` file.
// and of course on any crash, overflow trap or sanitizer report.

#if canImport(Glibc)
import Glibc
#endif

private let emptyPolicy = BrokerPolicy(arguments: ["/etc/strata/strata.cfg"], workingDirectory: "/etc/strata", firstLoadFiles: [])

private let namedPolicy: BrokerPolicy = {
    var p = BrokerPolicy(arguments: ["/etc/strata/strata.cfg"], workingDirectory: "/etc/strata", firstLoadFiles: [],
                         environment: ["D": "/srv"])
    p.begin()
    p.served("/etc/strata/strata.cfg", kind: .configuration,
             bytes: Array("global\n crt-base /srv/certs\nfrontend f\n bind :443 ssl crt site.pem crt \"${D}/x.pem\"\n bind 127.0.0.1:80,[::1]:81\n errorfile 503 e/503.http\n".utf8))
    return p
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func brokerProtocolFuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var rest = Array(UnsafeBufferPointer(start: data, count: data == nil ? 0 : size))[...]
    var policy = namedPolicy
    while rest.count >= 4 {
        let length: Int
        do {
            guard let n = try BrokerFrame.length(rest.prefix(4), limit: BrokerFrame.maxRequest) else { return 0 }
            length = n
        } catch {
            return 0  // the broker closes the connection here
        }
        precondition(length >= 1 && length <= BrokerFrame.maxRequest)
        rest = rest.dropFirst(4)
        let body = rest.prefix(length)
        rest = rest.dropFirst(length)
        if let request = try? BrokerFrame.request(body) {
            let encoded = BrokerFrame.encode(request)
            precondition(try! BrokerFrame.length(encoded, limit: BrokerFrame.maxResponse) == encoded.count - 4)
            precondition(try! BrokerFrame.request(encoded[4...]) == request, "a request does not survive its encoding")
            switch request {
            case .read(let path, let kind):
                _ = policy.mayRead(path)
                precondition(!emptyPolicy.mayRead(path) || BrokerPolicy.normalize(path, in: "/etc/strata") == "/etc/strata/strata.cfg",
                             "a policy without configuration allowed \(path)")
                if kind == .configuration || kind == .tls { policy.served(path, kind: kind == .tls ? .tls : .configuration, bytes: Array(body)) }
            case .list(let path):
                _ = policy.mayList(path)
                precondition(!emptyPolicy.mayList(path) || BrokerPolicy.normalize(path, in: "/etc/strata") == "/etc/strata/strata.cfg")
            case .bind(let key, _):
                _ = policy.mayBind(key)
                precondition(!emptyPolicy.mayBind(key), "a policy without configuration allowed a bind")
            case .begin: policy.begin()
            case .commit: policy.commit()
            case .user, .group: break
            }
        }
        if let response = try? BrokerFrame.response(body) {
            let encoded = BrokerFrame.encode(response)
            precondition(try! BrokerFrame.response(encoded[4...]) == response, "an answer does not survive its encoding")
        }
    }
    return 0
}
