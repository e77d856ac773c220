#!/usr/bin/env bash
# Loops: strata and HAProxy (Debian's package) in mode http with nbthread 1 and then nbthread 2,
# the same keep-alive load (wrk -t2 -c100 of small requests to one nginx) in one run, alternating.
# One line per figure: requests/s at each thread count, the 1 -> 2 scaling of each proxy, the CPU
# per request, and the CPU each thread of the proxy used (so an idle or saturated loop shows).
# Usage: bench/scaling.sh [seconds per run, default 10] [rounds, default 2]
source "$(dirname "$0")/lib.sh"
DURATION=${1:-10}
ROUNDS=${2:-2}
need haproxy nginx wrk
ulimit -n 65536 2>/dev/null || true
build_strata

NGINX_PORT=$(free_port)
start_nginx "$NGINX_PORT"

config() { # PORT THREADS SOCKET
    cat <<CFG
global
    nbthread $2
    maxconn 4000
    stats socket $3 level admin
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
frontend fe
    bind 127.0.0.1:$1
    default_backend be
backend be
    server nginx 127.0.0.1:$NGINX_PORT
CFG
}

# thread_ticks PID: "name ticks" per thread of PID (utime + stime).
thread_ticks() {
    for t in /proc/"$1"/task/*; do
        printf '%s %s\n' "$(tr ' ' _ < "$t/comm")-${t##*/}" "$(awk '{print $14 + $15}' "$t/stat")"
    done
}

declare -A sum
add() { sum[$1]=$(python3 -c "print(${sum[$1]:-0} + $2)"); }
declare -A threads

for n in 1 2; do
    for who in strata haproxy; do
        port=$(free_port)
        config "$port" "$n" "$WORK/$who-$n.sock" > "$WORK/$who-$n.cfg"
        if [ $who = strata ]; then
            "$STRATA" -f "$WORK/$who-$n.cfg" >>"$WORK/strata.log" 2>&1 &
        else
            haproxy -db -f "$WORK/$who-$n.cfg" >>"$WORK/haproxy.log" 2>&1 &
        fi
        pid=$!; PIDS+=("$pid")
        wait_port "$port"
        eval "port_${who}_$n=$port pid_${who}_$n=$pid"
    done
done

for round in $(seq 1 "$ROUNDS"); do
    for n in 1 2; do
        for who in strata haproxy; do
            eval "port=\$port_${who}_$n pid=\$pid_${who}_$n"
            thread_ticks "$pid" > "$WORK/before"
            out=$(wrk -t2 -c100 -d"${DURATION}s" "http://127.0.0.1:$port/" 2>&1)
            thread_ticks "$pid" > "$WORK/after"
            read -r rps cpu per < <(python3 - "$out" "$WORK/before" "$WORK/after" "$(clk_tck)" "$DURATION" <<'PY'
import re, sys
out, before, after, hz, secs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
total = int(re.search(r"(\d+) requests in", out).group(1))
b = dict(l.split() for l in open(before)); a = dict(l.split() for l in open(after))
used = {k: int(a[k]) - int(b.get(k, 0)) for k in a}
ticks = sum(used.values())
# Per thread: its name and the share of one core it used over the run, busiest first.
per = ",".join(f"{k.rsplit('-', 1)[0]}:{v * 100 / hz / secs:.0f}%" for k, v in sorted(used.items(), key=lambda kv: -kv[1]) if v > 0)
print(f"{rps:.0f} {ticks * 1e6 / hz / max(total, 1):.2f} {per or '-'}")
PY
)
            add "$who.$n.rps" "$rps"; add "$who.$n.cpu" "$cpu"
            threads[$who.$n]=$per
            echo "# round $round nbthread $n $who: $rps req/s" >&2
        done
    done
done

avg() { python3 -c "print(f'{${sum[$1]} / $ROUNDS:.2f}')"; }
echo "scaling.sh: ${ROUNDS} rounds x ${DURATION}s, wrk -t2 -c100, nginx backend (1 worker), $(nproc) cores, $(haproxy -v | head -1 | awk '{print $3}')"
for n in 1 2; do
    s=$(avg "strata.$n.rps"); h=$(avg "haproxy.$n.rps")
    printf '%-38s strata %10s  haproxy %10s  ratio %s (higher is better)\n' "keep-alive requests/s, nbthread $n" "$s" "$h" "$(ratio "$s" "$h")"
    s=$(avg "strata.$n.cpu"); h=$(avg "haproxy.$n.cpu")
    printf '%-38s strata %10s  haproxy %10s  ratio %s (lower is better)\n' "proxy CPU us/request, nbthread $n" "$s" "$h" "$(ratio "$s" "$h")"
done
s=$(ratio "$(avg strata.2.rps)" "$(avg strata.1.rps)"); h=$(ratio "$(avg haproxy.2.rps)" "$(avg haproxy.1.rps)")
printf '%-38s strata %10s  haproxy %10s\n' "scaling nbthread 1 -> 2 (req/s ratio)" "$s" "$h"
for who in strata haproxy; do
    printf '%-38s %s (last round, %% of one core)\n' "CPU per thread, $who nbthread 2" "${threads[$who.2]}"
done
