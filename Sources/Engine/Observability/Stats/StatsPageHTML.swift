import ConfigModel
import Glibc

/// The stats page in HTML: HAProxy's proxy tables (queue, sessions, bytes, denied, errors,
/// warnings, server status and checks), and beside them strata's generations panel: one row per
/// live generation (id, state, age, sessions, hash), an inline SVG chart of each generation's
/// sessions over the last minutes (a drain shows as the old generation's line falling to zero
/// and stopping when it retires), the last reloads with what they did, and lifecycle events.
/// No script: the page works with `stats refresh` and without JavaScript.
extension Engine {
    func statsPageHTML(_ request: StatsPageRequest, admin: Bool) -> String {
        let page = request.page
        let registry = metrics
        let info = statsProcessInfo
        var h = ""
        h.reserveCapacity(64 * 1024)
        let title = page.hideVersion ? "strata" : "strata \(registry.productVersion)".trimmingSpaces
        h += """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Statistics Report for \(html(title))</title>
            <link rel="icon" href="data:,">
            <style>
            body{font-family:Arial,Helvetica,sans-serif;font-size:12px;margin:8px;color:#000;background:#fff}
            h1{font-size:16px;margin:4px 0;background:#20a0ff;color:#fff;padding:4px}
            h2{font-size:14px;margin:12px 0 4px 0}
            table{border-collapse:collapse;margin-bottom:10px}
            th,td{border:1px solid #999;padding:1px 4px;text-align:right;white-space:nowrap}
            th{background:#a0a0a0;text-align:center}
            td.n,th.n{text-align:left}
            tr.frontend td{background:#e0e0ff} tr.backend td{background:#c0c0ff;font-weight:bold}
            tr.up td{background:#c0ffc0} tr.down td{background:#ff9090} tr.maint td{background:#c07820}
            tr.drain td{background:#b0d0ff} tr.nolb td{background:#ffffa0} tr.going td{background:#ffd020}
            tr.active td{background:#c0ffc0} tr.draining td{background:#ffe0a0}
            td.legend{width:12px;border:1px solid #999} td.up{background:#c0ffc0} td.down{background:#ff9090}
            td.maint{background:#c07820} td.drain{background:#b0d0ff} td.nolb{background:#ffffa0} td.going{background:#ffd020}
            #legend td{border:none;font-size:11px} #display-options{margin:4px 0 8px 0}
            details summary{cursor:pointer;margin:4px 0}
            .px{font-weight:bold;background:#ffffff;color:#000;text-align:left}
            .msg{padding:4px;margin:6px 0;border:1px solid #888;background:#e8ffe8}
            .err{background:#ffe0e0}
            svg text{font-size:10px;font-family:Arial,Helvetica,sans-serif}
            </style></head><body>
            <h1>Statistics Report for \(html(title)) (pid \(getpid()))</h1>

            """
        if let st = request.actionStatus {
            let text: String = switch st {
            case "DONE": "Action processed successfully."
            case "NONE": "Nothing has changed."
            case "PART": "Action not processed for every server."
            case "DENY": "Action denied."
            case "ERRP": "Action not processed because of invalid parameters."
            default: "Unexpected result."
            }
            h += "<div class=\"msg\(st == "DONE" || st == "NONE" ? "" : " err")\" id=\"action-status\">\(html(text))</div>\n"
        }
        let uptime = Int(max(0, wallClock() - registry.startedAt))
        h += """
            <h2>General process information</h2>
            <table id="process"><tr><th class="n">pid</th><td>\(getpid())</td><th class="n">uptime</th><td>\(uptime / 86400)d \(uptime / 3600 % 24)h\(uptime / 60 % 60)m\(uptime % 60)s</td></tr>
            <tr><th class="n">maxconn</th><td>\(info.maxconn)</td><th class="n">current conns</th><td>\(info.currentConnections)</td></tr>
            <tr><th class="n">reloads</th><td>\(registry.reloadsSucceeded)</td><th class="n">failed reloads</th><td>\(registry.reloadsFailed)</td></tr>\(nodeAndDescription(page))</table>

            """
        h += legendAndOptions(request)
        // HAProxy's proxy tables first (a small configuration fits the first screen), then
        // strata's generations: one line each, the chart, reloads and events a click away.
        // `stats scope` lines name the proxies the page may show (`.`: the page's own).
        let scopes = Set(page.scopes.map { $0 == "." ? request.proxyName : $0 })
        for view in statsProxies() where (scopes.isEmpty || scopes.contains(view.name))
            && (request.scope.map({ view.name.lowercased().contains($0.lowercased()) }) ?? true) {
            h += proxyTable(view, request: request, admin: admin)
        }
        h += generationsPanel()
        h += "<p>Also as <a href=\"\(html(page.uri));csv\">CSV</a> and <a href=\"\(html(page.uri));json\">JSON</a>.</p>\n</body></html>\n"
        return h
    }

    /// `stats show-node` and `stats show-desc`: rows of the process information.
    private func nodeAndDescription(_ page: StatsPage) -> String {
        var h = ""
        if page.showNode {
            var name = [CChar](repeating: 0, count: 256)
            let host = gethostname(&name, name.count) == 0
                ? String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
            h += "<tr id=\"node\"><th class=\"n\">node</th><td class=\"n\" colspan=\"3\">\(html(page.nodeName ?? host))</td></tr>"
        }
        if page.showDescription, let text = page.description ?? current?.config.config.global.description {
            h += "<tr id=\"description\"><th class=\"n\">description</th><td class=\"n\" colspan=\"3\">\(html(text))</td></tr>"
        }
        return h
    }

    /// HAProxy's legend of the row colours and its display options: Scope, Hide 'DOWN' servers
    /// (`;up`), Refresh now, CSV export.
    private func legendAndOptions(_ request: StatsPageRequest) -> String {
        let uri = request.page.uri
        let options = (request.onlyUp ? ";up" : "") + (request.noMaint ? ";no-maint" : "") + (request.refresh ? "" : ";norefresh")
        let scope = request.scope.map { "?scope=" + $0 } ?? ""
        var h = "<table id=\"legend\"><tr>"
        for (css, text) in [("up", "active UP"), ("going", "active UP, going down / DOWN, going up"), ("down", "active or backup DOWN"),
                            ("nolb", "active or backup NOLB"), ("drain", "active or backup DRAIN"),
                            ("maint", "active or backup DOWN for maintenance (MAINT)")] {
            h += "<td class=\"legend \(css)\">&nbsp;</td><td class=\"n\">\(html(text))</td>"
        }
        h += "</tr></table>\n"
        h += "<form id=\"display-options\" method=\"get\" action=\"\(html(uri + options))\"><b>Display option:</b> Scope : "
        h += "<input name=\"scope\" size=\"8\" maxlength=\"64\" value=\"\(html(request.scope ?? ""))\"> "
        h += request.onlyUp
            ? "<a href=\"\(html(uri + (request.noMaint ? ";no-maint" : "") + (request.refresh ? "" : ";norefresh") + scope))\">Show all servers</a> "
            : "<a id=\"hide-down\" href=\"\(html(uri + ";up" + (request.noMaint ? ";no-maint" : "") + (request.refresh ? "" : ";norefresh") + scope))\">Hide 'DOWN' servers</a> "
        h += "<a id=\"refresh-now\" href=\"\(html(uri + options + scope))\">Refresh now</a> "
        h += "<a href=\"\(html(uri + ";csv"))\">CSV export</a></form>\n"
        return h
    }

    // MARK: generations

    func generationsPanel() -> String {
        let registry = metrics
        var h = "<section id=\"generations\"><h2>Generations</h2>\n"
        h += "<table id=\"generations-table\"><tr><th>id</th><th class=\"n\">state</th><th>age</th><th>draining for</th><th>sessions</th><th>accepted</th><th>killed</th><th>listeners</th><th class=\"n\">hash</th><th class=\"n\">sessions, last minutes</th></tr>\n"
        let now = MonotonicClock.now()
        let wall = wallClock()
        for g in liveGenerations.reversed() {
            let age = Engine.duration(now - g.builtAt)
            let draining = g.drainingSince.map { Engine.duration(now - $0) } ?? "-"
            h += "<tr class=\"\(g.state.rawValue)\" data-generation=\"\(g.id)\"><td>\(g.id)</td><td class=\"n\">\(g.state.rawValue)</td><td>\(age)</td><td>\(draining)</td><td>\(g.sessions)</td><td>\(g.sessionsAccepted)</td><td>\(g.sessionsKilled)</td><td>\(g.listenerRefs)</td><td class=\"n\"><code>\(html(g.config.hash))</code></td><td class=\"n\">\(sparkline(registry.history, generation: g.id, now: wall))</td></tr>\n"
        }
        h += "</table>\n<details id=\"generations-detail\"><summary>sessions chart, last reloads and events</summary>\n"
        h += sessionsChart(registry.history, now: wallClock())
        if !registry.lastReloads.isEmpty {
            h += "<h2>Last reloads</h2><table id=\"reloads\"><tr><th class=\"n\">when</th><th class=\"n\">result</th><th>generation</th><th>ms</th><th class=\"n\">what it did</th></tr>\n"
            for r in registry.lastReloads.reversed() {
                h += "<tr class=\"\(r.success ? "active" : "down")\"><td class=\"n\">\(html(logDate(r.time)))</td><td class=\"n\">\(r.success ? "success" : "failure")</td><td>\(r.generation)</td><td>\(Int((r.seconds * 1000).rounded()))</td><td class=\"n\">\(r.messages.map(html).joined(separator: "<br>"))</td></tr>\n"
            }
            h += "</table>\n"
        }
        if !registry.events.isEmpty {
            h += "<h2>Events</h2><table id=\"events\"><tr><th class=\"n\">when</th><th class=\"n\">event</th></tr>\n"
            for e in registry.events.suffix(15).reversed() {
                h += "<tr><td class=\"n\">\(html(logDate(e.time)))</td><td class=\"n\">\(html(e.message))</td></tr>\n"
            }
            h += "</table>\n"
        }
        return h + "</details></section>\n"
    }

    /// A generation's sessions over the chart's window as a small inline line (120x16), on the
    /// same scale as the full chart: a drain reads at a glance on the generation's own line.
    func sparkline(_ history: [MetricsRegistry.Sample], generation id: Int, now: Double) -> String {
        let width = 120.0, height = 16.0
        // The full chart's window: the last five minutes, or less while the history is shorter
        // (at least one minute).
        let span = history.first.map { now - $0.time } ?? 0
        let window = min(Double(MetricsRegistry.historyLength), max(60, span.rounded(.up)))
        var peak = 1
        for s in history { for g in s.generations { peak = max(peak, g.sessions) } }
        var points: [String] = []
        for s in history {
            guard let g = s.generations.first(where: { $0.id == id }) else { continue }
            let x = width * (1 - min(max(now - s.time, 0), window) / window)
            let y = (height - 1) * (1 - Double(g.sessions) / Double(peak)) + 0.5
            points.append("\(Engine.oneDecimal(x)),\(Engine.oneDecimal(y))")
        }
        if points.count == 1 { points.append(points[0]) }
        let color = Engine.palette[id % Engine.palette.count]
        return "<svg class=\"sparkline\" data-generation=\"\(id)\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"sessions of generation \(id)\">"
            + (points.isEmpty ? "" : "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(points.joined(separator: " "))\"/>")
            + "</svg>"
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(max(0, seconds))
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(s % 60)s" }
        return "\(s / 3600)h\(s / 60 % 60)m"
    }

    private static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]

    /// Sessions per generation over the history window: one polyline per generation, drawn
    /// where the generation was alive.
    func sessionsChart(_ history: [MetricsRegistry.Sample], now: Double) -> String {
        let width = 640.0, height = 180.0, left = 40.0, right = 110.0, top = 10.0, bottom = 24.0
        // The last five minutes, or less while the history is shorter (at least one minute).
        let span = history.first.map { now - $0.time } ?? 0
        let window = min(Double(MetricsRegistry.historyLength), max(60, span.rounded(.up)))
        let plotW = width - left - right, plotH = height - top - bottom
        var peak = 1
        var ids: [Int] = []
        for s in history {
            for g in s.generations {
                peak = max(peak, g.sessions)
                if !ids.contains(g.id) { ids.append(g.id) }
            }
        }
        func x(_ t: Double) -> Double { left + plotW * (1 - min(max(now - t, 0), window) / window) }
        func y(_ v: Int) -> Double { top + plotH * (1 - Double(v) / Double(peak)) }
        func f(_ v: Double) -> String { Engine.oneDecimal(v) }
        var svg = "<svg id=\"generations-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"sessions per generation over the last \(Int(window / 60)) minutes\">\n"
        svg += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"#fafafa\" stroke=\"#999\"/>\n"
        svg += "<text x=\"\(f(left - 4))\" y=\"\(f(top + 8))\" text-anchor=\"end\">\(peak)</text>\n"
        svg += "<text x=\"\(f(left - 4))\" y=\"\(f(top + plotH))\" text-anchor=\"end\">0</text>\n"
        svg += "<text x=\"\(f(left))\" y=\"\(f(height - 8))\">-\(window >= 120 ? "\(Int(window / 60)) min" : "\(Int(window)) s")</text>\n"
        svg += "<text x=\"\(f(left + plotW))\" y=\"\(f(height - 8))\" text-anchor=\"end\">now</text>\n"
        svg += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 8))\" text-anchor=\"middle\">sessions per generation</text>\n"
        for (index, id) in ids.enumerated() {
            let color = Engine.palette[id % Engine.palette.count]
            var runs: [[String]] = [[]]
            for s in history {
                if let g = s.generations.first(where: { $0.id == id }) {
                    runs[runs.count - 1].append("\(f(x(s.time))),\(f(y(g.sessions)))")
                } else if !runs[runs.count - 1].isEmpty {
                    runs.append([])
                }
            }
            for run in runs where !run.isEmpty {
                let points = run.count == 1 ? [run[0], run[0]] : run
                svg += "<polyline class=\"generation-line\" data-generation=\"\(id)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>\n"
                // The run's last point: where the generation is now, or where it retired.
                let end = run[run.count - 1].split(separator: ",")
                svg += "<circle cx=\"\(end[0])\" cy=\"\(end[1])\" r=\"3\" fill=\"\(color)\"/>\n"
            }
            let ly = top + 12 + Double(index) * 14
            svg += "<rect x=\"\(f(width - right + 8))\" y=\"\(f(ly - 8))\" width=\"10\" height=\"10\" fill=\"\(color)\"/>"
            svg += "<text x=\"\(f(width - right + 22))\" y=\"\(f(ly))\">generation \(id)</text>\n"
        }
        return svg + "</svg>\n"
    }

    static func oneDecimal(_ v: Double) -> String {
        let tenths = Int((v * 10).rounded())
        return "\(tenths / 10).\(abs(tenths % 10))"
    }

    // MARK: proxies

    private func proxyTable(_ view: StatsProxyView, request: StatsPageRequest, admin: Bool) -> String {
        let rows = statsRows(proxyID: view.proxy.id).filter { row in
            // The view's own rows (a frontend and a backend may share an id only in odd configs).
            row.string(.pxname) == view.name
        }
        let filtered = rows.filter { row in
            guard row.type == .server else { return true }
            let status = row.string(.status)
            if request.noMaint && status.hasPrefix("MAINT") { return false }
            return !request.onlyUp || status.hasPrefix("UP") || status == "no check"
        }
        let backendAdmin = admin && view.backend != nil
        var h = ""
        if backendAdmin {
            h += "<form method=\"post\" action=\"\(html(request.page.uri))\"><input type=\"hidden\" name=\"b\" value=\"#\(view.proxy.id)\">\n"
        }
        h += "<table class=\"tbl\" id=\"proxy-\(html(view.name))\">\n"
        h += "<tr><th class=\"px\" colspan=\"\(backendAdmin ? 36 : 35)\">\(html(view.name))</th></tr>\n"
        h += "<tr>\(backendAdmin ? "<th rowspan=\"2\"></th>" : "")<th rowspan=\"2\" class=\"n\"></th><th colspan=\"3\">Queue</th><th colspan=\"3\">Session rate</th><th colspan=\"6\">Sessions</th><th colspan=\"2\">Bytes</th><th colspan=\"2\">Denied</th><th colspan=\"3\">Errors</th><th colspan=\"2\">Warnings</th><th colspan=\"13\">Server</th></tr>\n"
        h += "<tr><th>Cur</th><th>Max</th><th>Limit</th><th>Cur</th><th>Max</th><th>Limit</th><th>Cur</th><th>Max</th><th>Limit</th><th>Total</th><th>LbTot</th><th>Last</th><th>In</th><th>Out</th><th>Req</th><th>Resp</th><th>Req</th><th>Conn</th><th>Resp</th><th>Retr</th><th>Redis</th><th>Status</th><th>LastChk</th><th>Wght</th><th>Act</th><th>Bck</th><th>Chk</th><th>Dwn</th><th>Dwntme</th><th>Thrtle</th><th>Addr</th><th>Qtime</th><th>Ctime</th><th>Rtime</th></tr>\n"
        for row in filtered {
            let status = row.string(.status)
            let css: String
            switch row.type {
            case .frontend: css = "frontend"
            case .backend: css = "backend"
            case .server:
                if status.hasPrefix("MAINT") { css = "maint" } else if status == "DRAIN" { css = "drain" }
                else if status.hasPrefix("NOLB") { css = "nolb" } else if status.hasPrefix("DOWN ") || status.hasPrefix("UP ") { css = "going" }
                else if status.hasPrefix("DOWN") { css = "down" } else { css = "up" }
            }
            func c(_ f: StatsField) -> String { "<td>\(html(row.string(f)))</td>" }
            var tr = "<tr class=\"\(css)\">"
            if backendAdmin {
                tr += row.type == .server ? "<td><input type=\"checkbox\" name=\"s\" value=\"\(html(row.string(.svname)))\"></td>" : "<td></td>"
            }
            // `stats show-legends`: what HAProxy puts in each name's tooltip.
            var legend = ""
            if request.page.showLegends {
                let text = row.type == .server
                    ? "id: \(row.string(.sid)), addr: \(row.string(.addr))" + (row.string(.cookie).isEmpty ? "" : ", cookie: \(row.string(.cookie))")
                    : "mode: \(row.string(.mode)), id: \(row.string(.iid))"
                legend = " title=\"\(html(text))\""
            }
            tr += "<td class=\"n\"\(legend)>\(html(row.type == .frontend ? "Frontend" : row.type == .backend ? "Backend" : row.string(.svname)))</td>"
            tr += c(.qcur) + c(.qmax) + "<td></td>" + c(.rate) + c(.rate_max) + c(.rate_lim)
            tr += c(.scur) + c(.smax) + c(.slim) + c(.stot) + c(.lbtot)
            let last = row[.lastsess].map { v -> String in if case .int(let s) = v, s >= 0 { return Engine.duration(Double(s)) } else { return "" } } ?? ""
            tr += "<td>\(last)</td>" + c(.bin) + c(.bout) + c(.dreq) + c(.dresp) + c(.ereq) + c(.econ) + c(.eresp) + c(.wretr) + c(.wredis)
            let check = row.string(.check_status)
            // HAProxy's "L7OK/200 in 1ms".
            let lastCheck = check.isEmpty ? "" : check + (row.string(.check_code).isEmpty ? "" : "/" + row.string(.check_code))
                + (row.string(.check_duration).isEmpty ? "" : " in " + row.string(.check_duration) + "ms")
            let lastChange = row[.lastchg].map { v -> String in if case .int(let s) = v { return Engine.duration(Double(s)) + " " } else { return "" } } ?? ""
            tr += "<td class=\"n\">\(html(row.type == .frontend ? status : lastChange + status))</td><td class=\"n\">\(html(lastCheck))</td>"
            let downtime = row[.downtime].map { v -> String in if case .int(let s) = v { return Engine.duration(Double(s)) } else { return "" } } ?? ""
            tr += c(.weight) + c(.act) + c(.bck) + c(.chkfail) + c(.chkdown) + "<td>\(downtime)</td>" + c(.throttle)
            tr += "<td class=\"n\">\(html(row.string(.addr)))</td>"
            tr += c(.qtime) + c(.ctime) + c(.rtime) + "</tr>\n"
            h += tr
        }
        h += "</table>\n"
        if backendAdmin {
            h += """
                <p>Choose the action to perform on the checked servers: <select name="action">
                <option value="">Choose an action</option><option value="ready">Set state to READY</option>
                <option value="drain">Set state to DRAIN</option><option value="maint">Set state to MAINT</option>
                <option value="dhlth">Health: disable checks</option><option value="ehlth">Health: enable checks</option>
                <option value="hrunn">Health: force UP</option><option value="hnolb">Health: force NOLB</option>
                <option value="hdown">Health: force DOWN</option><option value="shutdown">Kill Sessions</option>
                </select> <input type="submit" value="Apply"></p></form>

                """
        }
        return h
    }
}

/// HTML text escaping.
func html(_ s: String) -> String {
    guard s.contains(where: { $0 == "<" || $0 == ">" || $0 == "&" || $0 == "\"" || $0 == "'" }) else { return s }
    var out = ""
    for c in s {
        switch c {
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "&": out += "&amp;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(c)
        }
    }
    return out
}

extension String {
    var trimmingSpaces: String {
        var s = self[...]
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
