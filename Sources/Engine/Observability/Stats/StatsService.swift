import HTTP1
import ConfigModel

// HOW HTTPSession CALLS THE STATS PAGE AND THE EXPORTER
//
// Both read what the control loop owns (every loop's counters, health, generations), so each is
// answered in two halves: the data loop that has the request reads what it needs of it (the
// query, the credentials, `stats admin if`, a POST's form) into a `StatsServiceCall`, the control
// loop computes the `StatsServiceAnswer` from it, and the data loop sends it
// (`HTTPSession.awaitService`). Count `frontend.counters[loop].intercepted += 1` for either.
//
// 1. `http-request use-service NAME`: `Engine.serviceCall(name, head, input)` (nil: an unknown
//    service, answered 503), then `engine.answer(call)`.
// 2. The stats page (`stats uri`), after `processRequest` returned `.forward(backendName)`:
//    `Engine.statsPageRequest(head, input, frontend, backend)` (a prefix compare, nil at once for
//    every other request), `Engine.statsPageCall(page, head, input, connection, scratch, frontend,
//    body)`, then `engine.answer(call)`.

/// What the control loop needs to answer a stats page or exporter request, read off the request
/// on its data loop.
enum StatsServiceCall: @unchecked Sendable {
    case prometheus(scope: PrometheusScope, noMaint: Bool, headOnly: Bool)
    /// `authorized`: `stats auth` passed (else the 401); `admin`: `stats admin if` holds; `form`: a
    /// POST's body.
    case statsPage(StatsPageRequest, authorized: Bool, admin: Bool, form: String?)
    /// A `stats http-request deny|auth` answer.
    case refused(StatsServiceAnswer)
}

/// What a request for the stats page asks: which page (the proxy's `stats` settings), which
/// form (`;csv`, `;json`, `;typed`), and HAProxy's other URI options (`;up`, `;no-maint`,
/// `;norefresh`, `;st=…`).
struct StatsPageRequest {
    enum Format { case html, csv, json, typed }

    let page: StatsPage
    /// The proxy whose `stats` settings these are.
    let proxyName: String
    let format: Format
    let refresh: Bool
    let onlyUp: Bool
    let noMaint: Bool
    /// `;st=DONE` and friends: the outcome of the last admin action, shown on the page.
    let actionStatus: String?
    let method: HTTPMethod
    /// The request body's length (a POST's form).
    let bodyLength: Int
    /// `?scope=TEXT`: only the proxies whose name contains TEXT (case-insensitive), HAProxy's.
    var scope: String? = nil
}

extension Engine {
    /// `http-request use-service NAME`: what `prometheus-exporter` needs of the request (the
    /// query's `scope` parameters), or nil for a service strata does not have. Data loop.
    static func serviceCall(_ name: String, _ head: borrowing HTTPHead, input: UnsafeRawBufferPointer) -> StatsServiceCall? {
        guard name == "prometheus-exporter" else { return nil }
        let target = HTTPRuleBytes.slice(input, head.target)
        var query: Substring = ""
        if let mark = target.firstIndex(of: UInt8(ascii: "?")) {
            query = Substring(String(decoding: target[(mark + 1)...], as: UTF8.self))
        }
        let (scope, noMaint) = PrometheusScope.parse(query: query)
        return .prometheus(scope: scope, noMaint: noMaint, headOnly: head.method == .head)
    }

    /// The answer to a stats service call. Control loop.
    func answer(_ call: StatsServiceCall) -> StatsServiceAnswer {
        switch call {
        case .prometheus(let scope, let noMaint, let headOnly):
            var writer = prometheusWriter(scope: scope, noMaint: noMaint)
            return StatsServiceAnswer(status: 200, headers: [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                                      taking: writer.takeBuffer(), headOnly: headOnly)
        case .statsPage(let request, let authorized, let admin, let form):
            return statsPageAnswer(request, authorized: authorized, admin: admin, form: form)
        case .refused(let answer):
            return answer
        }
    }

    /// The stats page this request asks for, or nil: the frontend's or the backend's `stats uri`
    /// is a prefix of the request's path (HAProxy's test), for GET, HEAD and POST. Loop thread.
    static func statsPageRequest(_ head: borrowing HTTPHead, input: UnsafeRawBufferPointer, frontend: Frontend,
                                 backend: Backend?) -> StatsPageRequest? {
        let method = head.method
        guard method == .get || method == .head || method == .post else { return nil }
        var target = HTTPRuleBytes.slice(input, head.target)
        if head.targetForm == .absolute, let path = HTTPTargetParts(target).path {
            target = UnsafeRawBufferPointer(rebasing: target[path.lowerBound...])
        }
        for proxy in [frontend.proxy, backend?.proxy] {
            guard let proxy, let page = proxy.stats else { continue }
            var prefix = page.uri
            let matched = prefix.withUTF8 { p in
                p.count <= target.count && memcmpEqual(UnsafeRawBufferPointer(p), UnsafeRawBufferPointer(rebasing: target[0..<p.count]))
            }
            guard matched else { continue }
            let rest = String(decoding: target[page.uri.utf8.count...], as: UTF8.self)
            var format = StatsPageRequest.Format.html
            if rest.contains(";csv") { format = .csv }
            if rest.contains(";typed") { format = .typed }
            if rest.contains(";json") { format = .json }
            var status: String?
            if let r = rest.firstRange(of: ";st=") {
                status = String(rest[r.upperBound...].prefix { $0.isLetter })
            }
            var scope: String?
            if let r = rest.firstRange(of: "scope=") {
                let value = rest[r.upperBound...].prefix { $0 != "&" && $0 != ";" && $0 != "#" }
                if !value.isEmpty { scope = String(value) }
            }
            return StatsPageRequest(page: page, proxyName: proxy.name, format: format, refresh: !rest.contains(";norefresh"),
                                    onlyUp: rest.contains(";up"), noMaint: rest.contains(";no-maint"), actionStatus: status,
                                    method: method, bodyLength: Int(head.contentLength ?? 0), scope: scope)
        }
        return nil
    }

    /// What the stats page needs of its request: whether `stats auth` passed, whether `stats
    /// admin if` holds, a POST's form. Data loop.
    static func statsPageCall(_ request: StatsPageRequest, _ head: borrowing HTTPHead, input: UnsafeRawBufferPointer,
                              connection: HTTPConnectionInfo, scratch: HTTPRuleScratch, frontend: Frontend,
                              body: UnsafeRawBufferPointer) -> StatsServiceCall {
        let page = request.page
        var authorized = page.credentials.isEmpty
        if !authorized, let i = head.firstIndex(ofField: "authorization", in: input) {
            authorized = StatsAuth.check(HTTPRuleBytes.slice(input, head.fields[i].value), page.credentials)
        }
        // `stats http-request`: the first rule that applies decides.
        if !page.rules.isEmpty, let rule = withUnsafePointer(to: head, { pointer in
            firstStatsRule(page, head: pointer, input: input, connection: connection, scratch: scratch, frontend: frontend)
        }) {
            let headOnly = request.method == .head
            switch rule.action {
            case .allow: break
            case .deny(let status): return .refused(StatsServiceAnswer.errorPage(status, headOnly: headOnly))
            case .auth(let realm): return .refused(StatsAuth.challenge(realm: realm ?? "HAProxy Statistics", headOnly: headOnly))
            }
        }
        let admin = authorized && withUnsafePointer(to: head) { pointer in
            statsAdminAllowed(page, head: pointer, input: input, connection: connection, scratch: scratch, frontend: frontend)
        }
        let form = request.method == .post ? String(decoding: body, as: UTF8.self) : nil
        return .statsPage(request, authorized: authorized, admin: admin, form: form)
    }

    /// The stats page's answer: 401 without the right `stats auth` credentials, the outcome of an
    /// admin POST (303 to `;st=…`, HAProxy's), else the page in the form asked. Control loop.
    func statsPageAnswer(_ request: StatsPageRequest, authorized: Bool, admin: Bool, form: String?) -> StatsServiceAnswer {
        let page = request.page
        let headOnly = request.method == .head
        if !authorized { return StatsAuth.challenge(realm: page.realm, headOnly: headOnly) }
        if request.method == .post {
            let status = admin ? statsAdminAction(form ?? "") : "DENY"
            return StatsServiceAnswer(status: 303, headers: [("content-type", "text/plain"), ("location", "\(page.uri);st=\(status)")],
                                      body: [])
        }
        switch request.format {
        case .csv:
            return StatsServiceAnswer(status: 200, headers: [("content-type", "text/plain")],
                                      body: Array(StatsFormat.csv(statsPageRows(request)).utf8), headOnly: headOnly)
        case .typed:
            return StatsServiceAnswer(status: 200, headers: [("content-type", "text/plain")],
                                      body: Array(StatsFormat.typed(statsPageRows(request)).utf8), headOnly: headOnly)
        case .json:
            return StatsServiceAnswer(status: 200, headers: [("content-type", "application/json")],
                                      body: Array(StatsFormat.json(statsPageRows(request)).utf8), headOnly: headOnly)
        case .html:
            var headers = [("content-type", "text/html")]
            if request.refresh, let ms = page.refresh, ms > 0 { headers.append(("refresh", "\(max(1, ms / 1000))")) }
            return StatsServiceAnswer(status: 200, headers: headers,
                                      body: Array(statsPageHTML(request, admin: admin).utf8), headOnly: headOnly)
        }
    }

    func statsPageRows(_ request: StatsPageRequest) -> [StatsRow] {
        var rows = statsRows()
        if request.onlyUp || request.noMaint {
            rows.removeAll { row in
                guard row.type == .server else { return false }
                let status = row.string(.status)
                if request.noMaint && status.hasPrefix("MAINT") { return true }
                return request.onlyUp && !(status.hasPrefix("UP") || status == "no check")
            }
        }
        return rows
    }

    /// `stats admin if COND`, evaluated on this request.
    /// The first `stats http-request` rule whose condition holds (compiled for this request,
    /// as `stats admin`'s condition is: the page is rarely asked for).
    private static func firstStatsRule(_ page: StatsPage, head: UnsafePointer<HTTPHead>, input: UnsafeRawBufferPointer,
                                       connection: HTTPConnectionInfo, scratch: HTTPRuleScratch, frontend: Frontend) -> StatsRule? {
        // What the conditions name (`http_auth(LIST)`, maps) as the proxy's rules see it.
        let constants = HTTPRuleConstants()
        constants.userlists = frontend.proxy.http.userlists
        constants.maps = frontend.generation?.maps ?? [:]
        constants.proxyName = frontend.proxy.name
        defer { withExtendedLifetime(constants) {} }
        guard let rules = frontend.rules ?? (try? HTTPRuleSet(frontend.proxy, maps: frontend.generation?.maps ?? [:])) else { return nil }
        return withUnsafePointer(to: connection) { connection -> StatsRule? in
            let ev = HTTPEvaluation(request: HTTPMessageView(input: input, head: head, edits: scratch.request),
                                    response: nil, connection: connection, scratch: scratch, frontend: rules, backend: nil)
            for rule in page.rules {
                scratch.beginRule()
                guard let condition = rule.condition else { return rule }
                guard let compiled = try? HTTPCompiledCondition(condition, constants: constants) else { continue }
                if compiled.evaluate(ev) { return rule }
            }
            return nil
        }
    }

    private static func statsAdminAllowed(_ page: StatsPage, head: UnsafePointer<HTTPHead>, input: UnsafeRawBufferPointer,
                                   connection: HTTPConnectionInfo, scratch: HTTPRuleScratch, frontend: Frontend) -> Bool {
        guard let condition = page.admin else { return false }
        let constants = HTTPRuleConstants()
        constants.userlists = frontend.proxy.http.userlists
        constants.maps = frontend.generation?.maps ?? [:]
        constants.proxyName = frontend.proxy.name
        guard let compiled = try? HTTPCompiledCondition(condition, constants: constants),
              let rules = frontend.rules ?? (try? HTTPRuleSet(frontend.proxy, maps: frontend.generation?.maps ?? [:])) else { return false }
        scratch.beginRule()
        let result = withUnsafePointer(to: connection) { connection in
            compiled.evaluate(HTTPEvaluation(request: HTTPMessageView(input: input, head: head, edits: scratch.request),
                                             response: nil, connection: connection, scratch: scratch, frontend: rules,
                                             backend: nil))
        }
        withExtendedLifetime(constants) {}
        return result
    }

    /// The admin form (HAProxy's fields: `b=#IID` or a name, `s=SERVER` repeated,
    /// `action=ready|drain|maint|dhlth|ehlth|hrunn|hnolb|hdown|shutdown`): HAProxy's `st` code.
    func statsAdminAction(_ form: String) -> String {
        var backend: String?
        var servers: [String] = []
        var action: String?
        for pair in form.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { continue }
            let value = StatsAuth.formDecode(parts[1])
            switch parts[0] {
            case "b": backend = value
            case "s": servers.append(value)
            case "action": action = value
            default: continue
            }
        }
        guard var backendName = backend, let action, !servers.isEmpty else { return servers.isEmpty && action != nil ? "NONE" : "ERRP" }
        if backendName.hasPrefix("#"), let id = Int(backendName.dropFirst()),
           let view = statsProxies().first(where: { $0.proxy.id == id && $0.backend != nil }) {
            backendName = view.name
        }
        var done = 0
        for server in servers {
            let t = ServerAdminCommand.Target(backend: backendName, server: server)
            let command: ServerAdminCommand
            switch action {
            case "ready", "enable": command = .setState(t, .ready)
            case "drain": command = .setState(t, .drain)
            case "maint", "disable": command = .setState(t, .maint)
            case "dhlth": command = .setChecks(t, enabled: false)
            case "ehlth": command = .setChecks(t, enabled: true)
            case "hrunn": command = .setHealth(t, .running)
            case "hnolb": command = .setHealth(t, .stopping)
            case "hdown": command = .setHealth(t, .stopped)
            case "shutdown":
                if let s = current?.backends[backendName]?.servers.first(where: { $0.name == server }) {
                    shutdownSessions(of: s.state)
                    done += 1
                }
                continue
            default:
                return "ERRP"
            }
            if case .success = command.execute(on: self) { done += 1 }
        }
        if done == servers.count { return "DONE" }
        return done == 0 ? "ERRP" : "PART"
    }
}

/// Byte equality of two buffers of the same length.
@inline(__always)
func memcmpEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    guard a.count == b.count else { return false }
    var i = 0
    while i < a.count {
        if a[i] != b[i] { return false }
        i += 1
    }
    return true
}

/// `stats auth USER:PASS`: HTTP basic authentication (RFC 7617), and the form decoding of the
/// admin POST.
enum StatsAuth {
    /// Whether an Authorization value (`Basic BASE64`) names one of the credentials.
    static func check(_ value: UnsafeRawBufferPointer, _ credentials: [StatsPage.Credential]) -> Bool {
        guard let decoded = basicCredentials(value) else { return false }
        let pair = String(decoding: decoded, as: UTF8.self)
        return credentials.contains { "\($0.user):\($0.password)" == pair }
    }

    /// What an Authorization value `Basic BASE64` carries (`user:password`), nil for anything else.
    static func basicCredentials(_ value: UnsafeRawBufferPointer) -> [UInt8]? {
        let text = String(decoding: value, as: UTF8.self)
        let words = text.split(separator: " ", omittingEmptySubsequences: true)
        guard words.count == 2, words[0].lowercased() == "basic" else { return nil }
        return Base64.decode(words[1].utf8, .either)
    }

    /// 401 with `WWW-Authenticate: Basic realm="…"` and HAProxy's page.
    static func challenge(realm: String, headOnly: Bool) -> StatsServiceAnswer {
        let page = HTTPErrorPages.page(401)!
        let body = Array(UnsafeRawBufferPointer(start: page.body.utf8Start, count: page.body.utf8CodeUnitCount))
        let escaped = realm.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"")
        return StatsServiceAnswer(status: 401, headers: [("content-type", "text/html"),
                                                         ("www-authenticate", "Basic realm=\"\(escaped)\"")],
                                  body: body, headOnly: headOnly)
    }

    /// `application/x-www-form-urlencoded` value: `+` is a space, `%XX` a byte.
    static func formDecode(_ text: Substring) -> String {
        var out: [UInt8] = []
        var bytes = Array(text.utf8)[...]
        while let b = bytes.popFirst() {
            if b == UInt8(ascii: "+") {
                out.append(0x20)
            } else if b == UInt8(ascii: "%"), bytes.count >= 2,
                      let hi = HTTPByte.hexValue(bytes[bytes.startIndex]), let lo = HTTPByte.hexValue(bytes[bytes.startIndex + 1]) {
                out.append(hi << 4 | lo)
                bytes = bytes.dropFirst(2)
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
