#!/usr/bin/env bash
# A TCP proxy in front of redis-server, loaded by redis-benchmark: proxy CPU per request and
# io-wq threads for the modes of the `proxy` binary (coring::io::copy, a hand-written
# read/write loop on coring, tokio's copy_bidirectional).
#
#   benches/proxy-bench.sh [-r ROUNDS] [-n REQUESTS] [-c CONNS] [-P PIPELINE] [-i IDLE]
#                          [-x 'LABEL|BINARY|MODE']...
#
# Default variants: coring-copy, coring-loop and tokio-bidi from target/release/proxy; -x adds
# one built elsewhere, e.g. -x 'old-copy|/tmp/old/proxy|coring-copy'. Each round, for each
# variant (the order rotates): start the proxy pinned to CPU 1, run
#   taskset -c 0 redis-benchmark -p PROXY -t set,get -n REQUESTS -c CONNS -P PIPELINE -q
# (redis-server on CPU 0 too), sample the proxy's utime+stime from /proc/PID/stat around it,
# then hold IDLE idle connections through the proxy (redis-benchmark -I) for 2 s and read the
# proxy's highest io-wq thread count. Reports medians over rounds: requests/s (the mean of
# SET and GET), proxy CPU microseconds per request, and the io-wq threads seen under load and
# with the idle connections. Needs redis-server and redis-benchmark (apt: redis-server,
# redis-tools); run `cargo build --release` in benches/ first.
#
# Bounded: redis-benchmark runs under a 120 s timeout, the idle phase lasts 2 s, and the
# proxy and redis-server are killed after each run and on exit.
set -euo pipefail

ROUNDS=3
REQUESTS=200000
CONNS=50
PIPELINE=1
IDLE=2000
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN="$ROOT/target/release"
VARIANTS=("coring-copy|$BIN/proxy|coring-copy" "coring-loop|$BIN/proxy|coring-loop"
          "tokio-bidi|$BIN/proxy|tokio-bidi")
while [[ $# -gt 0 ]]; do
    case "$1" in
        -r) ROUNDS=$2; shift 2 ;;
        -n) REQUESTS=$2; shift 2 ;;
        -c) CONNS=$2; shift 2 ;;
        -P) PIPELINE=$2; shift 2 ;;
        -i) IDLE=$2; shift 2 ;;
        -x) VARIANTS+=("$2"); shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "proxy-bench: unknown argument $1" >&2; exit 2 ;;
    esac
done
for tool in redis-server redis-benchmark taskset; do
    command -v "$tool" >/dev/null || { echo "proxy-bench: $tool not found" >&2; exit 1; }
done

TICK=$(getconf CLK_TCK)
WORK=$(mktemp -d /tmp/proxy-bench.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

REDIS_PORT=$((20000 + RANDOM % 20000))
taskset -c 0 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --maxclients 10000 >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run LABEL BINARY MODE: prints "LABEL req_per_s us_per_req iouwrk_load iouwrk_idle"
run() {
    local label=$1 binary=$2 mode=$3 addr="" port before after out
    taskset -c 1 "$binary" "$mode" 127.0.0.1:0 "127.0.0.1:$REDIS_PORT" \
        >"$WORK/proxy.out" 2>"$WORK/proxy.err" &
    local pid=$!
    for _ in $(seq 100); do
        addr=$(sed -n 's/^listening on //p' "$WORK/proxy.out")
        [[ -n "$addr" ]] && break
        sleep 0.1
    done
    [[ -n "$addr" ]] || { echo "proxy-bench: $label did not start" >&2; cat "$WORK/proxy.err" >&2; exit 1; }
    port=${addr##*:}
    before=$(cpu_ticks "$pid")
    out=$(timeout 120 taskset -c 0 redis-benchmark -p "$port" -t set,get -n "$REQUESTS" \
        -c "$CONNS" -P "$PIPELINE" -q 2>/dev/null | tr '\r' '\n')
    after=$(cpu_ticks "$pid")
    local load_peak
    load_peak=$(sed -n 's/^iou-wrk peak //p' "$WORK/proxy.err" | tail -1)
    timeout 2 taskset -c 0 redis-benchmark -p "$port" -I -c "$IDLE" >/dev/null 2>&1 || true
    local idle_peak
    idle_peak=$(sed -n 's/^iou-wrk peak //p' "$WORK/proxy.err" | tail -1)
    kill "$pid"; wait "$pid" 2>/dev/null || true
    local rps
    rps=$(awk '/requests per second/ { for (i = 1; i <= NF; i++) if ($i == "requests") { s += $(i - 1); n++ } }
        END { if (n) printf "%.0f", s / n; else print 0 }' <<<"$out")
    awk -v l="$label" -v r="$rps" -v t=$((after - before)) -v hz="$TICK" -v n=$((2 * REQUESTS)) \
        -v lp="${load_peak:-0}" -v ip="${idle_peak:-0}" \
        'BEGIN { printf "%s %d %.2f %d %d\n", l, r, t / hz * 1e6 / n, lp, ip }'
}

n=${#VARIANTS[@]}
for round in $(seq 0 $((ROUNDS - 1))); do
    for i in $(seq 0 $((n - 1))); do
        IFS='|' read -r label binary mode <<<"${VARIANTS[$(((i + round) % n))]}"
        run "$label" "$binary" "$mode" | tee -a "$WORK/all"
    done
done
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo
echo "medians over $ROUNDS rounds (redis-benchmark -t set,get -n $REQUESTS -c $CONNS -P $PIPELINE; $IDLE idle):"
printf '%-14s %12s %20s %16s %16s\n' variant req/s "proxy CPU us/req" "iou-wrk (load)" "iou-wrk (idle)"
for v in "${VARIANTS[@]}"; do
    label=${v%%|*}
    col() { awk -v l="$label" -v c="$1" '$1 == l { print $c }' "$WORK/all" | median; }
    printf '%-14s %12s %20s %16s %16s\n' "$label" "$(col 2)" "$(col 3)" "$(col 4)" "$(col 5)"
done
