import ConfigModel

/// `compression …` in a proxy section (HAProxy's flt_http_comp.c options): response compression.
/// Request compression (`algo-req`, `type-req`, `minsize-req`, `direction request|both`) is
/// refused: strata compresses answers only.
extension KeywordReader {
    static let compressionOptions = ["algo", "algo-res", "type", "type-res", "offload", "minsize-res", "direction"]
    static let requestCompressionOptions: Set<String> = ["algo-req", "type-req", "minsize-req"]

    func compression(_ line: KeywordLine, draft: inout ProxyDraft) throws(ConfigError) {
        let option = try line.argument(0, expecting: "'algo', 'type', 'direction', 'offload' or 'minsize-res'")
        var settings = draft.proxy.http.compression ?? HTTPCompression()
        switch option {
        case "algo", "algo-res":
            guard line.args.count > 1 else { throw line.error("'compression \(option)' expects <algorithm>") }
            var named: [HTTPCompression.Algorithm] = []
            for name in line.args.dropFirst() {
                guard let algorithm = HTTPCompression.Algorithm(rawValue: name) else {
                    throw line.error("'compression \(option)': '\(name)' is not a supported algorithm (strata has "
                        + KeywordLine.list(HTTPCompression.Algorithm.allCases.map(\.rawValue)) + ")")
                }
                named.append(algorithm)
            }
            // HAProxy puts each name before the ones already listed (an inherited list too).
            settings.algorithms.insert(contentsOf: named.reversed(), at: 0)
        case "type", "type-res":
            guard line.args.count > 1 else { throw line.error("'compression \(option)' expects <type>") }
            settings.types.insert(contentsOf: line.args.dropFirst().reversed(), at: 0)
        case "offload":
            try line.noArguments(after: 1)
            if draft.section == .defaults {
                // HAProxy's warning: the option is ignored there.
                draft.lineWarnings.append(line.error("'compression offload' ignored in 'defaults' section."))
                return
            }
            settings.offload = true
        case "minsize-res":
            let text = try line.argument(1, expecting: "a size (compression minsize-res SIZE)")
            try line.noArguments(after: 2)
            switch ConfigUnits.parseSize(text) {
            case .success(let size) where size <= Int(UInt32.max): settings.minimumSize = size
            case .success: throw line.error("'compression minsize-res' expects a size up to 4g, got '\(text)'")
            case .failure(let failure): throw line.error("'compression minsize-res' expects a size, got '\(text)' (\(failure))")
            }
        case "direction":
            let direction = try line.argument(1, expecting: "'request', 'response', or 'both'")
            try line.noArguments(after: 2)
            switch direction {
            case "response": break
            case "request", "both":
                throw line.error("'compression direction \(direction)' is not supported yet: strata compresses responses only (use 'compression direction response')")
            default:
                throw line.error("'compression direction' expects 'request', 'response', or 'both', got '\(direction)'")
            }
        default:
            if KeywordReader.requestCompressionOptions.contains(option) {
                throw line.error("'compression \(option)' is not supported yet: strata compresses responses only")
            }
            throw line.error("'compression' expects 'algo', 'type', 'direction', 'offload' or 'minsize-res', got '\(option)'"
                + KeywordSuggestion.clause(for: option, among: KeywordReader.compressionOptions))
        }
        draft.proxy.http.compression = settings
        draft.noteHTTPOnly("compression", line.location)
    }
}
