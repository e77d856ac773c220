/// HTTP/2 client connections' counters, process-wide (every loop's summed), named `strata_h2_*`
/// after HAProxy's h2 statistics (`h2_headers_rcvd`, `h2_rst_stream_resp`, …), with the limits
/// strata holds connections to as one family labelled `limit`.
extension Engine {
    static let h2Families: [(name: StaticString, kind: PrometheusWriter.Kind, help: StaticString, field: H2Counters.Field)] = [
        ("strata_h2_open_connections", .gauge, "HTTP/2 client connections open now", .openConnections),
        ("strata_h2_connections_total", .counter, "HTTP/2 client connections since start", .totalConnections),
        ("strata_h2_open_streams", .gauge, "HTTP/2 streams open now", .openStreams),
        ("strata_h2_streams_total", .counter, "HTTP/2 streams since start", .streamsOpened),
        ("strata_h2_headers_rcvd_total", .counter, "HEADERS frames received", .headersReceived),
        ("strata_h2_data_rcvd_total", .counter, "DATA frames received", .dataReceived),
        ("strata_h2_settings_rcvd_total", .counter, "SETTINGS frames received", .settingsReceived),
        ("strata_h2_rst_stream_rcvd_total", .counter, "RST_STREAM frames received", .resetsReceived),
        ("strata_h2_goaway_rcvd_total", .counter, "GOAWAY frames received", .goawaysReceived),
        ("strata_h2_rst_stream_resp_total", .counter, "RST_STREAM frames sent", .resetsSent),
        ("strata_h2_goaway_resp_total", .counter, "GOAWAY frames sent", .goawaysSent),
        ("strata_h2_detected_conn_protocol_errors_total", .counter, "Connection-level protocol errors detected", .protocolErrors),
        ("strata_h2_detected_strm_protocol_errors_total", .counter, "Invalid frames received on streams", .streamErrors),
        ("strata_h2_server_open_connections", .gauge, "HTTP/2 connections to servers open now", .serverOpenConnections),
        ("strata_h2_server_connections_total", .counter, "HTTP/2 connections to servers since start", .serverConnectionsOpened),
        ("strata_h2_server_streams_total", .counter, "Streams sent to HTTP/2 servers since start", .serverStreamsOpened),
        ("strata_h2_server_goaway_rcvd_total", .counter, "GOAWAY frames received from servers", .serverGoawaysReceived),
        ("strata_h2_server_protocol_errors_total", .counter, "HTTP/2 connections to servers closed on a protocol error", .serverProtocolErrors),
        ("strata_h2_server_alpn_http1_total", .counter, "Servers offered h2 by ALPN that chose HTTP/1.1", .serverALPNChoseHTTP1),
    ]

    static let h2Limits: [(label: StaticString, field: H2Counters.Field)] = [
        ("rapid_reset", .rapidResets), ("control_flood", .floods), ("header_list", .oversizedHeaders), ("timeout", .timeouts),
    ]

    /// Every loop's value of `field`, added up.
    func h2Total(_ field: H2Counters.Field) -> Int {
        workers.reduce(0) { $0 &+ $1.h2Counters[field] }
    }

    func writeHTTP2(_ w: inout PrometheusWriter) {
        for family in Engine.h2Families {
            w.family(family.name, family.kind, family.help)
            w.append(family.name); w.append(" "); w.int(h2Total(family.field)); w.end()
        }
        w.family("strata_h2_limit_exceeded_total", .counter, "HTTP/2 connections or streams ended by a limit")
        for limit in Engine.h2Limits {
            w.append("strata_h2_limit_exceeded_total{limit=\""); w.append(limit.label); w.append("\"} ")
            w.int(h2Total(limit.field)); w.end()
        }
    }
}
