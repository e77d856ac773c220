#!/usr/bin/env bash
# The Prometheus exporter's cost. One line per figure.
#   1. HTTP keep-alive requests/s through strata (wrk -t1 -c50 to nginx) while a scraper fetches
#      /metrics 10 times a second, against the same run without a scraper, alternating A B A B
#      (target: ratio >= 0.98). The same for HAProxy, for reference. Also the proxy's CPU time per
#      request in both runs (the scrapes' cost included), steadier than requests/s on a shared box.
#   2. The proxy's CPU time per scrape of that small configuration (1,000 scrapes, a connection
#      each), strata beside HAProxy.
#   3. Time to scrape /metrics with 10,000 servers (one backend, no checks), strata beside
#      HAProxy's exporter (Debian's package, nbthread 1) on the same configuration: median of N
#      scrapes each, alternating (target: ratio <= 1.0). Also the size of each answer.
# Usage: bench/scrape.sh [seconds per run, default 10] [rounds, default 2] [scrapes, default 20]
#   STRATA=/path/to/strata: use this binary instead of building with `swift build -c release`
source "$(dirname "$0")/lib.sh"
DURATION=${1:-10}
ROUNDS=${2:-2}
SCRAPES=${3:-20}
need haproxy nginx wrk curl
ulimit -n 65536 2>/dev/null || true
build_strata

NGINX_PORT=$(free_port)
start_nginx "$NGINX_PORT"

# config PORT SERVERS: the same configuration for both proxies; SERVERS extra servers in a
# backend of their own (addresses nothing listens on: no traffic goes there, no checks).
config() {
    local port=$1 servers=$2
    cat <<CFG
global
    maxconn 4000
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
frontend fe
    bind 127.0.0.1:$port
    http-request use-service prometheus-exporter if { path /metrics }
    default_backend be
backend be
    server nginx 127.0.0.1:$NGINX_PORT
CFG
    if [ "$servers" -gt 0 ]; then
        echo "backend many"
        python3 - "$servers" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    print(f"    server s{i} 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}:8080")
PY
    fi
}

start() { # start strata|haproxy CFG -> pid
    # Standard output away from the caller's $(…), which would otherwise wait for the process to end.
    if [ "$1" = strata ]; then "$STRATA" -f "$2" >/dev/null 2>>"$WORK/strata.log" &
    else haproxy -db -f "$2" >/dev/null 2>>"$WORK/haproxy.log" & fi
    local pid=$!
    PIDS+=("$pid")
    echo "$pid"
}

haproxy_cfg() { sed "s/^global/global\n    nbthread $THREADS/"; }

S_PORT=$(free_port); H_PORT=$(free_port); SB_PORT=$(free_port); HB_PORT=$(free_port)
config "$S_PORT" 0 > "$WORK/strata.cfg"
config "$H_PORT" 0 | haproxy_cfg > "$WORK/haproxy.cfg"
config "$SB_PORT" 10000 > "$WORK/strata-big.cfg"
config "$HB_PORT" 10000 | haproxy_cfg > "$WORK/haproxy-big.cfg"
S_PID=$(start strata "$WORK/strata.cfg"); H_PID=$(start haproxy "$WORK/haproxy.cfg")
SB_PID=$(start strata "$WORK/strata-big.cfg"); HB_PID=$(start haproxy "$WORK/haproxy-big.cfg")
PIDS+=("$S_PID" "$H_PID" "$SB_PID" "$HB_PID")  # start() ran in $(…): its PIDS+= did not reach here
for p in $S_PORT $H_PORT $SB_PORT $HB_PORT; do wait_port "$p"; done
for p in $S_PORT $H_PORT $SB_PORT $HB_PORT; do
    curl -sf -o /dev/null "http://127.0.0.1:$p/metrics" || { echo "no /metrics on port $p" >&2; exit 1; }
done

# run PORT PID: one wrk run on /: "requests/s CPU-microseconds-of-PID-per-request" (the CPU time
# includes answering the scrapes: what the exporter costs the proxy, steadier than requests/s on a
# shared machine).
run() {
    local before after out
    before=$(cpu_ticks "$2")
    out=$(wrk -t1 -c50 -d"${DURATION}s" "http://127.0.0.1:$1/" 2>&1)
    after=$(cpu_ticks "$2")
    python3 - "$out" "$before" "$after" "$(clk_tck)" <<'PY'
import re, sys
out, before, after, tck = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
total = int(re.search(r"(\d+) requests in", out).group(1))
print(f"{rps} {(after - before) / tck * 1e6 / max(total, 1):.2f}")
PY
}

# scraper PORT: fetches /metrics 10 times a second until killed (its output away from $(…)).
scraper() {
    python3 - "$1" >/dev/null 2>&1 <<'PY' &
import sys, time, http.client
port = int(sys.argv[1])
next_at = time.monotonic()
while True:
    # A connection per scrape, as a scraper restarting its pool would (robust to either side closing).
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    conn.getresponse().read()
    conn.close()
    next_at += 0.1
    time.sleep(max(0, next_at - time.monotonic()))
PY
    echo $!
}

declare -A sum
add() { sum[$1]=$(python3 -c "print(${sum[$1]:-0} + $2)"); }
for round in $(seq 1 "$ROUNDS"); do
    for who in strata haproxy; do
        if [ $who = strata ]; then port=$S_PORT; pid=$S_PID; else port=$H_PORT; pid=$H_PID; fi
        read -r r c < <(run "$port" "$pid")
        add "$who.plain" "$r"; add "$who.plaincpu" "$c"
        spid=$(scraper "$port")
        PIDS+=("$spid")
        read -r r c < <(run "$port" "$pid")
        add "$who.scraped" "$r"; add "$who.scrapedcpu" "$c"
        kill "$spid" 2>/dev/null || true
        echo "# round $round $who done" >&2
    done
done

# scrape_ms PORT: the median of $SCRAPES scrapes in ms, and the answer's size in bytes.
scrape_ms() {
    python3 - "$1" "$SCRAPES" <<'PY'
import sys, time, http.client, statistics
port, n = int(sys.argv[1]), int(sys.argv[2])
times, size = [], 0
for _ in range(n):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t = time.monotonic()
    conn.request("GET", "/metrics")
    body = conn.getresponse().read()
    times.append((time.monotonic() - t) * 1000)
    size = len(body)
    conn.close()
print(f"{statistics.median(times):.2f} {size}")
PY
}
for round in $(seq 1 "$ROUNDS"); do
    for who in strata haproxy; do
        if [ $who = strata ]; then port=$SB_PORT; else port=$HB_PORT; fi
        read -r ms size < <(scrape_ms "$port")
        add "$who.scrape" "$ms"; add "$who.size" "$size"
    done
done

# scrape_cpu PORT PID: the proxy's CPU microseconds per scrape of the small configuration
# (connection, request and answer included), over 1,000 scrapes one after the other.
scrape_cpu() {
    python3 - "$1" "$2" "$(clk_tck)" <<'PY'
import sys, http.client
port, pid, tck = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def ticks():
    f = open(f"/proc/{pid}/stat").read().split()
    return int(f[13]) + int(f[14])
n, size = 1000, 0
before = ticks()
for _ in range(n):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    size = len(conn.getresponse().read())
    conn.close()
print(f"{(ticks() - before) / tck * 1e6 / n:.1f} {size}")
PY
}
for round in $(seq 1 "$ROUNDS"); do
    for who in strata haproxy; do
        if [ $who = strata ]; then port=$S_PORT; pid=$S_PID; else port=$H_PORT; pid=$H_PID; fi
        read -r us size < <(scrape_cpu "$port" "$pid")
        add "$who.scrapecpu" "$us"; add "$who.smallsize" "$size"
    done
done

avg() { python3 -c "print(f'{${sum[$1]} / $ROUNDS:.2f}')"; }
echo "scrape.sh: ${ROUNDS} rounds x ${DURATION}s, wrk -t1 -c50, nginx backend, scraper at 10/s, $(nproc) cores"
for who in strata haproxy; do
    p=$(avg "$who.plain"); s=$(avg "$who.scraped")
    printf '%-44s %-8s without %10s  with %10s  ratio %s (target >= 0.98)\n' "requests/s while scraped 10 times a second" "$who" "$p" "$s" "$(ratio "$s" "$p")"
done
for who in strata haproxy; do
    p=$(avg "$who.plaincpu"); s=$(avg "$who.scrapedcpu")
    printf '%-44s %-8s without %10s  with %10s  ratio %s\n' "proxy CPU us per request, scraped 10/s" "$who" "$p" "$s" "$(ratio "$s" "$p")"
done
s=$(avg strata.scrapecpu); h=$(avg haproxy.scrapecpu)
printf '%-44s strata %9s  haproxy %9s  ratio %s (%s and %s bytes)\n' "proxy CPU us per scrape, small configuration" "$s" "$h" "$(ratio "$s" "$h")" "$(avg strata.smallsize | cut -d. -f1)" "$(avg haproxy.smallsize | cut -d. -f1)"
s=$(avg strata.scrape); h=$(avg haproxy.scrape)
printf '%-44s strata %9s  haproxy %9s  ratio %s (target <= 1.0)\n' "scrape time ms, 10,000 servers (median)" "$s" "$h" "$(ratio "$s" "$h")"
s=$(avg strata.size); h=$(avg haproxy.size)
printf '%-44s strata %9.0f  haproxy %9.0f  ratio %s\n' "scrape size bytes, 10,000 servers" "$s" "$h" "$(ratio "$s" "$h")"
