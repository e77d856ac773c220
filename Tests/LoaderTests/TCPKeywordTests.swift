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
            "test.cfg:6: unknown action 'set-var(txn.x)' for 'tcp-request content' (expected accept, reject, silent-drop, track-sc0, track-sc1, track-sc2, sc-inc-gpc0, sc-inc-gpc1 or sc-set-gpt0)",
            "test.cfg:7: 'tcp-request session' is not supported yet",
            "test.cfg:8: 'path' needs the HTTP request (an http-request rule): it cannot be used in a 'tcp-request content' rule",
            "test.cfg:9: 'hdr' needs the HTTP request (an http-request rule): it cannot be used in a 'use_backend' rule in mode tcp",
            "test.cfg:10: unknown action 'drop' for 'tcp-request connection' (expected accept, expect-proxy, reject, silent-drop, track-sc0, track-sc1, track-sc2, sc-inc-gpc0, sc-inc-gpc1 or sc-set-gpt0)",
            "test.cfg:11: 'tcp-response' is not supported in section 'frontend' (only in defaults, listen, backend)",
            "test.cfg:15: 'tcp-request content' rules are supported in frontend and listen sections only (not yet in backend sections)",
            "test.cfg:16: 'tcp-request inspect-delay' in a backend section is not supported yet (backends have no tcp-request content rules yet)",
            "test.cfg:21: '{ req.len gt 0 }' uses 'req.len', which is not supported yet in mode http: there a 'tcp-request content' rule sees the connection's addresses and its TLS",
            "test.cfg:22: 'req_ssl_sni' needs the TCP payload (mode tcp, tcp-request content): it cannot be used in a 'use_backend' rule",
        ])
    }
}
