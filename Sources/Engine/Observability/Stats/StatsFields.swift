/// HAProxy's stat fields (`show stat`, the stats page's CSV and JSON), in HAProxy's order: the
/// position is the raw value. Every field is listed, so the CSV header is HAProxy's 2.6 (the
/// per-module counters too); strata fills the fields it has and leaves the others empty, as
/// HAProxy does for a field that does not apply to a row.
enum StatsField: Int, CaseIterable {
    case pxname, svname, qcur, qmax, scur, smax, slim, stot, bin, bout, dreq, dresp, ereq, econ, eresp, wretr
    case wredis, status, weight, act, bck, chkfail, chkdown, lastchg, downtime, qlimit, pid, iid, sid, throttle
    case lbtot, tracked, type, rate, rate_lim, rate_max, check_status, check_code, check_duration, hrsp_1xx
    case hrsp_2xx, hrsp_3xx, hrsp_4xx, hrsp_5xx, hrsp_other, hanafail, req_rate, req_rate_max, req_tot, cli_abrt
    case srv_abrt, comp_in, comp_out, comp_byp, comp_rsp, lastsess, last_chk, last_agt, qtime, ctime, rtime, ttime
    case agent_status, agent_code, agent_duration, check_desc, agent_desc, check_rise, check_fall, check_health
    case agent_rise, agent_fall, agent_health, addr, cookie, mode, algo, conn_rate, conn_rate_max, conn_tot
    case intercepted, dcon, dses, wrew, connect, reuse, cache_lookups, cache_hits, srv_icur, src_ilim, qtime_max
    case ctime_max, rtime_max, ttime_max, eint, idle_conn_cur, safe_conn_cur, used_conn_cur, need_conn_est, uweight
    case agg_server_status, agg_server_check_status, agg_check_status
    // The per-module counters (SSL, HTTP/2, HTTP/1), after the CSV's `-` column.
    case ssl_sess, ssl_reused_sess, ssl_failed_handshake, h2_headers_rcvd, h2_data_rcvd, h2_settings_rcvd
    case h2_rst_stream_rcvd, h2_goaway_rcvd, h2_detected_conn_protocol_errors, h2_detected_strm_protocol_errors
    case h2_rst_stream_resp, h2_goaway_resp, h2_open_connections, h2_backend_open_streams, h2_total_connections
    case h2_backend_total_streams, h1_open_connections, h1_open_streams, h1_total_connections, h1_total_streams
    case h1_bytes_in, h1_bytes_out, h1_spliced_bytes_in, h1_spliced_bytes_out

    /// Name, tags (origin, nature, scope letters of `show stat typed`) and value type, per field,
    /// as HAProxy 2.6 prints them.
    private static let table = """
        pxname:KNS:str svname:KNS:str qcur:MGP:u32 qmax:MMP:u32 scur:MGP:u32 smax:MMP:u32 slim:CLP:u32 stot:MCP:u64
        bin:MCP:u64 bout:MCP:u64 dreq:MCP:u64 dresp:MCP:u64 ereq:MCP:u64 econ:MCP:u64 eresp:MCP:u64 wretr:MCP:u64
        wredis:MCP:u64 status:SGP:str weight:MaP:u32 act:SGP:u32 bck:SGP:u32 chkfail:MCP:u64 chkdown:MCP:u64
        lastchg:MAP:u32 downtime:MCP:u32 qlimit:CLP:u32 pid:KGP:u32 iid:KGS:u32 sid:KGS:u32 throttle:MOP:u32
        lbtot:MCP:u64 tracked:CGS:str type:CGS:u32 rate:MRP:u32 rate_lim:CLP:u32 rate_max:MMP:u32
        check_status:MOP:str check_code:MOP:u32 check_duration:MDP:u64 hrsp_1xx:MCP:u64 hrsp_2xx:MCP:u64
        hrsp_3xx:MCP:u64 hrsp_4xx:MCP:u64 hrsp_5xx:MCP:u64 hrsp_other:MCP:u64 hanafail:MCP:u64 req_rate:MRP:u32
        req_rate_max:MMP:u32 req_tot:MCP:u64 cli_abrt:MCP:u64 srv_abrt:MCP:u64 comp_in:MCP:u64 comp_out:MCP:u64
        comp_byp:MCP:u64 comp_rsp:MCP:u64 lastsess:MAP:s32 last_chk:MOP:str last_agt:MOP:str qtime:MaP:u32
        ctime:MaP:u32 rtime:MaP:u32 ttime:MaP:u32 agent_status:MGP:u32 agent_code:MGP:u32 agent_duration:MGP:u32
        check_desc:MOP:str agent_desc:MGP:u32 check_rise:CGS:u32 check_fall:CGS:u32 check_health:CGS:u32
        agent_rise:MGP:u32 agent_fall:MGP:u32 agent_health:MGP:u32 addr:CGS:str cookie:CGS:str mode:CGS:str
        algo:CGS:str conn_rate:MRP:u32 conn_rate_max:MMP:u32 conn_tot:MCP:u64 intercepted:MCP:u64 dcon:MCP:u64
        dses:MCP:u64 wrew:MCP:u64 connect:MCP:u64 reuse:MCP:u64 cache_lookups:MCP:u64 cache_hits:MCP:u64
        srv_icur:MGP:u32 src_ilim:MGP:u32 qtime_max:MMP:u32 ctime_max:MMP:u32 rtime_max:MMP:u32 ttime_max:MMP:u32
        eint:MCP:u64 idle_conn_cur:MGP:u32 safe_conn_cur:MGP:u32 used_conn_cur:MGP:u32 need_conn_est:MGP:u32
        uweight:MaP:u32 agg_server_status:MGP:u32 agg_server_check_status:MGP:u32 agg_check_status:MGP:u32
        ssl_sess:MCP:u64 ssl_reused_sess:MCP:u64 ssl_failed_handshake:MCP:u64 h2_headers_rcvd:MCP:u64
        h2_data_rcvd:MCP:u64 h2_settings_rcvd:MCP:u64 h2_rst_stream_rcvd:MCP:u64 h2_goaway_rcvd:MCP:u64
        h2_detected_conn_protocol_errors:MCP:u64 h2_detected_strm_protocol_errors:MCP:u64 h2_rst_stream_resp:MCP:u64
        h2_goaway_resp:MCP:u64 h2_open_connections:MGP:u64 h2_backend_open_streams:MGP:u64
        h2_total_connections:MCP:u64 h2_backend_total_streams:MCP:u64 h1_open_connections:MGP:u64
        h1_open_streams:MGP:u64 h1_total_connections:MCP:u64 h1_total_streams:MCP:u64 h1_bytes_in:MCP:u64
        h1_bytes_out:MCP:u64 h1_spliced_bytes_in:MCP:u64 h1_spliced_bytes_out:MCP:u64
        """

    struct Description {
        let name: String
        let tags: String
        let type: String
    }

    static let descriptions: [Description] = table.split(whereSeparator: { $0 == " " || $0 == "\n" }).map { item in
        let parts = item.split(separator: ":")
        return Description(name: String(parts[0]), tags: String(parts[1]), type: String(parts[2]))
    }

    var name: String { StatsField.descriptions[rawValue].name }

    /// Tags that differ by object type in HAProxy (a backend's `act`, `rate`, …).
    func tags(for type: StatsObjectType) -> String {
        if type == .backend {
            switch self {
            case .act, .bck, .rate, .rate_max: return "MGP"
            default: break
            }
        }
        return StatsField.descriptions[rawValue].tags
    }

    /// The first per-module field: the CSV has a `-` column before it (`-` on every row), which
    /// the positions of `typed` and `json` do not count.
    static let firstModuleField = StatsField.ssl_sess

    /// `# pxname,svname,…,agg_check_status,-,ssl_sess,…,h1_spliced_bytes_out,` (HAProxy ends
    /// every CSV line with a comma).
    static let csvHeader: String = {
        var names = descriptions.map(\.name)
        names.insert("-", at: firstModuleField.rawValue)
        return "# " + names.joined(separator: ",") + ","
    }()
}

/// HAProxy's object types (`type` column; the letter of `show stat typed`).
enum StatsObjectType: Int {
    case frontend = 0
    case backend = 1
    case server = 2

    var letter: String {
        switch self {
        case .frontend: "F"
        case .backend: "B"
        case .server: "S"
        }
    }

    var jsonName: String {
        switch self {
        case .frontend: "Frontend"
        case .backend: "Backend"
        case .server: "Server"
        }
    }
}

enum StatsValue: Equatable {
    case int(Int)
    case uint(UInt64)
    case string(String)

    var text: String {
        switch self {
        case .int(let v): String(v)
        case .uint(let v): String(v)
        case .string(let s): s
        }
    }
}

/// One row of `show stat`: a frontend, a backend or a server, with a value or nothing per field.
struct StatsRow {
    var type: StatsObjectType
    var proxyID: Int
    var serverID: Int
    var values: [StatsValue?]

    init(type: StatsObjectType, proxyID: Int, serverID: Int) {
        self.type = type
        self.proxyID = proxyID
        self.serverID = serverID
        values = [StatsValue?](repeating: nil, count: StatsField.allCases.count)
    }

    subscript(field: StatsField) -> StatsValue? {
        get { values[field.rawValue] }
        set { values[field.rawValue] = newValue }
    }

    func string(_ field: StatsField) -> String { self[field]?.text ?? "" }
}
