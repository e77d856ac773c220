import Foundation
import Glibc
import StrataTestSupport

/// An HTTP/2 origin server (a python `h2` process): h2c with prior knowledge, or TLS with the ALPN
/// protocols given (a connection whose ALPN is not h2 gets one HTTP/1.1 answer, `h1 ok`). Each
/// stream is answered with a description of what arrived: `conn=N` (the connection's number since
/// start), `stream=ID`, `h=name: value` per field (pseudo-headers included), `body=LENGTH`,
/// `t=name: value` per trailer. Paths: `/grpc…` answers `content-type: application/grpc` without a
/// length, then trailers `grpc-status: 0`, `grpc-message: fine`; `/nolength` has no
/// content-length; `/big` adds 1 MiB; `/slow` is answered 0.5 s later (the other streams go on,
/// and `maxopen=N` says how many of the connection's streams were open at once, at most;
/// `resets=N` counts the streams strata reset);
/// `/reset` resets the stream; `/empty` is a 204. The process ends with the test process, or
/// after 120 s.
final class TestH2Origin: @unchecked Sendable {
    let port: UInt16
    private let process = Process()

    /// `tls`: (certificate, key, ALPN protocols comma-separated).
    init(tls: (certificate: String, key: String, alpn: String)? = nil) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var arguments = ["python3", "-c", TestH2Origin.script]
        if let tls { arguments += ["tls", tls.certificate, tls.key, tls.alpn] }
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The first line is the port it listens on.
        var line: [UInt8] = []
        while true {
            let byte = out.fileHandleForReading.readData(ofLength: 1)
            guard let b = byte.first else { break }
            if b == 10 { break }
            line.append(b)
        }
        guard let p = UInt16(String(decoding: line, as: UTF8.self)) else {
            process.terminate()
            throw TestH2OriginError.didNotStart
        }
        port = p
    }

    deinit {
        // SIGKILL: a signal the test process's threads block may be blocked in the child too.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    enum TestH2OriginError: Error { case didNotStart }

    static let script = #"""
import select, socket, ssl, sys, threading, os, time
import h2.connection, h2.config, h2.events, h2.exceptions

mode = sys.argv[1] if len(sys.argv) > 1 else 'clear'
ctx = None
if mode == 'tls':
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    ctx.set_alpn_protocols([a for a in sys.argv[4].split(',')])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(('127.0.0.1', 0))
ls.listen(64)
print(ls.getsockname()[1], flush=True)
parent = os.getppid()
def watchdog():
    start = time.time()
    while time.time() - start < 120 and os.getppid() == parent:
        time.sleep(0.2)
    os._exit(0)
threading.Thread(target=watchdog, daemon=True).start()
lock = threading.Lock()
count = [0]

def serve(sock, n):
    try:
        if ctx:
            sock = ctx.wrap_socket(sock, server_side=True)
            if sock.selected_alpn_protocol() != 'h2':
                sock.sendall(b'HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nh1 ok\n')
                time.sleep(0.5)
                return
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False, header_encoding='utf-8'))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        reqs = {}
        pending = {}
        slow = []
        state = {'open': 0, 'max': 0, 'resets': 0}
        def pump():
            for sid in list(pending):
                data, trailers = pending[sid]
                while data:
                    room = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                    if room <= 0:
                        break
                    conn.send_data(sid, data[:room])
                    data = data[room:]
                if data:
                    pending[sid] = (data, trailers)
                    continue
                del pending[sid]
                if trailers:
                    conn.send_headers(sid, trailers, end_stream=True)
                else:
                    conn.end_stream(sid)
        def respond(sid, r):
            h = dict(r['headers'])
            path = h.get(':path', '')
            if path.startswith('/slow') and 'due' not in r:
                # Answered later by the loop: the connection's other streams go on meanwhile.
                r['due'] = time.time() + 0.5
                slow.append((sid, r))
                return
            state['open'] -= 1
            lines = ['conn=%d' % n, 'stream=%d' % sid, 'maxopen=%d' % state['max'], 'resets=%d' % state['resets']]
            lines += ['h=%s: %s' % (k, v) for k, v in r['headers']]
            lines.append('body=%d' % len(r['body']))
            lines.append('bodytext=%s' % r['body'][:64].decode('latin-1'))
            lines += ['t=%s: %s' % (k, v) for k, v in r['trailers']]
            body = ('\n'.join(lines) + '\n').encode()
            trailers = None
            headers = [(':status', '200'), ('x-origin', 'h2')]
            if path.startswith('/grpc'):
                headers.append(('content-type', 'application/grpc'))
                trailers = [('grpc-status', '0'), ('grpc-message', 'fine')]
            elif path.startswith('/big'):
                body += b'x' * (1 << 20)
                headers.append(('content-length', str(len(body))))
            elif path.startswith('/nolength'):
                pass
            elif path.startswith('/reset'):
                conn.reset_stream(sid, error_code=2)
                return
            else:
                headers.append(('content-length', str(len(body))))
            if path.startswith('/empty'):
                conn.send_headers(sid, [(':status', '204')], end_stream=True)
                return
            conn.send_headers(sid, headers)
            pending[sid] = (body, trailers)
        while True:
            now = time.time()
            for item in [x for x in slow if x[1]['due'] <= now]:
                slow.remove(item)
                respond(item[0], item[1])
            pump()
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
            ready, _, _ = select.select([sock], [], [], 0.05)
            if not ready and not (ctx and sock.pending()):
                continue
            data = sock.recv(65536)
            if not data:
                break
            try:
                events = conn.receive_data(data)
            except h2.exceptions.ProtocolError as e:
                print('protocol error', e, file=sys.stderr, flush=True)
                sock.sendall(conn.data_to_send())
                break
            for ev in events:
                if isinstance(ev, h2.events.RequestReceived):
                    reqs[ev.stream_id] = {'headers': ev.headers, 'body': b'', 'trailers': []}
                    state['open'] += 1
                    state['max'] = max(state['max'], state['open'])
                    if ev.stream_ended:
                        respond(ev.stream_id, reqs.pop(ev.stream_id))
                elif isinstance(ev, h2.events.DataReceived):
                    if ev.stream_id in reqs:
                        reqs[ev.stream_id]['body'] += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.TrailersReceived):
                    if ev.stream_id in reqs:
                        reqs[ev.stream_id]['trailers'] = ev.headers
                elif isinstance(ev, h2.events.StreamEnded):
                    if ev.stream_id in reqs:
                        respond(ev.stream_id, reqs.pop(ev.stream_id))
                elif isinstance(ev, h2.events.StreamReset):
                    state['resets'] += 1
                    state['open'] -= 1
                    reqs.pop(ev.stream_id, None)
                    pending.pop(ev.stream_id, None)
                    for item in [x for x in slow if x[0] == ev.stream_id]:
                        slow.remove(item)
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    pass
    except (OSError, ssl.SSLError) as e:
        pass
    finally:
        sock.close()

while True:
    c, _ = ls.accept()
    with lock:
        count[0] += 1
        n = count[0]
    threading.Thread(target=serve, args=(c, n), daemon=True).start()
"""#
}
