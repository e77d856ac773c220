#!/usr/bin/env bash
# Health state across reloads: strata beside HAProxy master-worker (-W, SIGUSR2 to the master;
# nbthread 1), without and with server-state-file, under the same load, in one run. Three nginx
# servers behind each proxy, checked with `option httpchk GET /health` every INTER; the third
# answers its checks 503 (and would answer traffic 200). Each proxy runs alone: started, s3 seen
# DOWN on its admin socket, then wrk -t1 -c50 for RELOADS/RATE + 4 seconds while it reloads RELOADS
# times at RATE per second (HAProxy with server-state-file: `show servers state` written to the
# file before each SIGUSR2, the operator's dance). nginx's access logs count, per server, the
# requests and the check probes. One line per figure:
#   1. requests that reached the failing server, from the first reload to the end of the load
#      (target 0), of all the requests wrk made
#   2. check probes per server per second during the reloads (target 1/INTER), the mean of the
#      three servers and each one
# Usage: bench/health.sh
#   RELOADS=100 RATE=10 INTER=1s: the counts and the check interval
#   STRATA=/path/to/strata: use this binary instead of building with `swift build -c release`
source "$(dirname "$0")/lib.sh"
RELOADS=${RELOADS:-100}
RATE=${RATE:-10}
INTER=${INTER:-1s}
need haproxy nginx wrk
ulimit -n 65536 2>/dev/null || true
build_strata

cat > "$WORK/tool.py" <<'PY'
import os, signal, socket, sys, time

def ask(path, command):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    s.sendall(command.encode() + b"\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        if data.endswith(b"\n\n"):
            break
    s.close()
    return data.decode(errors="replace")

def op_state(path, server):
    for line in ask(path, "show servers state be").splitlines():
        f = line.split()
        if len(f) >= 20 and not line.startswith("#") and f[3] == server:
            return int(f[5])
    return None

cmd = sys.argv[1]
if cmd == "wait-down":  # wait-down SOCKET SERVER: until the server's operational state is 0
    path, server = sys.argv[2], sys.argv[3]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if op_state(path, server) == 0:
                sys.exit(0)
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit("%s never went DOWN on %s" % (server, path))
elif cmd == "paced":  # paced COUNT RATE strata SOCKET | haproxy PID | haproxy-state PID SOCKET STATEFILE
    count, rate, how = int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    start, refused = time.monotonic(), 0
    for k in range(count):
        delay = start + k / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if how == "strata":
            refused += not ask(sys.argv[5], "reload").startswith("Success=1")
        else:
            if how == "haproxy-state":
                try:
                    dump = ask(sys.argv[6], "show servers state")
                    tmp = sys.argv[7] + ".tmp"
                    open(tmp, "w").write(dump)
                    os.rename(tmp, sys.argv[7])
                except OSError as e:
                    print("# state dump failed: %s" % e, file=sys.stderr)
            os.kill(int(sys.argv[5]), signal.SIGUSR2)
    if refused:
        print("# %d of %d strata reloads did not succeed" % (refused, count), file=sys.stderr)
elif cmd == "counts":  # counts LOGDIR: "traffic_s3 probes_s1 probes_s2 probes_s3"
    out = []
    for name in ("s1", "s2", "s3"):
        traffic = probes = 0
        try:
            with open(os.path.join(sys.argv[2], name + ".log"), "rb") as f:
                for line in f:
                    if line.startswith(b"/health"):
                        probes += 1
                    else:
                        traffic += 1
        except FileNotFoundError:
            pass
        out.append((traffic, probes))
    print(out[2][0], out[0][1], out[1][1], out[2][1])
elif cmd == "rates":  # rates SECONDS P1 P2 P3 (probe counts): "mean s1 s2 s3" per second
    secs = float(sys.argv[2])
    r = [int(x) / secs for x in sys.argv[3:6]]
    print("%.2f %.2f %.2f %.2f" % (sum(r) / 3, r[0], r[1], r[2]))
elif cmd == "now":
    print("%.3f" % time.monotonic())
elif cmd == "wrk-total":  # wrk-total FILE
    import re
    out = open(sys.argv[2]).read()
    m = re.search(r"(\d+) requests in", out)
    print(m.group(1) if m else 0)
PY
tool() { python3 "$WORK/tool.py" "$@"; }

# Three nginx servers (one process): each logs the URI of every request to its own file; s3's
# /health answers 503.
mkdir -p "$WORK/nginx/logs"
P1=$(free_port); P2=$(free_port); P3=$(free_port)
cat > "$WORK/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log;
events { worker_connections 4096; }
http {
    log_format uri '\$request_uri';
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    server { listen 127.0.0.1:$P1; access_log $WORK/nginx/logs/s1.log uri; location / { return 200 "s1\n"; } }
    server { listen 127.0.0.1:$P2; access_log $WORK/nginx/logs/s2.log uri; location / { return 200 "s2\n"; } }
    server { listen 127.0.0.1:$P3; access_log $WORK/nginx/logs/s3.log uri;
             location = /health { return 503 "down\n"; } location / { return 200 "s3\n"; } }
}
NGINX
"$(command -v nginx || echo /usr/sbin/nginx)" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
wait_port "$P1"; wait_port "$P2"; wait_port "$P3"

# config WHO PORT SOCKET: the same configuration for every proxy (WHO haproxy-state adds the file).
config() {
    local who=$1 port=$2 sock=$3
    echo "global"
    echo "    maxconn 4000"
    echo "    stats socket $sock level admin"
    [ "$who" = strata ] || echo "    nbthread $THREADS"
    [ "$who" = haproxy-state ] && echo "    server-state-file $WORK/haproxy.state"
    cat <<CFG
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
CFG
    [ "$who" = haproxy-state ] && echo "    load-server-state-from-file global"
    cat <<CFG
frontend fe
    bind 127.0.0.1:$port
    default_backend be
backend be
    option httpchk GET /health
    http-check expect status 200
    default-server check inter $INTER rise 2 fall 2
    server s1 127.0.0.1:$P1
    server s2 127.0.0.1:$P2
    server s3 127.0.0.1:$P3
CFG
}

# run WHO -> "requests_to_s3 wrk_total seconds probes_s1 probes_s2 probes_s3"
run() {
    local who=$1 port sock pid wrk_pid t0 t1
    port=$(free_port)
    sock=$WORK/$who.sock
    config "$who" "$port" "$sock" > "$WORK/$who.cfg"
    rm -f "$WORK/haproxy.state"
    if [ "$who" = strata ]; then
        threads_cfg "$WORK/$who.cfg"
        "$STRATA" -f "$WORK/$who.cfg" >>"$WORK/strata.log" 2>&1 &
    else
        haproxy -W -db -f "$WORK/$who.cfg" >>"$WORK/$who.log" 2>&1 &
    fi
    pid=$!; PIDS+=($pid)
    wait_port "$port"
    tool wait-down "$sock" s3
    wrk -t1 -c50 -d"$((RELOADS / RATE + 4))s" "http://127.0.0.1:$port/" > "$WORK/wrk-$who.out" 2>&1 &
    wrk_pid=$!
    sleep 2
    read -r a3 a1p a2p a3p < <(tool counts "$WORK/nginx/logs")
    t0=$(tool now)
    case $who in
        strata) tool paced "$RELOADS" "$RATE" strata "$sock" ;;
        haproxy) tool paced "$RELOADS" "$RATE" haproxy "$pid" ;;
        haproxy-state) tool paced "$RELOADS" "$RATE" haproxy-state "$pid" "$sock" "$WORK/haproxy.state" ;;
    esac
    t1=$(tool now)
    read -r b3 b1p b2p b3p < <(tool counts "$WORK/nginx/logs")
    wait "$wrk_pid" || true
    read -r c3 _ < <(tool counts "$WORK/nginx/logs")
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
    echo "$((c3 - a3)) $(tool wrk-total "$WORK/wrk-$who.out") $(python3 -c "print(f'{$t1 - $t0:.3f}')") $((b1p - a1p)) $((b2p - a2p)) $((b3p - a3p))"
}

echo "# $RELOADS reloads at $RATE/s under wrk, strata, haproxy, haproxy with server-state-file (about $((3 * (RELOADS / RATE + 8))) s)" >&2
read -r s_s3 s_total s_secs s_p1 s_p2 s_p3 < <(run strata)
read -r h_s3 h_total h_secs h_p1 h_p2 h_p3 < <(run haproxy)
read -r f_s3 f_total f_secs f_p1 f_p2 f_p3 < <(run haproxy-state)
read -r s_rate s_r1 s_r2 s_r3 < <(tool rates "$s_secs" "$s_p1" "$s_p2" "$s_p3")
read -r h_rate h_r1 h_r2 h_r3 < <(tool rates "$h_secs" "$h_p1" "$h_p2" "$h_p3")
read -r f_rate f_r1 f_r2 f_r3 < <(tool rates "$f_secs" "$f_p1" "$f_p2" "$f_p3")
target=$(python3 -c "
t='$INTER'; u={'ms':0.001,'s':1,'m':60}
n=t.rstrip('mshd'); unit=t[len(n):] or 'ms'
print(f'{1/(float(n)*u[unit]):.2f}')")

echo "health.sh: $(nproc) cores, $(haproxy -v | head -1 | awk '{print "haproxy", $3}'), $RELOADS reloads at $RATE/s under wrk -t1 -c50, inter $INTER, 1 of 3 servers failing its checks"
printf '%-44s strata %7s  haproxy %7s  haproxy+state-file %7s  of %s, %s and %s requests (target 0)\n' \
    "requests that reached the failing server" "$s_s3" "$h_s3" "$f_s3" "$s_total" "$h_total" "$f_total"
printf '%-44s strata %7s  haproxy %7s  haproxy+state-file %7s  (target %s; s1/s2/s3: %s/%s/%s, %s/%s/%s, %s/%s/%s)\n' \
    "check probes per server per second, reloads" "$s_rate" "$h_rate" "$f_rate" "$target" \
    "$s_r1" "$s_r2" "$s_r3" "$h_r1" "$h_r2" "$h_r3" "$f_r1" "$f_r2" "$f_r3"
