#!/usr/bin/env bash
# TLS termination, strata beside HAProxy (Debian's package, nbthread 1, the same certificate, the
# same OpenSSL), in one run, alternating A B A B. One line per figure: strata, HAProxy, the ratio.
#   full handshakes/s (a new connection per request, no session offered: bench/tlsload.c, since
#   wrk resumes its sessions) and proxy CPU µs per handshake
#   resumed handshakes/s (each connection offers its previous session) and CPU µs per handshake
#   keep-alive HTTPS requests/s (wrk -t1 -c50) and proxy CPU µs per request
#   the share of sessions that resume across a reload: sessions saved with `openssl s_client
#   -sess_out`, a reload (strata: `strata reload`; HAProxy: master-worker, SIGUSR2, no
#   tls-ticket-keys file, so its new worker has new keys), then `-sess_in`
# The backend is nginx (plain HTTP, keep-alive) on the same machine.
#   user-space instructions per keep-alive request and per full handshake under callgrind
#   (repeatable on a busy machine, where the rates and CPU times above drift)
# Figures are medians over the rounds.
# Usage: bench/tls.sh [seconds per run, default 10] [rounds, default 3] [sessions, default 20]
# CERT=rsa (default, RSA 2048: the handshake costs the server most) or CERT=ec (ECDSA P-256).
source "$(dirname "$0")/lib.sh"
DURATION=${1:-10}
ROUNDS=${2:-3}
SESSIONS=${3:-20}
CERT=${CERT:-rsa}
need haproxy nginx wrk curl
ulimit -n 65536 2>/dev/null || true
build_strata

# The handshake load generator (OpenSSL, epoll), built with the system compiler.
cc -O2 -o "$WORK/tlsload" "$ROOT/bench/tlsload.c" -lssl -lcrypto

if [ "$CERT" = ec ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=bench.test \
        -addext subjectAltName=DNS:bench.test -keyout "$WORK/key.pem" -out "$WORK/crt.pem" 2>/dev/null
else
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=bench.test \
        -addext subjectAltName=DNS:bench.test -keyout "$WORK/key.pem" -out "$WORK/crt.pem" 2>/dev/null
fi
cat "$WORK/crt.pem" "$WORK/key.pem" > "$WORK/bench.pem"

NGINX_PORT=$(free_port)
start_nginx "$NGINX_PORT"

# config PORT SOCKET: the same configuration for both proxies.
config() {
    cat <<CFG
global
    maxconn 4000
    stats socket $2 level admin
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
frontend fe
    bind 127.0.0.1:$1 ssl crt $WORK/bench.pem
    default_backend be
backend be
    server nginx 127.0.0.1:$NGINX_PORT
CFG
}

S_PORT=$(free_port); H_PORT=$(free_port)
config "$S_PORT" "$WORK/s.sock" > "$WORK/strata.cfg"
config "$H_PORT" "$WORK/h.sock" | sed "s/^global/global\n    nbthread $THREADS/" > "$WORK/haproxy.cfg"
threads_cfg "$WORK/strata.cfg"
"$STRATA" -f "$WORK/strata.cfg" 2>>"$WORK/strata.log" & S_PID=$!; PIDS+=("$S_PID")
haproxy -db -f "$WORK/haproxy.cfg" 2>>"$WORK/haproxy.log" & H_PID=$!; PIDS+=("$H_PID")
wait_port "$S_PORT"; wait_port "$H_PORT"
curl -skf "https://127.0.0.1:$S_PORT/" > /dev/null || { echo "strata does not answer over TLS" >&2; exit 1; }
curl -skf "https://127.0.0.1:$H_PORT/" > /dev/null || { echo "haproxy does not answer over TLS" >&2; exit 1; }

# run_load PORT PID [resume]: "handshakes/s cpu_us/handshake resumed_share"
run_load() {
    local port=$1 pid=$2 mode=${3:-} before after out
    before=$(cpu_ticks "$pid")
    out=$("$WORK/tlsload" 127.0.0.1 "$port" "$DURATION" 20 $mode)
    after=$(cpu_ticks "$pid")
    python3 - "$out" "$((after - before))" "$(clk_tck)" <<'PY'
import re, sys
out, ticks, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
m = re.search(r"handshakes (\d+) seconds ([\d.]+) rate \d+/s resumed (\d+) errors (\d+)", out)
n, secs, resumed = int(m.group(1)), float(m.group(2)), int(m.group(3))
print(f"{n / secs:.0f} {ticks * 1e6 / hz / max(n, 1):.1f} {100 * resumed / max(n, 1):.0f}")
PY
}

# run_wrk PORT PID: "requests/s cpu_us/request"
run_wrk() {
    local port=$1 pid=$2 before after out
    before=$(cpu_ticks "$pid")
    out=$(wrk -t1 -c50 -d"${DURATION}s" "https://127.0.0.1:$port/" 2>&1)
    after=$(cpu_ticks "$pid")
    python3 - "$out" "$((after - before))" "$(clk_tck)" <<'PY'
import re, sys
out, ticks, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
total = int(re.search(r"(\d+) requests in", out).group(1))
errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
print(f"{rps:.0f} {ticks * 1e6 / hz / max(total, 1):.2f} {errors}")
PY
}

# Each figure keeps every round's value; the line prints the median (a shared machine's noise
# hits single runs, not the middle of several).
declare -A vals
add() { vals[$1]="${vals[$1]:-} $2"; }
for round in $(seq 1 "$ROUNDS"); do
    # Alternate who goes first, so neither always runs on a warmer (or busier) machine.
    if [ $((round % 2)) = 1 ]; then order="strata haproxy"; else order="haproxy strata"; fi
    for who in $order; do
        if [ $who = strata ]; then port=$S_PORT pid=$S_PID; else port=$H_PORT pid=$H_PID; fi
        read -r rate cpu _ < <(run_load "$port" "$pid")
        add "$who.full" "$rate"; add "$who.fullcpu" "$cpu"
        read -r rate cpu share < <(run_load "$port" "$pid" resume)
        add "$who.res" "$rate"; add "$who.rescpu" "$cpu"; add "$who.resshare" "$share"
        read -r rps cpu errors < <(run_wrk "$port" "$pid")
        add "$who.ka" "$rps"; add "$who.kacpu" "$cpu"; add "$who.kaerr" "$errors"
        echo "# round $round $who done" >&2
    done
done

# Sessions resumed across a reload, out of $SESSIONS.
resumed_across_reload() { # who -> percent
    local who=$1 port pid dir=$WORK/sess-$1
    mkdir -p "$dir"
    port=$(free_port)
    config "$port" "$WORK/r-$who.sock" > "$WORK/reload-$who.cfg"
    if [ "$who" = strata ]; then
        threads_cfg "$WORK/reload-$who.cfg"
        "$STRATA" -f "$WORK/reload-$who.cfg" 2>>"$WORK/strata.log" &
    else
        sed -i "s/^global/global\n    nbthread $THREADS/" "$WORK/reload-$who.cfg"
        haproxy -W -db -f "$WORK/reload-$who.cfg" 2>>"$WORK/haproxy.log" &
    fi
    pid=$!
    PIDS+=("$pid")
    wait_port "$port"
    local request='GET / HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n'
    for i in $(seq 1 "$SESSIONS"); do
        printf "$request" | openssl s_client -connect "127.0.0.1:$port" -servername bench.test -ign_eof \
            -sess_out "$dir/$i.pem" > /dev/null 2>&1
    done
    if [ "$who" = strata ]; then
        "$STRATA" reload -S "$WORK/r-$who.sock" > /dev/null || echo "# strata reload failed" >&2
    else
        kill -USR2 "$pid"
    fi
    sleep 1
    local reused=0
    for i in $(seq 1 "$SESSIONS"); do
        if printf "$request" | openssl s_client -connect "127.0.0.1:$port" -servername bench.test -ign_eof \
            -sess_in "$dir/$i.pem" 2>/dev/null | grep -q '^Reused,'; then reused=$((reused + 1)); fi
    done
    kill "$pid" 2>/dev/null || true
    echo $((100 * reused / SESSIONS))
}
S_REUSE=$(resumed_across_reload strata)
H_REUSE=$(resumed_across_reload haproxy)

# User-space instructions under callgrind (repeatable whatever else the machine does): per
# keep-alive request (2,000 requests on one connection, curl) and per full handshake (tlsload).
# valgrind 3.19 cannot read the DWARF 5 of a Swift binary: strata runs without its debug info.
instructions() { # who -> "per_request per_handshake"
    local who=$1 port binary cfg out pid
    command -v valgrind > /dev/null || { echo "- -"; return; }
    port=$(free_port)
    config "$port" "$WORK/cg-$who.sock" > "$WORK/cg-$who.cfg"
    out="$WORK/cg-$who.out"
    if [ "$who" = strata ]; then
        objcopy --strip-debug "$STRATA" "$WORK/strata.nodebug"
        valgrind --tool=callgrind --callgrind-out-file="$out" "$WORK/strata.nodebug" -f "$WORK/cg-$who.cfg" 2>>"$WORK/cg.log" &
    else
        sed -i "s/^global/global\n    nbthread $THREADS/" "$WORK/cg-$who.cfg"
        valgrind --tool=callgrind --callgrind-out-file="$out" haproxy -db -f "$WORK/cg-$who.cfg" 2>>"$WORK/cg.log" &
    fi
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 300); do curl -skf -o /dev/null "https://127.0.0.1:$port/" 2>/dev/null && break; sleep 0.1; done
    curl -sk -o /dev/null "https://127.0.0.1:$port/?warm[1-50]"
    callgrind_control -z "$pid" > /dev/null 2>&1
    curl -sk -o /dev/null "https://127.0.0.1:$port/?n[1-2000]"
    callgrind_control -d "$pid" > /dev/null 2>&1
    local handshakes
    "$WORK/tlsload" 127.0.0.1 "$port" 1 4 > /dev/null   # warm
    callgrind_control -z "$pid" > /dev/null 2>&1
    handshakes=$("$WORK/tlsload" 127.0.0.1 "$port" 5 4 | awk '{print $2}')
    callgrind_control -d "$pid" > /dev/null 2>&1
    kill "$pid" 2>/dev/null || true
    sleep 0.5
    python3 - "$out" "$handshakes" <<'PY'
import glob, re, sys
out, handshakes = sys.argv[1], int(sys.argv[2])
def total(path):
    for line in open(path):
        m = re.match(r"(?:summary|totals): (\d+)", line)
        if m:
            return int(m.group(1))
    return 0
dumps = sorted(glob.glob(out + ".*"), key=lambda p: int(p.rsplit(".", 1)[1]))
print(f"{total(dumps[0]) / 2000:.0f} {total(dumps[1]) / max(handshakes, 1):.0f}")
PY
}
read -r S_IREQ S_IHS < <(instructions strata)
read -r H_IREQ H_IHS < <(instructions haproxy)

median() { python3 -c "import statistics, sys; print(f'{statistics.median(float(x) for x in sys.argv[1:]):.2f}')" ${vals[$1]}; }
line() {
    local s h; s=$(median "strata.$3"); h=$(median "haproxy.$3")
    printf '%-48s strata %11s  haproxy %11s  ratio %s %s\n' "$1" "$s" "$h" "$(ratio "$s" "$h")" "$2"
}
echo "tls.sh: ${ROUNDS} rounds x ${DURATION}s, $CERT certificate, TLS 1.3, nginx backend, $(nproc) cores"
line "full handshakes/s (new connection per request)" "(higher is better)" full
line "full handshake proxy CPU us/handshake" "(lower is better)" fullcpu
line "resumed handshakes/s" "(higher is better)" res
line "resumed handshake proxy CPU us/handshake" "(lower is better)" rescpu
line "resumed share of resumption attempts %" "(higher is better)" resshare
line "keep-alive HTTPS requests/s" "(higher is better)" ka
line "keep-alive HTTPS proxy CPU us/request" "(lower is better)" kacpu
line "keep-alive HTTPS socket errors" "(lower is better)" kaerr
printf '%-48s strata %10s%%  haproxy %10s%%\n' "sessions resumed across a reload ($SESSIONS)" "$S_REUSE" "$H_REUSE"
printf '%-48s strata %11s  haproxy %11s  ratio %s %s\n' "keep-alive HTTPS instructions/request" "$S_IREQ" "$H_IREQ" \
    "$( [ "$S_IREQ" = - ] && echo - || ratio "$S_IREQ" "$H_IREQ")" "(callgrind, lower is better)"
printf '%-48s strata %11s  haproxy %11s  ratio %s %s\n' "full handshake instructions/handshake" "$S_IHS" "$H_IHS" \
    "$( [ "$S_IHS" = - ] && echo - || ratio "$S_IHS" "$H_IHS")" "(callgrind, lower is better)"
