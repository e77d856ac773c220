# Shared helpers for the bench scripts: install what is compared against, start nginx, measure
# a process's CPU time from /proc. Sourced, not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/strata-bench.XXXXXX)}
chmod 755 "$WORK"  # nginx workers read the files as their own user
# STRATA=/path/to/strata: measure that binary (another commit's build) instead of this tree's.
STRATA_GIVEN=${STRATA:-}
STRATA=${STRATA:-$ROOT/.build/release/strata}
PIDS=()
# THREADS=N: strata and HAProxy both run N event loops (nbthread N); 1 by default.
THREADS=${THREADS:-1}

# threads_cfg FILE: gives the configuration in FILE `nbthread $THREADS` (once).
threads_cfg() {
    grep -q '^    nbthread ' "$1" || sed -i "s/^global/global\n    nbthread $THREADS/" "$1"
}

cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    sleep 0.2
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

need() {
    local missing=()
    for tool in "$@"; do
        case $tool in
            haproxy) command -v haproxy >/dev/null || missing+=(haproxy) ;;
            nginx) command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx) ;;
            wrk) command -v wrk >/dev/null || missing+=(wrk) ;;
            curl) command -v curl >/dev/null || missing+=(curl) ;;
        esac
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "# installing ${missing[*]}" >&2
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    fi
}

build_strata() {
    [ -n "$STRATA_GIVEN" ] || (cd "$ROOT" && swift build -c release >&2)
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() {
    for _ in $(seq 1 200); do
        if (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "port $1 never opened" >&2
    return 1
}

# start_nginx PORT: one worker, keep-alive, a tiny answer at / and a 1 GiB file at /big.
start_nginx() {
    local port=$1
    mkdir -p "$WORK/nginx/html" "$WORK/nginx/logs"
    [ -f "$WORK/nginx/html/big" ] || truncate -s 1G "$WORK/nginx/html/big"
    cat > "$WORK/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    sendfile on;
    server {
        listen 127.0.0.1:$port;
        root $WORK/nginx/html;
        location = / { return 200 "ok\n"; }
    }
}
NGINX
    local bin; bin=$(command -v nginx || echo /usr/sbin/nginx)
    "$bin" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
    PIDS+=($!)
    wait_port "$port"
}

# cpu_ticks PID: utime+stime in clock ticks.
cpu_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}

clk_tck() { getconf CLK_TCK; }

ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}' if b else 'inf')" "$1" "$2"; }
