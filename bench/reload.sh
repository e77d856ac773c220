#!/usr/bin/env bash
# Reloads: strata beside HAProxy where there is something to compare. One line per figure:
#   1. time from the admin socket's `reload` to `Success=1` on a generated configuration of
#      1,000 frontends and 10,000 servers (median of 20), beside `haproxy -c -f` on the same file
#      (median of 5), and the ratio; targets <= 50 ms and <= 0.25x
#   1b. time from `reload plan` to its answer on the same configuration with a comment line
#      more or less on top than the one running (every item moved: the plan compares each one
#      in full), beside `reload` of that file, alternating plan and reload (median of 20 each);
#      target ratio <= 1
#   1c. time from `rollback` to `Success=1` on the same configuration (the previous generation's
#      configuration, built ahead from memory: each rollback waits for `prepared` in `show
#      generations`; its 1,000 listeners kept), median of 20; target <= 5 ms
#   2. failed requests (wrk's socket errors + non-2xx responses) during 200 reloads at 10 per
#      second under wrk -t1 -c50 through a MODE proxy to nginx, beside HAProxy master-worker
#      (-W, SIGUSR2 to the master) under the same load; target 0 for strata
#   3. strata's RSS after 1 and after 1,000 reloads of the large configuration; target within 10%
#   4. strata's open fds before and after 100 reloads that fail (a bind on a port another socket
#      holds); target equal
# Usage: bench/reload.sh
#   MODE=tcp (default) or MODE=http: the proxies' mode in figure 2 (`mode http` in both configs)
#   RELOADS=200 TIMED=20 RSS_RELOADS=1000 FAILED=100: the counts
#   STRATA=/path/to/strata: use this binary instead of building with `swift build -c release`
source "$(dirname "$0")/lib.sh"
MODE=${MODE:-tcp}
RELOADS=${RELOADS:-200}
TIMED=${TIMED:-20}
RSS_RELOADS=${RSS_RELOADS:-1000}
FAILED=${FAILED:-100}
CANARY_SECONDS=${CANARY_SECONDS:-5}
CANARY_ROUNDS=${CANARY_ROUNDS:-3}
need haproxy nginx wrk
ulimit -n 65536 2>/dev/null || true
build_strata

# The admin socket client, the configuration generator, the port holder, the reload pacer.
cat > "$WORK/tool.py" <<'PY'
import os, signal, socket, statistics, subprocess, sys, time

def ask(path, command):
    """Sends one admin command; returns (ms until the first answer line, the whole answer)."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    start = time.perf_counter()
    s.sendall(command.encode() + b"\n")
    data, first = b"", None
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        if first is None and b"\n" in data:
            first = (time.perf_counter() - start) * 1000
        if b"\n\n" in data:
            break
    s.close()
    return first, data.decode(errors="replace")

def free_base(count):
    """A first port such that 127.0.0.1:first..first+count-1 can all be bound now."""
    for base in range(20000, 60000, 1000):
        held = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                held.append(s)
            return base
        except OSError:
            pass
        finally:
            for s in held:
                s.close()
    sys.exit("no range of %d free ports" % count)

cmd = sys.argv[1]
if cmd == "generate":  # generate OUT SOCKET FRONTENDS SERVERS_EACH
    out, sock, frontends, servers = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    base = free_base(frontends)
    lines = ["global", "    maxconn 4000", f"    stats socket {sock} level admin", "",
             "defaults", "    mode tcp", "    timeout connect 5s", "    timeout client 30s",
             "    timeout server 30s", ""]
    for i in range(frontends):
        lines += [f"frontend fe{i}", f"    bind 127.0.0.1:{base + i}", f"    default_backend be{i}", "",
                  f"backend be{i}", "    balance roundrobin"]
        lines += [f"    server s{j} 127.0.{i // 250}.{i % 250 + 1}:{8000 + j} weight {j + 1} maxconn 100"
                  for j in range(servers)]
        lines.append("")
    open(out, "w").write("\n".join(lines))
elif cmd == "ask":  # ask SOCKET COMMAND: prints the answer
    print(ask(sys.argv[2], sys.argv[3])[1])
elif cmd == "wait-socket":  # wait-socket PATH
    for _ in range(600):
        try:
            ask(sys.argv[2], "show info")
            sys.exit(0)
        except OSError:
            time.sleep(0.05)
    sys.exit("admin socket %s never answered" % sys.argv[2])
elif cmd == "reloads":  # reloads SOCKET COUNT [success|failure]: prints the median and the minimum ms
    path, count = sys.argv[2], int(sys.argv[3])
    expected = "Success=1" if (sys.argv[4] if len(sys.argv) > 4 else "success") == "success" else "Success=0"
    times = []
    for _ in range(count):
        ms, answer = ask(path, "reload")
        if not answer.startswith(expected):
            sys.exit("reload answered, expecting %s:\n%s" % (expected, answer))
        times.append(ms)
    print(f"{statistics.median(times):.1f} {min(times):.1f}")
elif cmd == "rollbacks":  # rollbacks SOCKET COUNT: prints the median and the minimum ms of `rollback`
    # Each once the rollback's generation is built ahead (`prepared`), as it is when an operator
    # rolls back: a rollback right after an activation waits for that build (about a reload's).
    path, count = sys.argv[2], int(sys.argv[3])
    times = []
    for _ in range(count):
        for _ in range(100):
            if ", prepared" in ask(path, "show generations")[1]:
                break
            time.sleep(0.05)
        ms, answer = ask(path, "rollback")
        if not answer.startswith("Success=1"):
            sys.exit("rollback answered:\n%s" % answer)
        times.append(ms)
    print(f"{statistics.median(times):.1f} {min(times):.1f}")
elif cmd == "plan-vs-reload":  # plan-vs-reload SOCKET COUNT FILE ORIGINAL: median ms of `reload plan`, then of `reload`
    # Each round writes FILE as ORIGINAL with one comment line more or less on top than the one
    # running: every item of the candidate moved, so the plan compares each in full.
    path, count, file, original = sys.argv[2], int(sys.argv[3]), sys.argv[4], open(sys.argv[5]).read()
    plans, reloads = [], []
    for k in range(count):
        open(file + ".new", "w").write("# moved\n" * (k % 2 + 1) + original)
        os.replace(file + ".new", file)
        for command, times in (("reload plan", plans), ("reload", reloads)):
            ms, answer = ask(path, command)
            if not answer.startswith("Success=1"):
                sys.exit("%s answered:\n%s" % (command, answer))
            times.append(ms)
    print(f"{statistics.median(plans):.1f} {statistics.median(reloads):.1f}")
elif cmd == "check-time":  # check-time COUNT haproxy -c -f FILE: prints the median ms
    count, argv = int(sys.argv[2]), sys.argv[3:]
    times = []
    for _ in range(count):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append((time.perf_counter() - start) * 1000)
    print(f"{statistics.median(times):.1f}")
elif cmd == "paced":  # paced COUNT PER_SECOND socket PATH | signal PID: reloads on a fixed schedule
    count, rate, how, target = int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
    start, refused = time.monotonic(), 0
    for k in range(count):
        delay = start + k / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if how == "socket":
            _, answer = ask(target, "reload")
            refused += not answer.startswith("Success=1")
        else:
            os.kill(int(target), signal.SIGUSR2)
    if refused:
        print(f"# {refused} of {count} strata reloads did not succeed", file=sys.stderr)
elif cmd == "hold":  # hold PORT: listens on 127.0.0.1:PORT (no SO_REUSEPORT) until killed
    s = socket.socket()
    s.bind(("127.0.0.1", int(sys.argv[2])))
    s.listen()
    print("held", flush=True)
    while True:
        time.sleep(3600)
elif cmd == "wrk-rate":  # wrk-rate FILE: requests/s from wrk's output
    import re
    print(re.search(r"Requests/sec:\s+([0-9.]+)", open(sys.argv[2]).read()).group(1))
elif cmd == "median":  # median X...
    print(f"{statistics.median(float(x) for x in sys.argv[2:]):.0f}")
elif cmd == "wrk-failed":  # wrk-failed FILE: "failed total" from wrk's output
    import re
    out = open(sys.argv[2]).read()
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    total = int(m.group(1)) if (m := re.search(r"(\d+) requests in", out)) else 0
    print(errors + non2xx, total)
PY
tool() { python3 "$WORK/tool.py" "$@"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }

# Figures 1, 3 and 4: one strata process on the large configuration.
BIG=$WORK/big.cfg
SOCK=$WORK/admin.sock
tool generate "$BIG" "$SOCK" 1000 10
threads_cfg "$BIG"  # before the copy: the plan and failed-bind rounds rewrite the file from it
cp "$BIG" "$WORK/big.orig.cfg"
"$STRATA" -f "$BIG" 2>"$WORK/strata-big.log" &
S_PID=$!; PIDS+=($S_PID)
tool wait-socket "$SOCK"
echo "# strata runs the 1,000-frontend configuration (pid $S_PID)" >&2

tool reloads "$SOCK" 1 > /dev/null
sleep 0.5
rss_first=$(rss_kib "$S_PID")
read -r strata_ms strata_min < <(tool reloads "$SOCK" "$TIMED")
haproxy_ms=$(tool check-time 5 haproxy -c -f "$BIG")
# Figure 1c: each rollback restores the configuration of the generation before (the same file's).
read -r rollback_ms rollback_min < <(tool rollbacks "$SOCK" "$TIMED")
sleep 0.5
rss_tenth=$(rss_kib "$S_PID")  # after 1 + TIMED reloads: where RSS settles (two generations at once)
echo "# timed $TIMED reloads and $TIMED rollbacks; $((RSS_RELOADS - 1 - TIMED)) more for the RSS figure" >&2
tool reloads "$SOCK" $((RSS_RELOADS - 1 - TIMED)) > /dev/null
sleep 0.5
rss_last=$(rss_kib "$S_PID")

# Figure 1b: plans of the running configuration with every line moved, beside reloads of it.
read -r plan_ms plan_reload_ms < <(tool plan-vs-reload "$SOCK" "$TIMED" "$BIG" "$WORK/big.orig.cfg")

# A configuration that cannot bind: one more frontend on a port another socket holds.
BLOCKED_PORT=$(free_port)
python3 "$WORK/tool.py" hold "$BLOCKED_PORT" > "$WORK/hold.out" &  # not `tool`: $! must be python
PIDS+=($!)
for _ in $(seq 1 100); do grep -q held "$WORK/hold.out" 2>/dev/null && break; sleep 0.05; done
fds_before=$(fds "$S_PID")
{ cat "$WORK/big.orig.cfg"; printf 'frontend blocked\n    bind 127.0.0.1:%s\n    default_backend be0\n' "$BLOCKED_PORT"; } > "$WORK/blocked.cfg"
mv "$WORK/blocked.cfg" "$BIG"
tool reloads "$SOCK" "$FAILED" failure > /dev/null
fds_after=$(fds "$S_PID")
cp "$WORK/big.orig.cfg" "$BIG"
kill "$S_PID" 2>/dev/null; wait "$S_PID" 2>/dev/null || true

# Figure 2: failed requests during reloads under load, strata then HAProxy.
NGINX_PORT=$(free_port)
start_nginx "$NGINX_PORT"
proxy_config() { # PORT SOCKET
    cat <<CFG
global
    maxconn 4000
    stats socket $2 level admin
defaults
    mode $MODE
    timeout connect 5s
    timeout client 60s
    timeout server 60s
listen bench
    bind 127.0.0.1:$1
    server nginx 127.0.0.1:$NGINX_PORT
CFG
}
reload_failures() { # strata|haproxy -> "failed total"
    local who=$1 port pid wrk_pid
    port=$(free_port)
    proxy_config "$port" "$WORK/load-$who.sock" > "$WORK/load-$who.cfg"
    if [ "$who" = strata ]; then
        threads_cfg "$WORK/load-$who.cfg"
        "$STRATA" -f "$WORK/load-$who.cfg" 2>>"$WORK/strata-load.log" &
    else
        sed -i "s/^global/global\n    nbthread $THREADS/" "$WORK/load-$who.cfg"
        haproxy -W -db -f "$WORK/load-$who.cfg" 2>>"$WORK/haproxy-load.log" &
    fi
    pid=$!; PIDS+=($pid)
    wait_port "$port"
    wrk -t1 -c50 -d"$((RELOADS / 10 + 4))s" "http://127.0.0.1:$port/" > "$WORK/wrk-$who.out" 2>&1 &
    wrk_pid=$!
    sleep 2
    if [ "$who" = strata ]; then
        tool paced "$RELOADS" 10 socket "$WORK/load-$who.sock"
    else
        tool paced "$RELOADS" 10 signal "$pid"
    fi
    wait "$wrk_pid" || true
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
    tool wrk-failed "$WORK/wrk-$who.out"
}
echo "# $RELOADS reloads at 10/s under wrk, strata then haproxy (about $((2 * (RELOADS / 10 + 5))) s)" >&2
read -r s_failed s_total < <(reload_failures strata)
read -r h_failed h_total < <(reload_failures haproxy)

# Figure 2b: a canary at 10% under keep-alive load beside none, alternating.
canary_rates() {
    local port pid answer steady=() canary=()
    port=$(free_port)
    proxy_config "$port" "$WORK/canary.sock" | sed 's/^    mode .*/    mode http/' > "$WORK/canary.cfg"
    threads_cfg "$WORK/canary.cfg"
    "$STRATA" -f "$WORK/canary.cfg" 2>>"$WORK/strata-canary.log" &
    pid=$!; PIDS+=($pid)
    wait_port "$port"
    tool wait-socket "$WORK/canary.sock"
    for _ in $(seq 1 "$CANARY_ROUNDS"); do
        wrk -t1 -c50 -d"${CANARY_SECONDS}s" "http://127.0.0.1:$port/" > "$WORK/wrk-steady.out" 2>&1
        steady+=("$(tool wrk-rate "$WORK/wrk-steady.out")")
        answer=$(tool ask "$WORK/canary.sock" "reload canary 10")
        [[ $answer == Success=1* ]] || { echo "canary refused: $answer" >&2; exit 1; }
        wrk -t1 -c50 -d"${CANARY_SECONDS}s" "http://127.0.0.1:$port/" > "$WORK/wrk-canary.out" 2>&1
        canary+=("$(tool wrk-rate "$WORK/wrk-canary.out")")
        answer=$(tool ask "$WORK/canary.sock" "canary promote")
        [[ $answer == Success=1* ]] || { echo "promote refused: $answer" >&2; exit 1; }
    done
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
    echo "$(tool median "${steady[@]}") $(tool median "${canary[@]}")"
}
echo "# HTTP keep-alive load with and without a canary at 10%, $CANARY_ROUNDS rounds of 2 x $CANARY_SECONDS s" >&2
read -r steady_rps canary_rps < <(canary_rates)

echo "reload.sh: $(nproc) cores, $(haproxy -v | head -1 | awk '{print "haproxy", $3}')"
printf '%-48s strata %9s  haproxy -c %9s  ratio %s (targets <= 50 ms and <= 0.25; strata min %s)\n' \
    "reload to Success=1, 1,000 fe/10,000 srv, ms" "$strata_ms" "$haproxy_ms" "$(ratio "$strata_ms" "$haproxy_ms")" "$strata_min"
printf '%-48s plan   %9s  reload     %9s  ratio %s (target <= 1)\n' \
    "reload plan to Success=1, 1,000 fe/10,000 srv, ms" "$plan_ms" "$plan_reload_ms" "$(ratio "$plan_ms" "$plan_reload_ms")"
printf '%-48s strata %9s  reload     %9s  ratio %s (target <= 5 ms; strata min %s)\n' \
    "rollback to Success=1, 1,000 fe/10,000 srv, ms" "$rollback_ms" "$strata_ms" "$(ratio "$rollback_ms" "$strata_ms")" "$rollback_min"
printf '%-48s strata %9s  haproxy    %9s  of %s and %s requests (target 0)\n' \
    "failed requests, $RELOADS reloads at 10/s, mode $MODE" "$s_failed" "$h_failed" "$s_total" "$h_total"
printf '%-48s steady %9s  canary 10%% %8s  ratio %s (target >= 0.98)\n' \
    "HTTP keep-alive req/s, canary at 10%, wrk -c50" "$steady_rps" "$canary_rps" "$(ratio "$canary_rps" "$steady_rps")"
mib() { python3 -c "print(f'{$1 / 1024:.1f}')"; }
printf '%-48s after 1 %8s  after %-5s %8s  ratio %s (target within 10%%; after %s: %s)\n' \
    "strata RSS, 1,000 fe/10,000 srv, MiB" "$(mib "$rss_first")" "$RSS_RELOADS" "$(mib "$rss_last")" \
    "$(ratio "$rss_last" "$rss_first")" "$((TIMED + 1))" "$(mib "$rss_tenth")"
printf '%-48s before %9s  after %-4s %9s  (target equal)\n' \
    "strata open fds, $FAILED failed reloads" "$fds_before" "$FAILED" "$fds_after"
