import ConfigModel
import Testing
@testable import Loader

/// Stick tables (issue 13): `stick-table`, the stick-counter actions, fetches and converters,
/// and `peers` sections, with HAProxy's semantics and `file:line` on what is refused.
@Suite struct StickTableKeywordTests {
    @Test func tablesTracksFetchesAndConverters() throws {
        let config = try load("""
            frontend f
                mode http
                bind 127.0.0.1:8080
                stick-table type ip size 100k expire 30s store http_req_rate(10s),conn_cur,gpc0,gpt0
                http-request track-sc0 src
                http-request track-sc1 hdr(x-user) table users
                http-request sc-inc-gpc0(0) if { path /login }
                http-request sc-set-gpt0(1) 7
                http-request deny deny_status 429 if { sc_http_req_rate(0) gt 10 } || { sc0_conn_cur ge 3 }
                acl abuser src_get_gpc0(users) gt 5
                http-request deny if abuser { src,table_http_req_rate(f) gt 100 }
                default_backend users
            backend users
                mode http
                stick-table type string len 64 size 1000 nopurge store gpc0,bytes_out_rate(1m),http_req_cnt
                server s 127.0.0.1:1
            listen t
                mode tcp
                bind 127.0.0.1:8081
                stick-table type ipv6 size 10 store conn_cur,conn_rate(3s)
                tcp-request connection track-sc2 src
                tcp-request connection reject if { sc2_conn_cur gt 2 }
                tcp-request content track-sc0 src table users
                server s 127.0.0.1:1
            """).config
        let f = try #require(config.proxy(named: "f")?.stickTable)
        #expect(f.type == .ip && f.keyLength == 4 && f.size == 102_400 && f.expire == 30_000 && !f.noPurge)
        #expect(f.store == [StickDataItem(.gpt0), StickDataItem(.gpc0), StickDataItem(.connCurrent),
                            StickDataItem(.httpRequestRate, period: 10_000)])
        let users = try #require(config.proxy(named: "users")?.stickTable)
        #expect(users.type == .string && users.keyLength == 64 && users.noPurge && users.expire == nil)
        #expect(try #require(config.proxy(named: "t")?.stickTable).keyLength == 16)
        let rules = try #require(config.proxy(named: "f")).http.requestRules
        guard case .stickCounter(.track(let t0)) = rules[0].action, case .stickCounter(.track(let t1)) = rules[1].action else {
            Issue.record("track-sc0/1 not read: \(rules.map(\.action))")
            return
        }
        #expect(t0.counter == 0 && t0.table == "f" && t0.key.fetch == .source)
        #expect(t1.counter == 1 && t1.table == "users")
        #expect(rules[2].action == .stickCounter(.incrementGPC(gpc: 0, counter: 0)))
        #expect(rules[3].action == .stickCounter(.setGPT0(counter: 1, value: .integer(7))))
        let rate = try #require(rules[4].condition?.alternatives.first?.first?.criteria.first)
        #expect(rate.sample.fetch == .stickCounter(StickFetch(source: .tracked(counter: 0, table: nil),
                                                              kind: .value(.httpRequestRate, kilobytes: false))))
        let acl = try #require(config.proxy(named: "f")?.http.acls.first?.criteria.first)
        #expect(acl.sample.fetch == .stickCounter(StickFetch(source: .source(table: "users"), kind: .value(.gpc0, kilobytes: false))))
        let converted = try #require(rules[5].condition?.alternatives.first?.last?.criteria.first)
        #expect(converted.sample.converters == [.table(.value(.httpRequestRate, kilobytes: false), table: "f")])
        let tcp = try #require(config.proxy(named: "t")).tcp
        #expect(tcp.connection.first?.action == .stickCounter(.track(StickTrack(counter: 2, key: SampleExpression(fetch: .source, converters: []), table: "t"))))
    }

    @Test func tableErrorsNameTheLine() {
        #expect(errors("""
            frontend f
                mode http
                bind 127.0.0.1:8080
                stick-table type foo size 1
                default_backend b
            backend b
                mode http
                stick-table type ip
                server s 127.0.0.1:1
            backend c
                stick-table type ip size 1 store http_req_rate
            backend d
                stick-table type ip size 1 store bogus
            backend e
                stick-table type string len 0 size 1
            backend g
                stick-table type ip size 1 store conn_cur,conn_cur
            backend h
                stick-table type ip size 1 expire soon
            backend i
                stick-table type ip size 1
                stick-table type ip size 2
            backend j
                stick on src
                stick store-response req.hdr(x-user)
                stick off src
            """) == [
            "test.cfg:4: stick-table: unknown type 'foo' (expected ip, ipv6, integer, string or binary)",
            "test.cfg:8: stick-table: missing size",
            "test.cfg:11: stick-table: missing argument to store option 'http_req_rate' (a period: http_req_rate(10s))",
            "test.cfg:13: stick-table: unknown store option 'bogus'",
            "test.cfg:15: stick-table: 'len' expects a key length from 1 to 65535, got '0'",
            "test.cfg:17: stick-table: store option 'conn_cur' appears twice",
            "test.cfg:19: stick-table: 'expire' expects a time, got 'soon' (not a number)",
            "test.cfg:22: stick-table: only one table per proxy is allowed (one was declared at test.cfg:21)",
            "test.cfg:24: proxy 'j': unable to find table 'j' referenced by a 'stick on' rule",
            "test.cfg:25: 'stick store-response': 'req.hdr' needs the HTTP request headers: it cannot be used in a 'stick store-response' rule",
            "test.cfg:26: 'stick' expects on, match, store-request or store-response, got 'off'",
        ])
    }

    @Test func stickStoreResponseReadsTheAnswerInModeHTTP() throws {
        let loaded = try load("""
            backend web
                mode http
                stick-table type string len 16 size 10
                stick match req.hdr(x-session)
                stick store-response res.hdr(x-session) if { status 200 }
                server s 127.0.0.1:1
            """)
        let web = loaded.config.proxies[0]
        #expect(web.stickRules.map(\.kind) == [.match, .storeResponse])
        #expect(web.stickRules[1].storesResponse && !web.stickRules[1].stores && !web.stickRules[1].matches)
        // A table stick rules use stores server_id (HAProxy adds it).
        #expect(web.stickTable?.stores(.serverID) == true)
        #expect(errors("""
            listen t
                mode tcp
                bind 127.0.0.1:8081
                stick-table type ip size 1
                stick store-response src
                server s 127.0.0.1:1
            """) == ["test.cfg:5: 'stick store-response' is not supported yet in mode tcp (strata reads the key from HTTP answers only)"])
    }

    @Test func trackingErrorsNameTheLine() {
        #expect(errors("""
            frontend f
                mode http
                bind 127.0.0.1:8080
                http-request track-sc0 src
                http-request track-sc1 src table nope
                http-request sc-inc-gpc0(3)
                http-request deny if { src_conn_cur gt 1 }
                http-request deny if { sc_http_req_rate(4) gt 1 }
                http-request sc-set-gpt0(0)
                tcp-request connection track-sc0 hdr(host) table b
                http-request sc-inc-gpc(0,1)
                default_backend b
            backend b
                mode http
                stick-table type ip size 1 peers nowhere
                server s 127.0.0.1:1
            """) == [
            "test.cfg:4: proxy 'f': unable to find table 'f' referenced by track-sc0",
            "test.cfg:5: proxy 'f': unable to find table 'nope' referenced by track-sc1",
            "test.cfg:6: 'http-request sc-inc-gpc0(3)': invalid stick table track ID '3'. The max allowed ID is 2.",
            "test.cfg:7: proxy 'f': unable to find table 'f' referenced by 'src_conn_cur'",
            "test.cfg:8: anonymous ACL: fetch 'sc_http_req_rate' expects a stick counter number from 0 to 2 and an optional table: sc_http_req_rate(0[,TABLE])",
            "test.cfg:9: 'http-request sc-set-gpt0(0)' expects a value (an integer or a sample expression)",
            "test.cfg:10: 'tcp-request connection track-sc0' cannot use 'hdr' as a key: it sees only the connection's addresses (src, dst, src_port, dst_port)",
            "test.cfg:11: 'http-request sc-inc-gpc(0,1)' is not supported yet (strata has sc-inc-gpc0, sc-inc-gpc1 and sc-set-gpt0)",
            "test.cfg:15: stick-table: unknown peers section 'nowhere'",
        ])
    }

    @Test func tableConvertersInActionValuesNameTheirTable() {
        // HAProxy resolves a converter's table wherever the expression is: a log-format string's
        // `%[…]` and a set-var expression as much as an ACL.
        #expect(errors("""
            frontend f
                mode http
                bind 127.0.0.1:8080
                http-request set-header X-Rate %[src,table_http_req_rate(missing)]
                http-request set-var(txn.n) src,table_conn_cnt(missing2)
                http-request return status 200 content-type text/plain lf-string "%[src,table_gpc0(missing3)]"
                http-request redirect location /%[src,table_gpc0(missing4)]
                http-response add-header X-Rate %[src,table_http_req_rate(missing5)]
                http-after-response set-header X-Rate %[src,table_http_req_rate(missing6)]
                use_backend %[src,table_gpc0(missing7)]
                redirect prefix /%[src,table_gpc0(missing8)]
                http-request set-header X-Known %[src,table_http_req_rate(b)]
                default_backend b
            backend b
                mode http
                stick-table type ip size 1 store http_req_rate(10s),gpc0
                server s 127.0.0.1:1
            """) == [
            "test.cfg:4: proxy 'f': unable to find table 'missing' referenced by an 'http-request' rule",
            "test.cfg:5: proxy 'f': unable to find table 'missing2' referenced by an 'http-request' rule",
            "test.cfg:6: proxy 'f': unable to find table 'missing3' referenced by an 'http-request' rule",
            "test.cfg:7: proxy 'f': unable to find table 'missing4' referenced by an 'http-request' rule",
            "test.cfg:8: proxy 'f': unable to find table 'missing5' referenced by an 'http-response' rule",
            "test.cfg:9: proxy 'f': unable to find table 'missing6' referenced by an 'http-after-response' rule",
            "test.cfg:10: proxy 'f': unable to find table 'missing7' referenced by 'use_backend'",
            "test.cfg:11: proxy 'f': unable to find table 'missing8' referenced by 'redirect'",
        ])
    }

    @Test func peersOfThisHostAreAcceptedWithAWarningRemoteOnesRefused() throws {
        let loaded = try load("""
            global
                localpeer me
            peers local
                peer me 127.0.0.1:10000
            backend b
                stick-table type ip size 10 peers local
            """ + minimalListen)
        #expect(loaded.warnings.map(\.description) == [
            "test.cfg:3: peers section 'local' is accepted and does nothing: strata keeps stick tables across reloads by itself, in its one process",
        ])
        #expect(errors("""
            global
                localpeer me
            peers mesh
                peer me 127.0.0.1:10000
                peer other 10.0.0.2:10000
                table t type ip size 1
            """ + minimalListen) == [
            "test.cfg:5: peers section 'mesh': peer 'other' is a remote peer, which is not supported: strata does not synchronise stick tables between machines yet (only this host's own peer is accepted: the one named after the host name, or after 'localpeer' in the global section or -L)",
            "test.cfg:6: 'table' in a peers section is not supported yet (declare the table with 'stick-table' in a backend)",
        ])
    }
}
