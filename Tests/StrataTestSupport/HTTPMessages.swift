import Foundation

/// A request or response whose lines are joined with CRLF, ending with the empty line.
public func h1Message(_ lines: String...) -> [UInt8] { h1Message(lines) }

public func h1Message(_ lines: [String]) -> [UInt8] {
    Array((lines.joined(separator: "\r\n") + "\r\n\r\n").utf8)
}

/// The `Authorization` header line (without CRLF) of HTTP basic authentication as `user:password`.
public func basicAuthorization(_ userPassword: String) -> String {
    "Authorization: Basic " + Data(userPassword.utf8).base64EncodedString()
}
