/// Why an HTTP/1.1 message was rejected, and the status the proxy answers with.
///
/// Every rejection closes the connection after the answer: once framing is in doubt, nothing after
/// the error can be trusted to be the next message (RFC 9112 §6.3, §11.2).
public struct HTTPParseError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        // Start line.
        /// The method is not a token, or is empty.
        case invalidMethod
        /// The request target's form or characters are invalid (RFC 9112 §3.2): a fragment, a CTL,
        /// a space, a non-ASCII byte, `*` outside OPTIONS, authority-form outside CONNECT,
        /// CONNECT without authority-form, an absolute-form that is not `http://` or `https://`.
        case invalidRequestTarget
        /// The request line is not `method SP target SP version` (one space each).
        case invalidRequestLine
        /// The version is not `HTTP/` DIGIT `.` DIGIT.
        case invalidVersion
        /// A well-formed version other than HTTP/1.0 and HTTP/1.1 (`HTTP/2.0`, `HTTP/0.9`): 505.
        case unsupportedVersion
        /// The request line does not end within the head size limit: 414.
        case uriTooLong
        /// The status line is not `version SP 3DIGIT [SP reason]`.
        case invalidStatusLine
        /// The status code is outside 100...599.
        case invalidStatusCode

        // Head syntax.
        /// A CR not followed by LF anywhere in a head, a chunk line or the trailers.
        case bareCR
        /// A line ended by LF alone (rejected: see `HTTPRequestParser`).
        case bareLF
        /// A field line starting with SP or HTAB (obsolete line folding, RFC 9112 §5.2).
        case obsFold
        /// Whitespace between a field name and its colon (RFC 9112 §5.1).
        case whitespaceBeforeColon
        /// A field name that is empty, holds a non-token byte, or a line with no colon.
        case invalidFieldName
        /// A field value holding a CTL other than HTAB, DEL, or NUL.
        case invalidFieldValue
        /// The head does not end within the head size limit: 431 (a response: 502).
        case headTooLarge
        /// More field lines than the limit: 431 (a response: 502).
        case tooManyFields

        // Host (requests).
        /// HTTP/1.1 request without Host (RFC 9112 §3.2).
        case missingHost
        /// More than one Host field line.
        case multipleHost
        /// A Host value that is not uri-host [":" port] per RFC 3986.
        case invalidHost
        /// An absolute-form target whose authority is not the Host field's value (RFC 9112 §3.2.2).
        case hostMismatch

        // Framing fields.
        /// Both Content-Length and Transfer-Encoding (RFC 9112 §6.3 point 3: smuggling).
        case contentLengthWithTransferEncoding
        /// A Content-Length that is empty, not digits, or above 2^63 - 1.
        case invalidContentLength
        /// Content-Length values that differ (within one list or across field lines).
        case conflictingContentLength
        /// A Transfer-Encoding that is empty or whose codings are not tokens (or `chunked` with parameters).
        case invalidTransferEncoding
        /// A request's Transfer-Encoding whose last coding is not `chunked` (RFC 9112 §6.3 point 4).
        case chunkedNotFinal
        /// `chunked` listed more than once (RFC 9112 §6.1).
        case chunkedAppliedTwice
        /// Transfer-Encoding in an HTTP/1.0 message (RFC 9112 §6.1).
        case transferEncodingInHTTP10

        // Chunked body.
        /// A chunk size that is empty or not hex.
        case invalidChunkSize
        /// A chunk size above 2^63 - 1.
        case chunkSizeOverflow
        /// Chunk extensions that do not follow `*( BWS ";" BWS name [ BWS "=" BWS value ] )`.
        case invalidChunkExtension
        /// A chunk line longer than `HTTPParserLimits.maxChunkLineSize`.
        case chunkLineTooLong
        /// Chunk data not followed by CRLF.
        case missingChunkDataCRLF
        /// The last chunk and its trailers do not end within the head size limit.
        case trailersTooLarge
        /// A trailer field that must not be a trailer: Content-Length, Transfer-Encoding, Host
        /// (RFC 9110 §6.5.1; a recipient that merged it would reframe the message).
        case forbiddenTrailerField

        // End of input.
        /// The connection ended inside a message (a head, or a body whose length is known).
        case incompleteMessage
    }

    public var code: Code
    /// Whether the message was a response (the answer is then 502 whatever the code).
    public var inResponse: Bool
    /// Offset of the offending byte in the input passed to the call that failed (0 when unknown).
    public var offset: Int

    public init(_ code: Code, inResponse: Bool = false, offset: Int = 0) {
        self.code = code
        self.inResponse = inResponse
        self.offset = offset
    }

    /// The status the proxy answers the client with: 502 for an invalid response; for an invalid
    /// request 414, 431 or 505 where noted on `Code`, 400 otherwise.
    public var status: Int {
        if inResponse { return 502 }
        switch code {
        case .uriTooLong: return 414
        case .headTooLarge, .tooManyFields: return 431
        case .unsupportedVersion: return 505
        default: return 400
        }
    }

    public var description: String {
        "\(inResponse ? "response" : "request"): \(code) at offset \(offset) (status \(status))"
    }
}
