#!/usr/bin/env bash
# HTTP mode, strata beside HAProxy (Debian's package, nbthread $THREADS (1 unless THREADS is set) for both, the same configuration), in one
# run, alternating A B A B. One line per figure: strata, HAProxy, the ratio.
#   keep-alive small requests to nginx (wrk -t1 -c50): requests/s, proxy CPU µs/request, p99 latency
#   the same through a host/path ACL table of 100 rules (every request falls through all of them)
#   the same with two lookups in maps of 10,000 entries per request: map_str on the Host (a hit)
#   and map_beg on the path (found after the longer keys' lengths are probed)
#   the same with Connection: close from the client
#   gzip of a 100 KB text answer (`compression algo gzip`, the client sends Accept-Encoding: gzip;
#   HAProxy and strata at their default level, tune.comp.maxlevel 1)
#   failed requests (wrk's socket errors + non-2xx) during 200 reloads at 10/s under keep-alive load,
#   beside HAProxy master-worker (-W, SIGUSR2 to the master)
#   case sticktable: `http-request track-sc0 src` and a deny on `sc_http_req_rate(0)` that never
#   matches, with SOURCES (100,000) client addresses in the table: keep-alive requests/s and CPU
#   µs/request from those addresses (bench/srcload.c: REQUESTS (4) requests per connection, a
#   connection per address, 50 at a time), and the table's memory per entry (RSS before and after
#   filling it, over the entries `show table` counts), and the rate of that filling (one request
#   per connection, each from an address the table does not have yet)
#   case cache: `http-request cache-use` / `http-response cache-store` on a 1 KB file of nginx (its
#   ETag and Last-Modified make it storable), every request a hit: requests/s, CPU µs/request
# Usage: bench/http.sh [seconds per run, default 10] [rounds, default 2] [reloads, default 200]
# CASES=http,sticktable (both by default) picks the cases: CASES=sticktable bench/http.sh 5 1;
# CASES=cache runs the cache case
source "$(dirname "$0")/lib.sh"
DURATION=${1:-10}
ROUNDS=${2:-2}
RELOADS=${3:-200}
CASES=${CASES:-http,sticktable}
SOURCES=${SOURCES:-100000}
REQUESTS=${REQUESTS:-4}
want() { [[ ",$CASES," == *",$1,"* ]]; }
need haproxy nginx wrk curl
ulimit -n 65536 2>/dev/null || true
build_strata

NGINX_PORT=$(free_port)
start_nginx "$NGINX_PORT"

# config NAME PORT RULES(0: none, 1: ACL table, 2: maps, 3: track-sc0 src, 4: gzip) SOCKET: the
# same configuration for both proxies.
config() {
    local port=$2 acls=$3 sock=$4
    cat <<CFG
global
    maxconn 4000
    stats socket $sock level admin
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
frontend fe
    bind 127.0.0.1:$port
CFG
    if [ "$acls" = 1 ]; then
        for i in $(seq 1 100); do
            echo "    acl host_$i hdr(host) -i site$i.example"
            echo "    acl path_$i path_beg /app$i/"
            echo "    use_backend be if host_$i path_$i"
        done
    elif [ "$acls" = 2 ]; then
        echo "    http-request set-header X-Site %[req.hdr(host),map_str($WORK/hosts.map,none)]"
        echo "    http-request set-header X-Prefix %[path,map_beg($WORK/paths.map,none)]"
    elif [ "$acls" = 3 ]; then
        # Room for every source, and no entry expiring during the run: a limit never reached.
        echo "    stick-table type ip size $((SOURCES * 2)) expire 30m store http_req_rate(10s)"
        echo "    http-request track-sc0 src"
        echo "    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 100000000 }"
    elif [ "$acls" = 4 ]; then
        echo "    compression algo gzip"
    elif [ "$acls" = 5 ]; then
        echo "    http-request cache-use small"
        echo "    http-response cache-store small"
    fi
    cat <<CFG
    default_backend be
backend be
    server nginx 127.0.0.1:$NGINX_PORT
CFG
    if [ "$acls" = 5 ]; then
        printf 'cache small\n    total-max-size 16\n    max-age 3600\n'
    fi
}

# start strata|haproxy CFG: sets STARTED to the pid (no $(…): the proxy would hold its pipe open).
start() {
    if [ "$1" = strata ]; then
        threads_cfg "$2"
        "$STRATA" -f "$2" >>"$WORK/strata.log" 2>&1 &
    else
        haproxy -db -f "$2" >>"$WORK/haproxy.log" 2>&1 &
    fi
    STARTED=$!
    PIDS+=("$STARTED")
}

# run_wrk PORT PID [wrk args]: "requests/s cpu_us/request p99_ms" (the path: $WRK_PATH, / by default)
run_wrk() {
    local port=$1 pid=$2; shift 2
    local before after out
    before=$(cpu_ticks "$pid")
    out=$(wrk -t1 -c50 -d"${DURATION}s" --latency "$@" "http://127.0.0.1:$port${WRK_PATH:-/}" 2>&1)
    after=$(cpu_ticks "$pid")
    python3 - "$out" "$((after - before))" "$(clk_tck)" <<'PY'
import re, sys
out, ticks, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
total = int(re.search(r"(\d+) requests in", out).group(1))
m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)] if m else float("nan")
print(f"{rps:.0f} {ticks * 1e6 / hz / max(total, 1):.2f} {p99:.3f}")
PY
}

declare -A sum
add() { sum[$1]=$(python3 -c "print(${sum[$1]:-0} + $2)"); }
avg() { python3 -c "print(f'{${sum[$1]} / $ROUNDS:.2f}')"; }
line() {
    local s h; s=$(avg "strata.$3"); h=$(avg "haproxy.$3")
    printf '%-44s strata %11s  haproxy %11s  ratio %s %s\n' "$1" "$s" "$h" "$(ratio "$s" "$h")" "$2"
}

if want sticktable; then
    cc -O2 -o "$WORK/srcload" "$ROOT/bench/srcload.c"
    ST_PORT=$(free_port); HT_PORT=$(free_port)
    config strata "$ST_PORT" 3 "$WORK/st.sock" > "$WORK/strata-track.cfg"
    config haproxy "$HT_PORT" 3 "$WORK/ht.sock" | sed "s/^global/global\n    nbthread $THREADS/" > "$WORK/haproxy-track.cfg"
    start strata "$WORK/strata-track.cfg"; ST_PID=$STARTED
    start haproxy "$WORK/haproxy-track.cfg"; HT_PID=$STARTED
    wait_port "$ST_PORT"; wait_port "$HT_PORT"

    # table_used SOCKET: the entries in `show table`'s header (`# table: fe, type: ip, size:N,
    # used:N`, HAProxy's line, which strata writes too).
    table_used() {
        python3 - "$1" <<'PY'
import re, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(5)
s.sendall(b"show table\n")
out = b""
while not out.endswith(b"\n\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    out += chunk
m = re.search(rb"used:(\d+)", out)
print(m.group(1).decode() if m else "nan")
PY
    }
    rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

    # run_sources PORT PID SOURCES SECONDS: "requests/s cpu_us/request failed" (srcload's errors + non-2xx)
    run_sources() {
        local port=$1 pid=$2 before after out
        before=$(cpu_ticks "$pid")
        out=$("$WORK/srcload" "$port" "$3" "$REQUESTS" 50 "$4")
        after=$(cpu_ticks "$pid")
        python3 - "$out" "$((after - before))" "$(clk_tck)" <<'PY'
import re, sys
out, ticks, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
f = dict(re.findall(r"(\w+) ([\d.]+)", out))
print(f"{float(f['rate']):.0f} {ticks * 1e6 / hz / max(int(f['requests']), 1):.2f} {int(f['errors']) + int(f['non2xx'])}")
PY
    }

    # Memory: pools warmed by a second of the same load from 64 addresses, then the RSS growth
    # while SOURCES new addresses connect once each, over the entries the table gained.
    declare -A mem
    for who in strata haproxy; do
        if [ $who = strata ]; then port=$ST_PORT pid=$ST_PID sock=$WORK/st.sock; else port=$HT_PORT pid=$HT_PID sock=$WORK/ht.sock; fi
        "$WORK/srcload" "$port" 64 "$REQUESTS" 50 1 > /dev/null
        rss=$(rss_kb "$pid"); used=$(table_used "$sock")
        "$WORK/srcload" "$port" "$SOURCES" 1 50 0 > "$WORK/fill-$who.out"
        sleep 0.5
        mem[$who.entries]=$(table_used "$sock")
        mem[$who.fill]=$(sed -n 's/.* rate \([0-9]*\)\/s.*/\1/p' "$WORK/fill-$who.out")
        mem[$who.bytes]=$(python3 -c "print(round(($(rss_kb "$pid") - $rss) * 1024 / max(${mem[$who.entries]} - $used, 1)))")
        echo "# $who filled: $(cat "$WORK/fill-$who.out")" >&2
    done
    for round in $(seq 1 "$ROUNDS"); do
        for who in strata haproxy; do
            if [ $who = strata ]; then port=$ST_PORT pid=$ST_PID; else port=$HT_PORT pid=$HT_PID; fi
            read -r rps cpu failed < <(run_sources "$port" "$pid" "$SOURCES" "$DURATION")
            add "$who.st" "$rps"; add "$who.stcpu" "$cpu"; add "$who.stfailed" "$failed"
            echo "# round $round $who done" >&2
        done
    done
    echo "http.sh sticktable: ${ROUNDS} rounds x ${DURATION}s, srcload: $REQUESTS requests per connection, 50 at a time, $SOURCES sources, $(nproc) cores"
    line "track-sc0 src, $SOURCES sources requests/s" "(higher is better)" st
    line "track-sc0 src, $SOURCES sources CPU us/request" "(lower is better)" stcpu
    printf '%-44s strata %11s  haproxy %11s  ratio %s %s\n' "filling: requests/s, each a new address" "${mem[strata.fill]}" \
        "${mem[haproxy.fill]}" "$(ratio "${mem[strata.fill]}" "${mem[haproxy.fill]}")" "(higher is better; one pass, a connection each)"
    printf '%-44s strata %11s  haproxy %11s  ratio %s %s\n' "stick-table bytes per entry (RSS growth)" "${mem[strata.bytes]}" \
        "${mem[haproxy.bytes]}" "$(ratio "${mem[strata.bytes]}" "${mem[haproxy.bytes]}")" "(lower is better)"
    printf '%-44s strata %11s  haproxy %11s  (failed requests: %s and %s; target 0)\n' "stick-table entries (show table used)" \
        "$(table_used "$WORK/st.sock")" "$(table_used "$WORK/ht.sock")" "${sum[strata.stfailed]}" "${sum[haproxy.stfailed]}"
fi

if want cache; then
    SC_PORT=$(free_port); HC_PORT=$(free_port)
    config strata "$SC_PORT" 5 "$WORK/sc.sock" > "$WORK/strata-cache.cfg"
    config haproxy "$HC_PORT" 5 "$WORK/hc.sock" | sed "s/^global/global\n    nbthread $THREADS/" > "$WORK/haproxy-cache.cfg"
    start strata "$WORK/strata-cache.cfg"; SC_PID=$STARTED
    start haproxy "$WORK/haproxy-cache.cfg"; HC_PID=$STARTED
    wait_port "$SC_PORT"; wait_port "$HC_PORT"
    head -c 1024 /dev/zero | tr '\0' 'x' > "$WORK/nginx/html/cached.txt"
    # Both must answer from their cache (an Age field), or the figures measure nginx.
    for p in $SC_PORT $HC_PORT; do
        curl -s -o /dev/null "http://127.0.0.1:$p/cached.txt"
        curl -s -D - -o /dev/null "http://127.0.0.1:$p/cached.txt" | grep -qi '^age:' || { echo "# port $p does not answer from its cache" >&2; exit 1; }
    done
    for round in $(seq 1 "$ROUNDS"); do
        for who in strata haproxy; do
            if [ $who = strata ]; then port=$SC_PORT pid=$SC_PID; else port=$HC_PORT pid=$HC_PID; fi
            read -r rps cpu p99 < <(WRK_PATH=/cached.txt run_wrk "$port" "$pid")
            add "$who.cache" "$rps"; add "$who.cachecpu" "$cpu"; add "$who.cachep99" "$p99"
            echo "# round $round $who done" >&2
        done
    done
    echo "http.sh cache: ${ROUNDS} rounds x ${DURATION}s, wrk -t1 -c50, every request a cache hit, $(nproc) cores"
    line "cache hits requests/s" "(higher is better)" cache
    line "cache hits proxy CPU us/request" "(lower is better)" cachecpu
    line "cache hits p99 latency ms" "(lower is better)" cachep99
fi

want http || exit 0

# Two maps of 10,000 entries: host names, and path prefixes of many lengths (and "/").
for i in $(seq 1 10000); do echo "site$i.example be$i"; done > "$WORK/hosts.map"
{ for i in $(seq 1 10000); do echo "/app$i/$(printf 'x%.0s' $(seq 1 $((i % 40))))/ v$i"; done; echo "/ root"; } > "$WORK/paths.map"
# 100 KB of text (words in a pseudo-random order: about 3:1 at level 1) for the gzip case.
python3 -c '
import random
random.seed(7)
words = "the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were her she there".split()
text, n = [], 0
while n < 100000:
    w = random.choice(words) + (" " if random.random() > 0.1 else ".\n")
    text.append(w); n += len(w)
open("'"$WORK"'/nginx/html/text100k.txt", "w").write("".join(text)[:100000])
'

S_PORT=$(free_port); H_PORT=$(free_port); SA_PORT=$(free_port); HA_PORT=$(free_port); SM_PORT=$(free_port); HM_PORT=$(free_port)
config strata "$S_PORT" 0 "$WORK/s.sock" > "$WORK/strata.cfg"
config haproxy "$H_PORT" 0 "$WORK/h.sock" | sed "s/^global/global\n    nbthread $THREADS/" > "$WORK/haproxy.cfg"
config strata "$SA_PORT" 1 "$WORK/sa.sock" > "$WORK/strata-acl.cfg"
config haproxy "$HA_PORT" 1 "$WORK/ha.sock" | sed "s/^global/global\n    nbthread $THREADS/" > "$WORK/haproxy-acl.cfg"
config strata "$SM_PORT" 2 "$WORK/sm.sock" > "$WORK/strata-map.cfg"
config haproxy "$HM_PORT" 2 "$WORK/hm.sock" | sed "s/^global/global\n    nbthread $THREADS/" > "$WORK/haproxy-map.cfg"
SZ_PORT=$(free_port); HZ_PORT=$(free_port)
config strata "$SZ_PORT" 4 "$WORK/sz.sock" > "$WORK/strata-gzip.cfg"
config haproxy "$HZ_PORT" 4 "$WORK/hz.sock" | sed "s/^global/global\n    nbthread $THREADS/" > "$WORK/haproxy-gzip.cfg"

start strata "$WORK/strata.cfg"; S_PID=$STARTED
start haproxy "$WORK/haproxy.cfg"; H_PID=$STARTED
start strata "$WORK/strata-acl.cfg"; SA_PID=$STARTED
start haproxy "$WORK/haproxy-acl.cfg"; HA_PID=$STARTED
start strata "$WORK/strata-map.cfg"; SM_PID=$STARTED
start haproxy "$WORK/haproxy-map.cfg"; HM_PID=$STARTED
start strata "$WORK/strata-gzip.cfg"; SZ_PID=$STARTED
start haproxy "$WORK/haproxy-gzip.cfg"; HZ_PID=$STARTED
for p in $S_PORT $H_PORT $SA_PORT $HA_PORT $SM_PORT $HM_PORT $SZ_PORT $HZ_PORT; do wait_port "$p"; done
# Both must really compress (and answer the same bytes once inflated), or the gzip figures mean nothing.
for p in $SZ_PORT $HZ_PORT; do
    curl -s -D - -o /dev/null -H 'Accept-Encoding: gzip' "http://127.0.0.1:$p/text100k.txt" | grep -qi '^content-encoding: gzip' \
        || { echo "# port $p does not gzip the 100 KB answer" >&2; exit 1; }
    curl -s --compressed "http://127.0.0.1:$p/text100k.txt" | cmp -s - "$WORK/nginx/html/text100k.txt" \
        || { echo "# port $p: the inflated answer differs from the file" >&2; exit 1; }
done

for round in $(seq 1 "$ROUNDS"); do
    for who in strata haproxy; do
        if [ $who = strata ]; then port=$S_PORT pid=$S_PID aport=$SA_PORT apid=$SA_PID mport=$SM_PORT mpid=$SM_PID zport=$SZ_PORT zpid=$SZ_PID
        else port=$H_PORT pid=$H_PID aport=$HA_PORT apid=$HA_PID mport=$HM_PORT mpid=$HM_PID zport=$HZ_PORT zpid=$HZ_PID; fi
        read -r rps cpu p99 < <(run_wrk "$port" "$pid")
        add "$who.ka" "$rps"; add "$who.kacpu" "$cpu"; add "$who.kap99" "$p99"
        read -r rps cpu p99 < <(run_wrk "$aport" "$apid")
        add "$who.acl" "$rps"; add "$who.aclcpu" "$cpu"; add "$who.aclp99" "$p99"
        read -r rps cpu p99 < <(run_wrk "$mport" "$mpid" -H "Host: site5000.example")
        add "$who.map" "$rps"; add "$who.mapcpu" "$cpu"; add "$who.mapp99" "$p99"
        read -r rps cpu p99 < <(run_wrk "$port" "$pid" -H "Connection: close")
        add "$who.cc" "$rps"; add "$who.cccpu" "$cpu"; add "$who.ccp99" "$p99"
        read -r rps cpu p99 < <(WRK_PATH=/text100k.txt run_wrk "$zport" "$zpid" -H "Accept-Encoding: gzip")
        add "$who.gz" "$rps"; add "$who.gzcpu" "$cpu"; add "$who.gzp99" "$p99"
        echo "# round $round $who done" >&2
    done
done

echo "http.sh: ${ROUNDS} rounds x ${DURATION}s, wrk -t1 -c50, nginx backend, $(nproc) cores"
line "keep-alive requests/s" "(higher is better)" ka
line "keep-alive proxy CPU us/request" "(lower is better)" kacpu
line "keep-alive p99 latency ms" "(lower is better)" kap99
line "100-rule ACL table requests/s" "(higher is better)" acl
line "100-rule ACL table proxy CPU us/request" "(lower is better)" aclcpu
line "100-rule ACL table p99 latency ms" "(lower is better)" aclp99
line "2 lookups in 10,000-entry maps requests/s" "(higher is better)" map
line "2 lookups in 10,000-entry maps CPU us/request" "(lower is better)" mapcpu
line "2 lookups in 10,000-entry maps p99 ms" "(lower is better)" mapp99
line "Connection: close requests/s" "(higher is better)" cc
line "Connection: close proxy CPU us/request" "(lower is better)" cccpu
line "Connection: close p99 latency ms" "(lower is better)" ccp99
line "gzip of a 100 KB text answer requests/s" "(higher is better)" gz
line "gzip of a 100 KB text answer CPU us/request" "(lower is better)" gzcpu
line "gzip of a 100 KB text answer p99 ms" "(lower is better)" gzp99

# Failed requests during reloads under keep-alive load.
reload_failures() { # who -> "failed total"
    local who=$1 port out
    port=$(free_port)
    config x "$port" 0 "$WORK/r-$who.sock" > "$WORK/reload-$who.cfg"
    local pid
    if [ "$who" = strata ]; then
        threads_cfg "$WORK/reload-$who.cfg"
        "$STRATA" -f "$WORK/reload-$who.cfg" >>"$WORK/strata.log" 2>&1 &
        pid=$!
    else
        sed -i "s/^global/global\n    nbthread $THREADS/" "$WORK/reload-$who.cfg"
        haproxy -W -db -f "$WORK/reload-$who.cfg" >>"$WORK/haproxy.log" 2>&1 &
        pid=$!
    fi
    PIDS+=("$pid")
    wait_port "$port"
    local seconds=$(( RELOADS / 10 + 4 ))
    wrk -t1 -c50 -d"${seconds}s" "http://127.0.0.1:$port/" > "$WORK/wrk-$who.out" 2>&1 &
    local wrk_pid=$!
    sleep 2
    for _ in $(seq 1 "$RELOADS"); do
        if [ "$who" = strata ]; then
            "$STRATA" reload -S "$WORK/r-$who.sock" > /dev/null || echo "# strata reload failed" >&2
        else
            kill -USR2 "$pid"
        fi
        sleep 0.1
    done
    wait "$wrk_pid" || true
    kill "$pid" 2>/dev/null || true
    python3 - "$(cat "$WORK/wrk-$who.out")" <<'PY'
import re, sys
out = sys.argv[1]
errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
total = int(re.search(r"(\d+) requests in", out).group(1))
print(errors + non2xx, total)
PY
}
read -r s_failed s_total < <(reload_failures strata)
read -r h_failed h_total < <(reload_failures haproxy)
printf '%-44s strata %11s  haproxy %11s  (of %s and %s requests; target 0)\n' "failed requests during $RELOADS reloads" "$s_failed" "$h_failed" "$s_total" "$h_total"
