import ConfigModel
import Testing
@testable import Loader

/// The TCP layer's keywords (issue 13): PROXY protocol options, `tcp-request` rules, and ACLs
/// and `use_backend` in mode tcp with the layer-4 and payload fetches.
@Suite struct TCPKeywordTests {
    @Test func proxyProtocolOptions() throws {
        let config = try load("""
            frontend f
                bind 127.0.0.1:8080 accept-proxy
                bind 127.0.0.1:8081
                default_backend b
            backend b
                default-server proxy-v2-options ssl-cipher,authority
                server v1 127.0.0.1:1 send-proxy
                server v2 127.0.0.1:2 send-proxy-v2
                server ssl 127.0.0.1:3 send-proxy-v2-ssl
                server cn 127.0.0.1:4 send-proxy-v2-ssl-cn proxy-v2-options crc32c
                server none 127.0.0.1:5
                server off 127.0.0.1:6 send-proxy no-send-proxy
            """).config
        let f = try #require(config.proxy(named: "f"))
        #expect(f.binds.map(\.acceptProxy) == [true, false])
        let s = try #require(config.proxy(named: "b")).servers.map(\.options.sendProxy)
        #expect(s[0] == SendProxy(version: 1, options: [.sslCipher, .authority]))
        #expect(s[1] == SendProxy(version: 2, options: [.sslCipher, .authority]))
        #expect(s[2] == SendProxy(version: 2, options: [.ssl, .sslCipher, .authority]))
        #expect(s[3] == SendProxy(version: 2, options: [.ssl, .certCN, .sslCipher, .authority, .crc32c]))
        #expect(s[4] == nil && s[5] == nil)
    }

    @Test func proxyProtocolErrors() {
        #expect(errors("""
            backend b
                server a 127.0.0.1:1 proxy-v2-options unique-id send-proxy-v2
                server c 127.0.0.1:2 proxy-v2-options bogus send-proxy-v2
                server d 127.0.0.1:3 proxy-v2-options crc32c
            """ + minimalListen) == [
            "test.cfg:2: 'proxy-v2-options unique-id' is not supported yet (strata has ssl, cert-cn, ssl-cipher, authority or crc32c)",
            "test.cfg:3: 'proxy-v2-options': unknown option 'bogus' (expected ssl, cert-cn, ssl-cipher, authority or crc32c)",
            "test.cfg:4: 'proxy-v2-options' has no effect without 'send-proxy-v2' (on the line or its default-server)",
        ])
    }

    @Test func tcpRequestRules() throws {
        let config = try load("""
            frontend f
                mode tcp
                bind 127.0.0.1:8443
                tcp-request connection reject if { src 10.0.0.0/8 }
                tcp-request connection expect-proxy layer4 if { src 127.0.0.2 }
                tcp-request inspect-delay 5s
                tcp-request content accept if { req_ssl_hello_type 1 }
                tcp-request content reject
                acl is_api req.ssl_sni -i api.example.com
                use_backend api if is_api
                use_backend web if { req.ssl_sni -m end .example.org } || { req.payload(0,3) -m bin 160301 }
                default_backend web
            backend api
                mode tcp
                server a 127.0.0.1:1
            backend web
                mode tcp
                server w 127.0.0.1:2
            """).config
        let f = try #require(config.proxy(named: "f"))
        #expect(f.tcp.connection.map(\.action) == [.reject, .expectProxy])
        #expect(f.tcp.content.map(\.action) == [.accept, .reject])
        #expect(f.tcp.inspectDelay == 5000)
        #expect(f.http.backendRules.map(\.backend) == ["api", "web"])
        let hello = try #require(f.tcp.content[0].condition?.alternatives.first?.first?.criteria.first)
        #expect(hello.sample.fetch == .sslHello(.helloType))
        #expect(hello.patterns == .integers([.equal(1)]))
    } 

    /// `set-var`, `set-var-fmt`, `unset-var` in the three TCP rule sets, and `tcp-request content
    /// capture` in the slot after the request captures written before it.
    @Test func tcpVariableAndCaptureRules() throws {
        let loaded = try load("""
            frontend f
                mode http
                bind 127.0.0.1:8080
                capture request header Host len 10
                tcp-request session set-var(sess.client) src
                tcp-request session set-var(txn.lost) src
                tcp-request content set-var-fmt(txn.tag) "c=%[var(sess.client)]" if { src 127.0.0.1 }
                tcp-request content capture src len 15
                capture request header User-Agent len 5
                tcp-request content capture dst len 3
                tcp-request content unset-var(sess.client)
                default_backend b
            backend b
                mode http
                server s 127.0.0.1:1
            listen l
                mode tcp
                bind 127.0.0.1:8443
                tcp-response content set-var(res.first) res.payload(0,2)
                server s 127.0.0.1:1
            """)
        let f = try #require(loaded.config.proxy(named: "f"))
        #expect(f.tcp.session.map(\.action.variableName) == ["sess.client", "txn.lost"])
        guard case .setVariableFormat("txn.tag", let format) = f.tcp.content[0].action else {
            Issue.record("set-var-fmt not read: \(f.tcp.content[0].action)")
            return
        }
        #expect(format.source == "c=%[var(sess.client)]")
        #expect(f.tcp.content[0].condition != nil)
        guard case .capture(_, 15, 1) = f.tcp.content[1].action, case .capture(_, 3, 3) = f.tcp.content[2].action else {
            Issue.record("captures not read: \(f.tcp.content.map(\.action))")
            return
        }
        #expect(f.tcp.content[3].action == .unsetVariable(name: "sess.client"))
        #expect(loaded.config.proxy(named: "l")?.tcp.response.first?.action.variableName == "res.first")
        #expect(loaded.warnings.map(\.description) == [
            "test.cfg:6: 'tcp-request session set-var(txn.lost)' has no effect: a session rule runs before any transaction, so only 'sess' and 'proc' variables can be set there",
        ])
    }

    @Test func tcpVariableAndCaptureErrors() {
        #expect(errors("""
            frontend f
                mode tcp
                bind 127.0.0.1:8443
                tcp-request connection set-var(sess.x) src
                tcp-request content set-var(txn.x,ifexists) src
                tcp-request content set-var(x) src
                tcp-request content capture req.payload(0,4)
                tcp-request content capture path len 4
                tcp-request content set-var-fmt(txn.x) "%[hdr(host)]"
                tcp-request content set-var(txn.x)
                default_backend b
            backend b
                mode tcp
                tcp-response content set-var(res.x) req.len
                server s 127.0.0.1:1
            frontend h
                mode http
                bind 127.0.0.1:8080
                tcp-request content set-var(txn.x) req.payload(0,4)
                default_backend b2
            backend b2
                mode http
                server s 127.0.0.1:1
            """) == [
            "test.cfg:4: 'tcp-request connection set-var' is not supported yet",
            "test.cfg:5: 'tcp-request content set-var(txn.x,ifexists)': conditions after the variable name (ifexists, ifnotexists, …) are not supported yet",
            "test.cfg:6: 'x': a variable name starts with its scope (proc, sess, txn, req or res) and a dot",
            "test.cfg:7: 'tcp-request content capture req.payload(0,4)' expects 'len N' after the sample",
            "test.cfg:8: 'tcp-request content capture': 'path' needs the HTTP request (an http-request rule): it cannot be used in a 'tcp-request content' rule",
            "test.cfg:9: 'tcp-request content set-var-fmt(txn.x)': 'hdr' needs the HTTP request (an http-request rule): it cannot be used in a 'tcp-request content' rule",
            "test.cfg:10: 'tcp-request content set-var(txn.x)' expects a sample expression",
            "test.cfg:14: 'tcp-response content set-var(res.x)': 'req.len' needs the request's payload (a 'tcp-request content' rule): it cannot be used in a 'tcp-response content' rule",
            "test.cfg:19: 'req.payload' is not supported yet in mode http: there a 'tcp-request content' rule sees the connection's addresses and its TLS",
        ])
    }

    @Test func tcpRequestErrors() {
        #expect(errors("""
            frontend f
                mode tcp
                bind 127.0.0.1:8443
                tcp-request connection reject if { req.len gt 0 }
                tcp-request connection track-sc0 src
                tcp-request content set-var(txn.x) str(1)
                tcp-request session accept
                tcp-request content accept if { path /x }
                use_backend b if { hdr(host) x }
                tcp-request connection drop
                tcp-response content accept
                default_backend b
            backend b
                mode tcp
                tcp-request content accept
                tcp-request inspect-delay 1s
                server s 127.0.0.1:1
            frontend h
                mode http
                bind 127.0.0.1:8080
                tcp-request content reject if { req.len gt 0 }
                use_backend b2 if { req_ssl_sni x }
                default_backend b2
            backend b2
                mode http
                server s 127.0.0.1:1
            """) == [
            "test.cfg:4: '{ req.len gt 0 }' uses 'req.len', which a 'tcp-request connection' rule cannot have: it sees only the connection's addresses (src, dst, src_port, dst_port)",
            "test.cfg:5: proxy 'f': unable to find table 'f' referenced by track-sc0",
            "test.cfg:8: 'path' needs the HTTP request (an http-request rule): it cannot be used in a 'tcp-request content' rule",
            "test.cfg:9: 'hdr' needs the HTTP request (an http-request rule): it cannot be used in a 'use_backend' rule in mode tcp",
            "test.cfg:10: unknown action 'drop' for 'tcp-request connection' (expected accept, expect-proxy, reject, silent-drop, track-sc0, track-sc1, track-sc2, sc-inc-gpc0, sc-inc-gpc1, sc-set-gpt0, set-src, set-src-port, set-dst or set-dst-port)",
            "test.cfg:11: 'tcp-response' is not supported in section 'frontend' (only in defaults, listen, backend)",
            "test.cfg:15: 'tcp-request content' rules are supported in frontend and listen sections only (not yet in backend sections)",
            "test.cfg:16: 'tcp-request inspect-delay' in a backend section is not supported yet (backends have no tcp-request content rules yet)",
            "test.cfg:21: '{ req.len gt 0 }' uses 'req.len', which is not supported yet in mode http: there a 'tcp-request content' rule sees the connection's addresses and its TLS",
            "test.cfg:22: 'req_ssl_sni' needs the TCP payload (mode tcp, tcp-request content): it cannot be used in a 'use_backend' rule",
        ])
    }

    @Test func tcpResponseRules() throws {
        let config = try load("""
            defaults
                mode tcp
                tcp-response inspect-delay 2s
            listen l
                bind 127.0.0.1:8080
                tcp-response content reject if { res.payload(0,4) -m bin 2D455252 }
                tcp-response content close if { res.len gt 100 }
                tcp-response content accept if { res.ssl_hello_type 2 } || { src 10.0.0.1 }
                server s 127.0.0.1:1
            backend b
                tcp-response inspect-delay 500ms
                tcp-response content accept
                server s 127.0.0.1:1
            """).config
        let l = try #require(config.proxy(named: "l"))
        #expect(l.tcp.responseInspectDelay == 2000)
        #expect(l.tcp.response.map(\.action) == [.reject, .close, .accept])
        #expect(l.tcp.response[0].condition?.alternatives.first?.first?.criteria.first?.sample.fetch == .responsePayload(offset: 0, length: 4))
        #expect(l.tcp.response[1].condition?.alternatives.first?.first?.criteria.first?.sample.fetch == .responseLength)
        #expect(l.tcp.response[2].condition?.alternatives.first?.first?.criteria.first?.sample.fetch == .responseHelloType)
        let b = try #require(config.proxy(named: "b"))
        #expect(b.tcp.responseInspectDelay == 500)
        #expect(b.tcp.response.map(\.action) == [.accept])
    }

    @Test func tcpResponseErrors() {
        #expect(errors("""
            defaults d
                mode tcp
                tcp-response content accept
            backend b
                mode tcp
                tcp-response content silent-drop
                tcp-response content drop
                tcp-response content accept if { req.len gt 0 }
                tcp-response content accept if { path /x }
                tcp-response inspect-delay
                server s 127.0.0.1:1
            frontend f
                mode tcp
                bind 127.0.0.1:8443
                tcp-request content accept if { res.len gt 0 }
                use_backend b if { res.len gt 0 }
                default_backend b
            backend h
                mode http
                tcp-response content reject
                server s 127.0.0.1:1
            """) == [
            "test.cfg:3: 'tcp-response content' rules are supported in listen and backend sections only (not yet in defaults sections)",
            "test.cfg:6: 'tcp-response content silent-drop' is not supported yet",
            "test.cfg:7: unknown action 'drop' for 'tcp-response content' (expected accept, close, reject, set-var(NAME), set-var-fmt(NAME) or unset-var(NAME))",
            "test.cfg:8: 'req.len' needs the request's payload (a 'tcp-request content' rule): it cannot be used in a 'tcp-response content' rule",
            "test.cfg:9: 'path' needs HTTP (strata's 'tcp-response content' rules see the connection and the server's payload): it cannot be used in a 'tcp-response content' rule",
            "test.cfg:10: 'tcp-response inspect-delay' expects a time (for example 5s)",
            "test.cfg:15: 'res.len' needs the server's payload (a 'tcp-response content' rule): it cannot be used in a 'tcp-request content' rule",
            "test.cfg:16: 'res.len' needs the server's payload (a 'tcp-response content' rule): it cannot be used in a 'use_backend' rule in mode tcp",
            "test.cfg:20: 'tcp-response content' is not supported yet in mode http (strata applies it in mode tcp)",
        ])
    }

    @Test func tcpRequestSessionRules() throws {
        let config = try load("""
            frontend f
                mode tcp
                bind 127.0.0.1:8443
                stick-table type ip size 10 store sess_cnt
                tcp-request session reject if { src 127.0.0.3 } || { ssl_fc_sni -i bad.example }
                tcp-request session track-sc0 src
                tcp-request session sc-inc-gpc0(0) if { sc0_sess_cnt gt 5 }
                tcp-request session silent-drop if { src_sess_cnt gt 100 }
                tcp-request session accept
                default_backend b
            backend b
                mode tcp
                server s 127.0.0.1:1
            """).config
        let f = try #require(config.proxy(named: "f"))
        #expect(f.tcp.session.count == 5)
        #expect(f.tcp.session.first?.action == .reject)
        #expect(f.tcp.session.last?.action == .accept)
        if case .stickCounter(.track(let t)) = f.tcp.session[1].action {
            #expect(t.counter == 0 && t.key.fetch == .source)
        } else {
            Issue.record("track-sc0 not read: \(f.tcp.session[1].action)")
        }
    }

    @Test func tcpRequestSessionErrors() {
        #expect(errors("""
            frontend f
                mode tcp
                bind 127.0.0.1:8443
                tcp-request session reject if { req.len gt 0 }
                tcp-request session set-var(sess.x) req.len
                tcp-request session drop
                tcp-request session track-sc0 req.payload(0,4)
                tcp-request session accept if { path /x }
                default_backend b
            backend b
                mode tcp
                tcp-request session accept
                server s 127.0.0.1:1
            """) == [
            "test.cfg:4: '{ req.len gt 0 }' uses 'req.len', which a 'tcp-request session' rule cannot have: it sees the connection's addresses and its TLS, nothing read yet",
            "test.cfg:5: 'tcp-request session set-var(sess.x)' cannot use 'req.len' as a value: it sees the connection's addresses and its TLS, nothing read yet",
            "test.cfg:6: unknown action 'drop' for 'tcp-request session' (expected accept, reject, silent-drop, track-sc0, track-sc1, track-sc2, sc-inc-gpc0, sc-inc-gpc1, sc-set-gpt0, set-var(NAME), set-var-fmt(NAME) or unset-var(NAME))",
            "test.cfg:7: 'tcp-request session track-sc0' cannot use 'req.payload' as a key: it sees the connection's addresses and its TLS, nothing read yet",
            "test.cfg:8: '{ path /x }' uses 'path', which a 'tcp-request session' rule cannot have: it sees the connection's addresses and its TLS, nothing read yet",
            "test.cfg:12: 'tcp-request session' rules are supported in frontend and listen sections only (not yet in backend sections)",
        ])
    }
}
