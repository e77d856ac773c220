#!/usr/bin/env bash
# Service discovery: 1,000 servers behind templates following a DNS change, strata beside HAProxy
# (Debian's package, nbthread 1, the same configuration), in one run, alternating A B A B.
# dnsmasq serves 10 names with 100 A records each; one backend has 10 `server-template`s of 100
# servers (`resolvers`, `init-addr none`, `accepted_payload_size 8192`, `timeout resolve 1s`);
# nginx answers on every address of its port. Each proxy runs alone: started, its 1,000 servers
# seen on their first addresses, then
#   steady state: wrk -t1 -c50 for WINDOW seconds -> requests/s
#   a change: wrk again; 1 to 2 s in (at random), every name moves to 100 new addresses (hosts
#   file rewritten, SIGHUP to dnsmasq) -> seconds from the SIGHUP until all 1,000 servers have
#   their new address (polling `show servers state` every 100 ms), and requests/s of that window
# One line per figure: strata, HAProxy, the ratio; then each proxy's change window beside its
# steady state (target >= 0.95).
# Usage: bench/dns.sh [rounds, default 4]
#   WINDOW=4: seconds of each wrk run; STRATA=/path/to/strata: this binary, no swift build;
#   DNS_LOG_QUERIES=1 KEEP_WORK=1: dnsmasq logs every query to WORK/dnsmasq.log, kept
STRATA_GIVEN=${STRATA:-}
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-4}
WINDOW=${WINDOW:-4}
NAMES=10
PER_NAME=100
need haproxy nginx wrk
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || {
    echo "# installing dnsmasq-base" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsmasq-base >&2
}
ulimit -n 65536 2>/dev/null || true
if [ -n "$STRATA_GIVEN" ]; then STRATA=$STRATA_GIVEN; else build_strata; fi

# nginx on every address of one port: the servers' addresses are all over 127.0.0.0/8.
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx/logs"
cat > "$WORK/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    server {
        listen $NGINX_PORT;
        location = / { return 200 "ok\n"; }
    }
}
NGINX
"$(command -v nginx || echo /usr/sbin/nginx)" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
wait_port "$NGINX_PORT"

# hosts GENERATION: name svcK.bench.test -> 127.GENERATION.K.1 … 127.GENERATION.K.100.
hosts() {
    for k in $(seq 0 $((NAMES - 1))); do
        for i in $(seq 1 $PER_NAME); do echo "127.$1.$k.$i svc$k.bench.test"; done
    done > "$WORK/hosts"
}
hosts 1
DNS_PORT=$(free_port)
"$(command -v dnsmasq || echo /usr/sbin/dnsmasq)" --keep-in-foreground --conf-file=/dev/null --pid-file= --user=root \
    --no-resolv --no-hosts --listen-address=127.0.0.1 --bind-interfaces --port="$DNS_PORT" --local=/bench.test/ \
    --addn-hosts="$WORK/hosts" --local-ttl=0 --edns-packet-max=8192 ${DNS_LOG_QUERIES:+--log-queries} --log-facility="$WORK/dnsmasq.log" &
DNS_PID=$!
PIDS+=("$DNS_PID")
sleep 0.5

# config PORT SOCKET: the same configuration for both proxies.
config() {
    cat <<CFG
global
    maxconn 4000
    stats socket $2 level admin
resolvers dns
    nameserver ns1 127.0.0.1:$DNS_PORT
    accepted_payload_size 8192
    timeout resolve 1s
    timeout retry 1s
    hold valid 1s
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
CFG
    for k in $(seq 0 $((NAMES - 1))); do
        echo "    server-template t${k}s $PER_NAME svc$k.bench.test:$NGINX_PORT resolvers dns init-addr none resolve-prefer ipv4"
    done
}

cat > "$WORK/tool.py" <<'PY'
import socket, sys, time

def ask(path, command):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    s.sendall(command.encode() + b"\n")
    data = b""
    while not data.endswith(b"\n\n"):
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.decode(errors="replace")

# wait-all SOCKET PREFIX COUNT [SINCE]: until COUNT servers of `be` have an address starting with
# PREFIX; prints the seconds since SINCE (wall clock, default now), polling every 100 ms, or fails
# after 60 s.
path, prefix, count = sys.argv[2], sys.argv[3], int(sys.argv[4])
since = float(sys.argv[5]) if len(sys.argv) > 5 else time.time()
start = time.monotonic()
while time.monotonic() - start < 60:
    try:
        rows = [l.split() for l in ask(path, "show servers state be").splitlines() if l and not l.startswith("#")]
        if sum(1 for f in rows if len(f) > 4 and f[4].startswith(prefix)) >= count:
            print(f"{time.time() - since:.2f}")
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit(1)
PY

run_wrk() { # PORT -> requests/s
    wrk -t1 -c50 -d"${WINDOW}s" "http://127.0.0.1:$1/" 2>&1 | awk '/Requests\/sec/ {print int($2)}'
}

declare -A sum
add() { sum[$1]=$(python3 -c "print(${sum[$1]:-0} + $2)"); }
TOTAL=$((NAMES * PER_NAME))
for round in $(seq 1 "$ROUNDS"); do
    for who in strata haproxy; do
        hosts 1; kill -HUP "$DNS_PID"
        port=$(free_port); sock=$WORK/$who.sock
        config "$port" "$sock" > "$WORK/$who.cfg"
        if [ "$who" = strata ]; then
            "$STRATA" -f "$WORK/$who.cfg" >>"$WORK/strata.log" 2>&1 &
        else
            sed -i 's/^global/global\n    nbthread 1/' "$WORK/$who.cfg"
            haproxy -db -f "$WORK/$who.cfg" >>"$WORK/haproxy.log" 2>&1 &
        fi
        pid=$!
        PIDS+=("$pid")
        wait_port "$port"
        python3 "$WORK/tool.py" wait-all "$sock" 127.1. "$TOTAL" > /dev/null || { echo "# $who never filled its servers" >&2; exit 1; }
        add "$who.steady" "$(run_wrk "$port")"
        # The change, inside a wrk window.
        run_wrk "$port" > "$WORK/change.rps" &
        wrk_pid=$!
        # Somewhere in the second second: where the change falls in the resolution period is
        # chance, the same for both proxies over the rounds.
        sleep "$(python3 -c 'import random; print(random.uniform(1, 2))')"
        hosts 2
        changed=$(date +%s.%N)
        kill -HUP "$DNS_PID"
        seconds=$(python3 "$WORK/tool.py" wait-all "$sock" 127.2. "$TOTAL" "$changed") || { echo "# $who never followed the change" >&2; exit 1; }
        wait "$wrk_pid"
        add "$who.follow" "$seconds"
        add "$who.change" "$(cat "$WORK/change.rps")"
        kill "$pid"; wait "$pid" 2>/dev/null || true
        echo "# round $round $who: all $TOTAL servers moved in $seconds s" >&2
    done
done

avg() { python3 -c "print(f'{${sum[$1]} / $ROUNDS:.2f}')"; }
line() {
    local s h; s=$(avg "strata.$3"); h=$(avg "haproxy.$3")
    printf '%-50s strata %9s  haproxy %9s  ratio %s %s\n' "$1" "$s" "$h" "$(ratio "$s" "$h")" "$2"
}
echo "dns.sh: ${ROUNDS} rounds, $TOTAL servers in $NAMES templates, wrk -t1 -c50 ${WINDOW}s windows, $(nproc) cores, $(haproxy -v | head -1 | cut -d' ' -f1-3)"
line "seconds until all $TOTAL servers have the new address" "(lower is better; timeout resolve 1s)" follow
line "requests/s, steady state" "(higher is better)" steady
line "requests/s, window with the change" "(higher is better)" change
for who in strata haproxy; do
    printf '%-50s %-7s %9s  steady %9s  ratio %s (target >= 0.95)\n' "change window beside steady state" "$who" \
        "$(avg "$who.change")" "$(avg "$who.steady")" "$(ratio "$(avg "$who.change")" "$(avg "$who.steady")")"
done
