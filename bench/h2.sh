#!/usr/bin/env bash
# HTTP/2 to clients, strata beside HAProxy (Debian's package, the same certificate, nbthread
# $THREADS for both), in one run, alternating A B A B, nginx (HTTP/1.1, keep-alive) behind both:
#   h2load -c 10 -m 10 over TLS (ALPN h2) for DURATION seconds -> requests/s and proxy CPU µs per
#   request (utime+stime from /proc), and the same over h2c (prior knowledge)
#   HTTP/2 to the server: nginx with h2c (`server … proto h2`) behind an HTTP/1.1 listener
#   (wrk -t1 -c10: h2load's HTTP/1 parser refuses HAProxy's empty reason phrase) and an h2c one
#   (h2load -c 10 -m 10) -> requests/s and CPU µs per request
#   failed streams while RELOADS reloads happen at 10/s under h2load over TLS: strata's `reload`
#   on its admin socket, HAProxy master-worker's SIGUSR2
# One line per figure: strata, HAProxy, the ratio (medians over the rounds).
# Usage: bench/h2.sh [seconds per run, default 10] [rounds, default 3] [reloads, default 200]
#   THREADS=N (both proxies), STRATA=/path/to/strata: this binary, no swift build
source "$(dirname "$0")/lib.sh"
DURATION=${1:-10}
ROUNDS=${2:-3}
RELOADS=${3:-200}
need haproxy nginx wrk
command -v h2load >/dev/null || {
    echo "# installing nghttp2-client" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client >&2
}
ulimit -n 65536 2>/dev/null || true
build_strata

openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=bench.test \
    -addext subjectAltName=DNS:bench.test -keyout "$WORK/key.pem" -out "$WORK/crt.pem" 2>/dev/null
cat "$WORK/crt.pem" "$WORK/key.pem" > "$WORK/bench.pem"
NGINX_PORT=$(free_port)
start_nginx "$NGINX_PORT"
# A second nginx speaking h2c (prior knowledge) for the HTTP/2-to-server figures.
NGINX_H2_PORT=$(free_port)
mkdir -p "$WORK/nginx-h2/logs"
cat > "$WORK/nginx-h2/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/nginx-h2/nginx.pid;
error_log $WORK/nginx-h2/logs/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    http2_max_concurrent_streams 256;
    server {
        listen 127.0.0.1:$NGINX_H2_PORT http2;
        location = / { return 200 "ok\n"; }
    }
}
NGINX
"$(command -v nginx || echo /usr/sbin/nginx)" -p "$WORK/nginx-h2" -c "$WORK/nginx-h2/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
wait_port "$NGINX_H2_PORT"

# config TLS_PORT H2C_PORT SOCKET [H1_TO_H2 H2C_TO_H2]: the same configuration for both proxies.
config() {
    cat <<CFG
global
    maxconn 4000
    nbthread $THREADS
    stats socket $3 level admin
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
frontend fe
    bind 127.0.0.1:$1 ssl crt $WORK/bench.pem alpn h2,http/1.1
    bind 127.0.0.1:$2 proto h2
    default_backend be
backend be
    server nginx 127.0.0.1:$NGINX_PORT
CFG
    [ -n "${4:-}" ] && cat <<CFG
frontend to_h2
    bind 127.0.0.1:$4
    bind 127.0.0.1:$5 proto h2
    default_backend h2
backend h2
    server nginx 127.0.0.1:$NGINX_H2_PORT proto h2
CFG
    return 0
}

S_TLS=$(free_port); S_H2C=$(free_port); H_TLS=$(free_port); H_H2C=$(free_port)
S_H1S=$(free_port); S_H2S=$(free_port); H_H1S=$(free_port); H_H2S=$(free_port)
config "$S_TLS" "$S_H2C" "$WORK/s.sock" "$S_H1S" "$S_H2S" > "$WORK/strata.cfg"
config "$H_TLS" "$H_H2C" "$WORK/h.sock" "$H_H1S" "$H_H2S" > "$WORK/haproxy.cfg"
"$STRATA" -f "$WORK/strata.cfg" 2>>"$WORK/strata.log" & S_PID=$!; PIDS+=("$S_PID")
haproxy -db -f "$WORK/haproxy.cfg" 2>>"$WORK/haproxy.log" & H_PID=$!; PIDS+=("$H_PID")
wait_port "$S_TLS"; wait_port "$H_TLS"
for url in "https://127.0.0.1:$S_TLS/" "https://127.0.0.1:$H_TLS/"; do
    [ "$(curl -sk --http2 -o /dev/null -w '%{http_version}' "$url")" = 2 ] || { echo "$url does not answer over h2" >&2; exit 1; }
done
for url in "http://127.0.0.1:$S_H1S/" "http://127.0.0.1:$H_H1S/"; do
    [ "$(curl -s "$url")" = ok ] || { echo "$url does not answer from the h2c server" >&2; exit 1; }
done

# run_h2load URL PID: "requests/s cpu_us/request failed"
run_h2load() {
    local url=$1 pid=$2 before after out
    before=$(cpu_ticks "$pid")
    out=$(h2load -c 10 -m 10 -D "$DURATION" "$url" 2>&1)
    after=$(cpu_ticks "$pid")
    python3 - "$out" "$((after - before))" "$(clk_tck)" <<'PY'
import re, sys
out, ticks, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out)
done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed", out)
rps = float(m.group(3))
succeeded, failed = int(done.group(2)), int(done.group(3))
print(f"{rps:.0f} {ticks * 1e6 / hz / max(succeeded, 1):.2f} {failed}")
PY
}

# run_wrk URL PID: "requests/s cpu_us/request non2xx_plus_errors"
run_wrk() {
    local url=$1 pid=$2 before after out
    before=$(cpu_ticks "$pid")
    out=$(wrk -t1 -c10 -d"${DURATION}s" "$url" 2>&1)
    after=$(cpu_ticks "$pid")
    python3 - "$out" "$((after - before))" "$(clk_tck)" <<'PY'
import re, sys
out, ticks, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
total = int(re.search(r"(\d+) requests in", out).group(1))
bad = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
bad += sum(map(int, m.groups())) if m else 0
print(f"{rps:.0f} {ticks * 1e6 / hz / max(total, 1):.2f} {bad}")
PY
}

declare -A vals
add() { vals[$1]="${vals[$1]:-} $2"; }
for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="strata haproxy"; else order="haproxy strata"; fi
    for who in $order; do
        if [ $who = strata ]; then tls=$S_TLS h2c=$S_H2C pid=$S_PID; else tls=$H_TLS h2c=$H_H2C pid=$H_PID; fi
        read -r rps cpu failed < <(run_h2load "https://127.0.0.1:$tls/" "$pid")
        add "$who.tls" "$rps"; add "$who.tlscpu" "$cpu"; add "$who.tlsfail" "$failed"
        read -r rps cpu failed < <(run_h2load "http://127.0.0.1:$h2c/" "$pid")
        add "$who.h2c" "$rps"; add "$who.h2ccpu" "$cpu"; add "$who.h2cfail" "$failed"
        if [ $who = strata ]; then h1s=$S_H1S h2s=$S_H2S; else h1s=$H_H1S h2s=$H_H2S; fi
        read -r rps cpu failed < <(run_wrk "http://127.0.0.1:$h1s/" "$pid")
        add "$who.h1s" "$rps"; add "$who.h1scpu" "$cpu"; add "$who.h1sfail" "$failed"
        read -r rps cpu failed < <(run_h2load "http://127.0.0.1:$h2s/" "$pid")
        add "$who.h2s" "$rps"; add "$who.h2scpu" "$cpu"; add "$who.h2sfail" "$failed"
        echo "# round $round $who done" >&2
    done
done

# Failed streams while reloading at 10/s (strata: `reload` on its socket; HAProxy: -W, SIGUSR2).
reload_failures() { # strata|haproxy -> "failed total"
    local who=$1 tls h2c pid load_pid
    tls=$(free_port); h2c=$(free_port)
    config "$tls" "$h2c" "$WORK/r-$who.sock" > "$WORK/reload-$who.cfg"
    if [ "$who" = strata ]; then
        "$STRATA" -f "$WORK/reload-$who.cfg" 2>>"$WORK/strata-reload.log" &
    else
        haproxy -W -db -f "$WORK/reload-$who.cfg" 2>>"$WORK/haproxy-reload.log" &
    fi
    pid=$!; PIDS+=("$pid")
    wait_port "$tls"
    sleep 0.5
    h2load -c 10 -m 10 -D "$((RELOADS / 10 + 4))" "https://127.0.0.1:$tls/" > "$WORK/h2load-$who.out" 2>&1 &
    load_pid=$!
    sleep 2
    python3 - "$who" "$RELOADS" "$WORK/r-$who.sock" "$pid" <<'PY'
import os, signal, socket, sys, time
who, count, path, pid = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
start, refused = time.monotonic(), 0
for k in range(count):
    delay = start + k / 10 - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    if who == "strata":
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.sendall(b"reload\n")
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
        s.close()
        refused += not answer.startswith(b"Success=1")
    else:
        os.kill(pid, signal.SIGUSR2)
if refused:
    print(f"# {refused} of {count} strata reloads did not succeed", file=sys.stderr)
PY
    wait "$load_pid" || true
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
    python3 - "$WORK/h2load-$who.out" <<'PY'
import re, sys
out = open(sys.argv[1]).read()
m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
total, done, ok, failed, errored, timeout = map(int, m.groups())
# Streams never answered (h2load counts a connection it lost as failed and the rest as not done).
print(failed + errored + timeout + (total - done), total)
PY
}
echo "# $RELOADS reloads at 10/s under h2load, strata then haproxy" >&2
read -r s_failed s_total < <(reload_failures strata)
read -r h_failed h_total < <(reload_failures haproxy)

median() { python3 -c "import statistics, sys; print(f'{statistics.median(float(x) for x in sys.argv[1:]):.2f}')" ${vals[$1]}; }
line() {
    local s h; s=$(median "strata.$3"); h=$(median "haproxy.$3")
    printf '%-44s strata %11s  haproxy %11s  ratio %s %s\n' "$1" "$s" "$h" "$(ratio "$s" "$h")" "$2"
}
echo "h2.sh: ${ROUNDS} rounds x ${DURATION}s, h2load -c 10 -m 10, nbthread $THREADS, nginx backend, $(nproc) cores, $(haproxy -v | head -1 | awk '{print "haproxy", $3}')"
line "h2 over TLS requests/s" "(target >= 1.0)" tls
line "h2 over TLS proxy CPU us/request" "(target <= 1.0)" tlscpu
line "h2 over TLS failed streams" "" tlsfail
line "h2c requests/s" "(higher is better)" h2c
line "h2c proxy CPU us/request" "(lower is better)" h2ccpu
line "h1 client to h2c server requests/s" "(higher is better)" h1s
line "h1 client to h2c server CPU us/request" "(lower is better)" h1scpu
line "h1 client to h2c server failed" "" h1sfail
line "h2c client to h2c server requests/s" "(higher is better)" h2s
line "h2c client to h2c server CPU us/request" "(lower is better)" h2scpu
line "h2c client to h2c server failed" "" h2sfail
printf '%-44s strata %11s  haproxy %11s  (of %s and %s streams; target 0)\n' "failed streams during $RELOADS reloads" \
    "$s_failed" "$h_failed" "$s_total" "$h_total"
