#!/usr/bin/env bash
# Connection churn: server CPU per connection (connect, one 128-byte round trip, close) for the
# one-thread echo servers of `echo-server`, each pinned to CPU 1, loaded by `churn` on CPU 0.
#
#   benches/churn-bench.sh [-r ROUNDS] [-d SECS] [-t THREADS] [-x 'LABEL|BINARY|NAME']...
#
# Default variants: coring and tokio from target/release/echo-server. -x adds one: an
# echo-server binary built elsewhere (say, from an older commit) and the server NAME to run,
# e.g. -x 'old|/tmp/old/echo-server|coring'. The order of the variants rotates each round.
# Server CPU is utime+stime from /proc/PID/stat at churn's window-start and window-end; the
# figure is microseconds of server CPU per connection served in the window. Medians over
# rounds. Run `cargo build --release` in benches/ first.
#
# Bounded: each run lasts 1 s of warm-up plus SECS, every wait has a timeout, and the server
# is killed after each run and on exit.
set -euo pipefail

ROUNDS=5
SECS=3
THREADS=8
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN="$ROOT/target/release"
VARIANTS=("coring|$BIN/echo-server|coring" "tokio|$BIN/echo-server|tokio")
EXTRA=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        -r) ROUNDS=$2; shift 2 ;;
        -d) SECS=$2; shift 2 ;;
        -t) THREADS=$2; shift 2 ;;
        -x) EXTRA+=("$2"); shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "churn-bench: unknown argument $1" >&2; exit 2 ;;
    esac
done
VARIANTS+=("${EXTRA[@]}")
[[ -x "$BIN/churn" ]] || { echo "churn-bench: build benches first ($BIN/churn)" >&2; exit 1; }

TICK=$(getconf CLK_TCK)
WORK=$(mktemp -d /tmp/churn-bench.XXXXXX)
SERVER_PID=""
cleanup() {
    [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run LABEL BINARY NAME: prints "LABEL conns_per_s us_per_conn"
run() {
    local label=$1 binary=$2 name=$3 addr="" start="" end="" result=""
    taskset -c 1 "$binary" "$name" 127.0.0.1:0 >"$WORK/server.out" 2>"$WORK/server.err" &
    SERVER_PID=$!
    for _ in $(seq 100); do
        addr=$(sed -n 's/^listening on //p' "$WORK/server.out")
        [[ -n "$addr" ]] && break
        sleep 0.1
    done
    [[ -n "$addr" ]] || { echo "churn-bench: $label did not start" >&2; cat "$WORK/server.err" >&2; exit 1; }
    while read -r line; do
        case "$line" in
            window-start) start=$(cpu_ticks "$SERVER_PID") ;;
            window-end) end=$(cpu_ticks "$SERVER_PID") ;;
            result*) result=$line ;;
        esac
    done < <(timeout $((SECS + 20)) taskset -c 0 "$BIN/churn" --addr "$addr" \
        --threads "$THREADS" --secs "$SECS")
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
    local conns per_s
    conns=$(sed -n 's/.*conns=\([0-9]*\).*/\1/p' <<<"$result")
    per_s=$(sed -n 's/.*per_s=\([0-9]*\).*/\1/p' <<<"$result")
    awk -v l="$label" -v c="$conns" -v p="$per_s" -v t=$((end - start)) -v hz="$TICK" \
        'BEGIN { printf "%s %d %.2f\n", l, p, t / hz * 1e6 / c }'
}

n=${#VARIANTS[@]}
for round in $(seq 0 $((ROUNDS - 1))); do
    for i in $(seq 0 $((n - 1))); do
        IFS='|' read -r label binary name <<<"${VARIANTS[$(((i + round) % n))]}"
        run "$label" "$binary" "$name" | tee -a "$WORK/all"
    done
done
echo
echo "medians over $ROUNDS rounds ($THREADS client threads, ${SECS} s windows):"
printf '%-12s %12s %18s\n' variant conns/s "server CPU us/conn"
for v in "${VARIANTS[@]}"; do
    label=${v%%|*}
    rates=$(awk -v l="$label" '$1 == l { print $2 }' "$WORK/all" | sort -n)
    cpus=$(awk -v l="$label" '$1 == l { print $3 }' "$WORK/all" | sort -n)
    median() { awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
    printf '%-12s %12d %18.2f\n' "$label" "$(median <<<"$rates")" "$(median <<<"$cpus")"
done
