#!/usr/bin/env bash
# Binary upgrades and privileged reloads: strata beside HAProxy, one line per figure:
#   1. failed requests (wrk's socket errors + non-2xx) during UPGRADES successive binary upgrades
#      (`-x OLD_SOCKET -sf OLD_PID`, one a second) under `wrk -H 'Connection: close'`, strata
#      beside HAProxy doing the same (`haproxy -x … -sf …`); target 0 for strata
#   2. the same under keep-alive load
#   3. failed requests and failed reloads during RELOADS reloads that add and remove a bind on a
#      port below 1024, strata under `user nobody`/`group nogroup`/`chroot` (its privilege broker
#      binds), HAProxy master-worker (-W, SIGUSR2; its master stays root to bind) with the same
#      user and chroot; target 0 and 0 for strata
# Runs as root (figure 3 drops to nobody). The proxies answer themselves (`http-request return`).
# Usage: bench/upgrade.sh
#   UPGRADES=20 RELOADS=20: the counts
#   STRATA=/path/to/strata: use this binary instead of building with `swift build -c release`
source "$(dirname "$0")/lib.sh"
UPGRADES=${UPGRADES:-20}
RELOADS=${RELOADS:-20}
need haproxy wrk
[ "$(id -u)" = 0 ] || { echo "bench/upgrade.sh runs as root (figure 3 drops privileges)" >&2; exit 1; }
ulimit -n 65536 2>/dev/null || true
build_strata
mkdir -p "$WORK/jail"

# config WHO PORT SOCKET [EXTRA_GLOBAL] [EXTRA_FRONTEND]
config() {
    cat <<CFG
global
    maxconn 4000
    nbthread $THREADS
    stats socket $3 mode 600 level admin expose-fd listeners
${4:-}
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend web
    bind 127.0.0.1:$2
${5:-}
    http-request return status 200 content-type text/plain string ok
CFG
}

failed_of() { # wrk output -> "failed total"
    python3 - "$1" <<'PY'
import re, sys
out = open(sys.argv[1]).read()
errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
total = int(m.group(1)) if (m := re.search(r"(\d+) requests in", out)) else 0
print(errors + non2xx, total)
PY
}

wait_socket() { for _ in $(seq 1 200); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket $1" >&2; return 1; }

# upgrades WHO HEADER -> "failed total"
upgrades() {
    local who=$1 header=$2 port; port=$(free_port)
    local n=0 pid sock="$WORK/$who-0.sock"
    config "$who" "$port" "$sock" > "$WORK/$who-0.cfg"
    if [ "$who" = strata ]; then "$STRATA" -f "$WORK/$who-0.cfg" 2>>"$WORK/$who.log" & else haproxy -db -f "$WORK/$who-0.cfg" 2>>"$WORK/$who.log" & fi
    pid=$!; PIDS+=($pid)
    wait_port "$port"; wait_socket "$sock"
    wrk -t1 -c50 -d"$((UPGRADES + 3))s" ${header:+-H "$header"} "http://127.0.0.1:$port/" > "$WORK/wrk-$who.out" 2>&1 &
    local wrk=$!
    sleep 1
    for n in $(seq 1 "$UPGRADES"); do
        local next="$WORK/$who-$n.sock"
        config "$who" "$port" "$next" > "$WORK/$who-$n.cfg"
        if [ "$who" = strata ]; then
            "$STRATA" -f "$WORK/$who-$n.cfg" -x "$sock" -sf "$pid" 2>>"$WORK/$who.log" &
        else
            haproxy -db -f "$WORK/$who-$n.cfg" -x "$sock" -sf "$pid" 2>>"$WORK/$who.log" &
        fi
        pid=$!; PIDS+=($pid); sock=$next
        wait_socket "$sock"
        sleep 1
    done
    wait "$wrk" || true
    kill "$pid" 2>/dev/null || true
    failed_of "$WORK/wrk-$who.out"
}

# privileged WHO -> "failed total failed_reloads"
privileged() {
    local who=$1 port low; port=$(free_port)
    low=$(python3 -c '
import socket
for p in range(600, 1000):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError: pass
    finally: s.close()')
    local sock="$WORK/$who-priv.sock" cfg="$WORK/$who-priv.cfg" users="    user nobody
    group nogroup
    chroot $WORK/jail"
    config "$who" "$port" "$sock" "$users" > "$cfg"
    if [ "$who" = strata ]; then "$STRATA" -f "$cfg" 2>>"$WORK/$who.log" & else haproxy -W -db -f "$cfg" 2>>"$WORK/$who.log" & fi
    local pid=$!; PIDS+=($pid)
    wait_port "$port"
    wrk -t1 -c50 -d"$((RELOADS + 3))s" -H 'Connection: close' "http://127.0.0.1:$port/" > "$WORK/wrk-$who-priv.out" 2>&1 &
    local wrk=$! refused=0
    sleep 1
    for n in $(seq 1 "$RELOADS"); do
        if [ $((n % 2)) = 1 ]; then config "$who" "$port" "$sock" "$users" "    bind 127.0.0.1:$low" > "$cfg"; else config "$who" "$port" "$sock" "$users" > "$cfg"; fi
        if [ "$who" = strata ]; then
            python3 - "$sock" <<'PY' || refused=$((refused + 1))
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"reload\n")
data = b""
while b"\n\n" not in data:
    chunk = s.recv(65536)
    if not chunk: break
    data += chunk
sys.exit(0 if data.startswith(b"Success=1") else 1)
PY
        else
            kill -USR2 "$pid"
            sleep 0.5
            (exec 3<>/dev/tcp/127.0.0.1/"$low") 2>/dev/null && [ $((n % 2)) = 1 ] || [ $((n % 2)) = 0 ] || refused=$((refused + 1))
        fi
        sleep 1
    done
    wait "$wrk" || true
    kill "$pid" 2>/dev/null || true
    echo "$(failed_of "$WORK/wrk-$who-priv.out") $refused"
}

echo "# $UPGRADES upgrades under Connection: close, then keep-alive; strata then haproxy (about $((4 * (UPGRADES + 5))) s)" >&2
read -r sc_failed sc_total < <(upgrades strata 'Connection: close')
read -r hc_failed hc_total < <(upgrades haproxy 'Connection: close')
read -r sk_failed sk_total < <(upgrades strata '')
read -r hk_failed hk_total < <(upgrades haproxy '')
echo "# $RELOADS reloads adding/removing a port below 1024 under user/chroot" >&2
read -r sp_failed sp_total sp_refused < <(privileged strata)
read -r hp_failed hp_total hp_refused < <(privileged haproxy)

echo "upgrade.sh: $(nproc) cores, $(haproxy -v | head -1 | awk '{print "haproxy", $3}')"
printf '%-52s strata %6s of %-8s haproxy %6s of %-8s (target 0)\n' \
    "failed requests, $UPGRADES upgrades, Connection: close" "$sc_failed" "$sc_total" "$hc_failed" "$hc_total"
printf '%-52s strata %6s of %-8s haproxy %6s of %-8s (target 0)\n' \
    "failed requests, $UPGRADES upgrades, keep-alive" "$sk_failed" "$sk_total" "$hk_failed" "$hk_total"
printf '%-52s strata %6s of %-8s haproxy %6s of %-8s (target 0)\n' \
    "failed requests, $RELOADS privileged-port reloads" "$sp_failed" "$sp_total" "$hp_failed" "$hp_total"
printf '%-52s strata %6s          haproxy %6s          (target 0)\n' \
    "failed reloads (the port below 1024 not served)" "$sp_refused" "$hp_refused"
