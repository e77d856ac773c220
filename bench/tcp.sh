#!/usr/bin/env bash
# TCP mode, strata beside HAProxy (Debian's package, nbthread $THREADS (1 unless THREADS is set) for both, the same configuration), in one
# run, alternating A B A B. Prints one line per figure: strata's value, HAProxy's, the ratio.
#   keep-alive requests/s through the TCP proxy to nginx (wrk), and proxy CPU µs per request
#   new connections/s (wrk with Connection: close)
#   bulk throughput: 1 GiB through the proxy (curl)
# Usage: bench/tcp.sh [seconds per run, default 10] [rounds, default 2]
source "$(dirname "$0")/lib.sh"
DURATION=${1:-10}
ROUNDS=${2:-2}
need haproxy nginx wrk curl
ulimit -n 65536 2>/dev/null || true
build_strata

NGINX_PORT=$(free_port); S_PORT=$(free_port); H_PORT=$(free_port)
start_nginx "$NGINX_PORT"

cat > "$WORK/strata.cfg" <<CFG
global
    maxconn 4000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
listen bench
    bind 127.0.0.1:$S_PORT
    server nginx 127.0.0.1:$NGINX_PORT
CFG
sed "s/^global/global\n    nbthread $THREADS/; s/127.0.0.1:$S_PORT/127.0.0.1:$H_PORT/" "$WORK/strata.cfg" > "$WORK/haproxy.cfg"

threads_cfg "$WORK/strata.cfg"
"$STRATA" -f "$WORK/strata.cfg" 2>"$WORK/strata.log" &
S_PID=$!; PIDS+=($S_PID)
haproxy -db -f "$WORK/haproxy.cfg" 2>"$WORK/haproxy.log" &
H_PID=$!; PIDS+=($H_PID)
wait_port "$S_PORT"; wait_port "$H_PORT"

# run_wrk PORT PID [extra wrk args]: prints "requests_per_s cpu_us_per_request"
run_wrk() {
    local port=$1 pid=$2; shift 2
    local before after out rps total
    before=$(cpu_ticks "$pid")
    out=$(wrk -t1 -c50 -d"${DURATION}s" "$@" "http://127.0.0.1:$port/" 2>&1)
    after=$(cpu_ticks "$pid")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    total=$(echo "$out" | awk '/requests in/ {print $1}')
    python3 -c "import sys; t=int(sys.argv[3]); print(f'{float(sys.argv[1]):.0f}', f'{(int(sys.argv[2]) * 1e6 / $(clk_tck)) / max(t,1):.2f}')" "$rps" "$((after - before))" "$total"
}

bulk() {
    curl -s -o /dev/null -w '%{speed_download}\n' "http://127.0.0.1:$1/big" | awk '{printf "%.0f\n", $1 / 1048576}'
}

declare -A sum
add() { sum[$1]=$(python3 -c "print(${sum[$1]:-0} + $2)"); }

for round in $(seq 1 "$ROUNDS"); do
    for who in strata haproxy; do
        if [ $who = strata ]; then port=$S_PORT pid=$S_PID; else port=$H_PORT pid=$H_PID; fi
        read -r rps cpu < <(run_wrk "$port" "$pid")
        add "$who.ka" "$rps"; add "$who.kacpu" "$cpu"
        read -r rps cpu < <(run_wrk "$port" "$pid" -H "Connection: close")
        add "$who.cc" "$rps"; add "$who.cccpu" "$cpu"
        mb=$(bulk "$port")
        add "$who.bulk" "$mb"
        echo "# round $round $who: done" >&2
    done
done

avg() { python3 -c "print(f'{${sum[$1]} / $ROUNDS:.2f}')"; }
line() { # name unit strata haproxy higher|lower
    local s h; s=$(avg "strata.$3"); h=$(avg "haproxy.$3")
    printf '%-38s strata %12s  haproxy %12s  ratio %s %s\n' "$1" "$s" "$h" "$(ratio "$s" "$h")" "$2"
}
echo "tcp.sh: ${ROUNDS} rounds x ${DURATION}s, wrk -t1 -c50, nginx backend, $(nproc) cores"
line "keep-alive requests/s" "(higher is better)" ka
line "keep-alive proxy CPU us/request" "(lower is better)" kacpu
line "new connections/s" "(higher is better)" cc
line "new connection proxy CPU us/request" "(lower is better)" cccpu
line "bulk 1 GiB throughput MiB/s" "(higher is better)" bulk
