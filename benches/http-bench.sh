#!/usr/bin/env bash
# hyper hello-world over HTTP/1.1 keep-alive: coring (examples/http.rs) against the same
# service on tokio's current-thread runtime (examples/http_tokio.rs), loaded with wrk.
#
#   benches/http-bench.sh [-r ROUNDS] [-d SECS] [-c CONNS] [-o OUTDIR] [--no-write]
#                         [-x 'LABEL|PATH|ARGS']...
#
# -x adds a variant: a server binary built elsewhere (say, from a patched copy of the tree),
# run and measured exactly like the others, e.g. -x 'patched|/tmp/copy/target/release/examples/http|--buf-ring'.
#
# Builds the two examples (release), then for each round starts every variant in turn (the
# order rotates from round to round), each server pinned to CPU 1 and wrk to CPU 0:
#   taskset -c 1 target/release/examples/NAME 127.0.0.1:0 [ARGS]
#   taskset -c 0 wrk -t1 -cCONNS -dSECS --latency http://127.0.0.1:PORT/
# after a 1 s wrk warm-up on the same server. Server CPU is utime+stime from /proc/PID/stat
# around the measured run; wrk's from its parent's cutime+cstime; "others" is the rest of
# the machine's busy time in /proc/stat over the run, in CPUs (0.00 = nobody else ran).
# Each round runs under `flock /tmp/coring-bench.lock`, so it never overlaps another
# benchmark that takes the lock. Reports medians over rounds; ratios to tokio are medians of
# per-round ratios. Writes OUTDIR/http.md and OUTDIR/http.csv (default docs/bench).
#
# Bounded: every wait has a timeout (listen 10 s, wrk SECS+15 s, the lock 20 min), and the
# servers are killed on exit. With the defaults (5 rounds x 4 variants x (1+5) s) about
# 2.5 minutes of measurement.
set -euo pipefail

ROUNDS=5
SECS=5
CONNS=64
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="$ROOT/docs/bench"
WRITE=1
LOCK=/tmp/coring-bench.lock
SERVER_CPU=1
LOAD_CPU=0
# label|binary|arguments. The first is the baseline of the ratios.
VARIANTS=(
    "tokio|http_tokio|"
    "coring|http|"
    "coring buf-ring|http|--buf-ring"
    "coring buf-ring register|http|--buf-ring --register"
)

INVOCATION="benches/http-bench.sh${*:+ $(printf '%q ' "$@")}"
while [[ $# -gt 0 ]]; do
    case "$1" in
        -r) ROUNDS=$2; shift 2 ;;
        -d) SECS=$2; shift 2 ;;
        -c) CONNS=$2; shift 2 ;;
        -o) OUT=$2; shift 2 ;;
        -x) VARIANTS+=("$2"); shift 2 ;;
        --no-write) WRITE=0; shift ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "http-bench: unknown argument $1" >&2; exit 2 ;;
    esac
done

for tool in wrk taskset flock awk; do
    command -v "$tool" >/dev/null || { echo "http-bench: $tool not found" >&2; exit 1; }
done

TICK=$(getconf CLK_TCK)
NCPU=$(nproc)
WORK=$(mktemp -d /tmp/http-bench.XXXXXX)
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

exec 9>"$LOCK"
take_lock() {
    if ! flock -n 9; then
        echo "http-bench: waiting for $LOCK (another benchmark is running)" >&2
        flock -w 1200 9 || { echo "http-bench: gave up waiting for $LOCK" >&2; exit 1; }
    fi
}

cd "$ROOT"
BUILD="cargo build --release --features hyper,tokio-example --example http --example http_tokio"
echo "+ $BUILD" >&2
take_lock
$BUILD >&2
flock -u 9

# utime+stime and cutime+cstime (ticks) of a process: fields 14-17 of /proc/PID/stat,
# counted after the parenthesised command name.
proc_times() { # pid -> "self children"
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    awk '{ print $12 + $13, $14 + $15 }' <<<"$stat"
}

# Busy and total ticks of all CPUs, and steal ticks (the first line of /proc/stat).
machine_times() { # -> "busy total steal"
    awk '/^cpu / { busy = $2 + $3 + $4 + $7 + $8 + $9; total = busy + $5 + $6;
                   print busy, total, $9; exit }' /proc/stat
}

# wrk's latency figure ("385.00us", "2.08ms", "1.2s") in microseconds.
to_us() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); print v + 0 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); print v * 1000 }
        else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000000 }
        else print "nan" }'
}

start_server() { # binary args... -> sets SERVER_PID, PORT
    local bin=$1; shift
    local log="$WORK/server.log"
    : >"$log"
    [[ $bin == */* ]] || bin="target/release/examples/$bin"
    taskset -c "$SERVER_CPU" "$bin" 127.0.0.1:0 "$@" >"$log" 2>&1 &
    SERVER_PID=$!
    PORT=""
    for _ in $(seq 100); do
        PORT=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$log" | head -1 | sed 's/.*://') || true
        [[ -n "$PORT" ]] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "http-bench: $bin $* did not start listening:" >&2
    cat "$log" >&2
    exit 1
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

RAW="$WORK/raw.csv"
echo "round,variant,order,requests,rps,srv_cpu_us_per_req,srv_util,wrk_cpu_us_per_req,p50_us,p99_us,others_cpus,steal_pct,errors" >"$RAW"

measure() { # round order label bin args
    local round=$1 order=$2 label=$3 bin=$4 args=$5
    # shellcheck disable=SC2086
    start_server "$bin" $args
    local url="http://127.0.0.1:$PORT/"
    timeout 20 taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d1s "$url" >/dev/null
    local s0 m0 s1 m1 wrk_children out="$WORK/wrk.out"
    s0=$(proc_times "$SERVER_PID")
    m0=$(machine_times)
    wrk_children=$(
        timeout $((SECS + 15)) taskset -c "$LOAD_CPU" \
            wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "$url" >"$out"
        # This subshell's pid, taken here: a pipeline's stages and `$(...)` are subshells.
        me=$BASHPID
        mine=$(proc_times "$me")
        echo "${mine#* }"
    )
    s1=$(proc_times "$SERVER_PID")
    m1=$(machine_times)
    stop_server
    local requests rps p50 p99 errors
    requests=$(awk '/requests in/ { print $1; exit }' "$out")
    rps=$(awk '/^Requests\/sec:/ { print $2; exit }' "$out")
    p50=$(to_us "$(awk '$1 == "50%" { print $2; exit }' "$out")")
    p99=$(to_us "$(awk '$1 == "99%" { print $2; exit }' "$out")")
    errors=$(awk '/Socket errors|Non-2xx/ { sub(/^ +/, ""); printf "%s; ", $0 }' "$out")
    [[ -n "$requests" && -n "$rps" ]] || { echo "http-bench: wrk failed:" >&2; cat "$out" >&2; exit 1; }
    awk -v round="$round" -v label="$label" -v order="$order" -v req="$requests" \
        -v rps="$rps" -v p50="$p50" -v p99="$p99" -v errors="${errors%; }" \
        -v s0="${s0%% *}" -v s1="${s1%% *}" -v wrk="$wrk_children" \
        -v m0="$m0" -v m1="$m1" -v tick="$TICK" -v ncpu="$NCPU" 'BEGIN {
        split(m0, a, " "); split(m1, b, " ")
        busy = b[1] - a[1]; elapsed = (b[2] - a[2]) / ncpu; steal = b[3] - a[3]
        srv = s1 - s0
        others = (busy - srv - wrk) / elapsed; if (others < 0) others = 0
        printf "%d,%s,%d,%d,%.0f,%.3f,%.3f,%.3f,%.1f,%.1f,%.2f,%.1f,%s\n", round, label, order,
            req, rps, srv / tick / req * 1e6, srv / elapsed, wrk / tick / req * 1e6, p50, p99,
            others, 100 * steal / (elapsed * ncpu), errors
    }' | tee -a "$RAW" >&2
}

NV=${#VARIANTS[@]}
echo "round,variant,order,requests,rps,srv_cpu_us_per_req,srv_util,wrk_cpu_us_per_req,p50_us,p99_us,others_cpus,steal_pct,errors" >&2
for ((round = 0; round < ROUNDS; round++)); do
    take_lock
    for ((k = 0; k < NV; k++)); do
        i=$(((k + round) % NV))
        IFS='|' read -r label bin args <<<"${VARIANTS[$i]}"
        measure "$round" "$k" "$label" "$bin" "$args"
    done
    flock -u 9
done

# Medians over rounds; ratios to the first variant are medians of per-round ratios: requests/s
# as variant / baseline, CPU per request as baseline / variant (above 1: less CPU than it).
SUMMARY="$WORK/summary.csv"
BASE=${VARIANTS[0]%%|*}
awk -F, -v base="$BASE" -v order="$(printf '%s\n' "${VARIANTS[@]}" | cut -d'|' -f1 | paste -sd'|')" '
    function median(list,   v, n, i, j, t) {
        n = split(list, v, " ")
        for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j-1] + 0 > v[j] + 0; j--) {
            t = v[j]; v[j] = v[j-1]; v[j-1] = t }
        if (n == 0) return "nan"
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    NR == 1 { next }
    { rps[$2] = rps[$2] " " $5; cpu[$2] = cpu[$2] " " $6; util[$2] = util[$2] " " $7
      p99[$2] = p99[$2] " " $10; oth[$2] = oth[$2] " " $11; runs[$2]++
      if ($11 + 0 > maxoth[$2] + 0) maxoth[$2] = $11
      r_rps[$1, $2] = $5; r_cpu[$1, $2] = $6; rounds[$1] = 1 }
    END {
        print "variant,runs,rps,rps_vs_" base ",srv_cpu_us_per_req,cpu_vs_" base ",p99_us,srv_util,others_cpus_median,others_cpus_max"
        n = split(order, names, "|")
        for (k = 1; k <= n; k++) {
            v = names[k]; qr = ""; qc = ""
            for (r in rounds) if ((r, v) in r_rps && (r, base) in r_rps) {
                qr = qr " " r_rps[r, v] / r_rps[r, base]; qc = qc " " r_cpu[r, base] / r_cpu[r, v] }
            printf "%s,%d,%.0f,%.3f,%.3f,%.3f,%.0f,%.2f,%.2f,%.2f\n", v, runs[v], median(rps[v]),
                median(qr), median(cpu[v]), median(qc), median(p99[v]), median(util[v]),
                median(oth[v]), maxoth[v]
        }
    }' "$RAW" >"$SUMMARY"

DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
KERNEL=$(uname -r)
CPUNAME=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " + uncommitted changes" || true)
CMD="${INVOCATION% }"
TABLE=$(awk -F, 'NR == 1 { next } {
    printf "| %s | %s | %.1fk | %.2fx | %.2f | %.2fx | %.0f | %.0f%% | %.2f (max %.2f) |\n",
        $1, $2, $3 / 1000, $4, $5, $6, $7, 100 * $8, $9, $10 }' "$SUMMARY")
HEADER="| server | runs | requests/s | vs tokio | server CPU us/request | CPU vs tokio | p99 us | server util | others' CPUs |
|---|---|---|---|---|---|---|---|---|"

echo
echo "$HEADER"
echo "$TABLE"

if [[ $WRITE == 1 ]]; then
    mkdir -p "$OUT"
    {
        echo "# hyper hello-world, $DATE, kernel $KERNEL, $NCPU CPUs ($CPUNAME)"
        echo "# command: $CMD (coring at $COMMIT$DIRTY)"
        echo "# $ROUNDS round(s), variants interleaved and rotated; server on CPU $SERVER_CPU, wrk -t1 -c$CONNS -d${SECS}s on CPU $LOAD_CPU after a 1 s warm-up"
        cat "$RAW"
    } >"$OUT/http.csv"
    {
        echo "# HTTP/1.1 hello-world with hyper: coring vs tokio"
        echo
        echo "$DATE, kernel $KERNEL, $NCPU CPUs ($CPUNAME), coring at $COMMIT$DIRTY."
        echo
        echo '```sh'
        echo "$CMD"
        echo '```'
        echo
        echo "Each server is \`taskset -c $SERVER_CPU target/release/examples/NAME 127.0.0.1:0 [ARGS]\`"
        echo "(one thread), loaded by \`taskset -c $LOAD_CPU wrk -t1 -c$CONNS -d${SECS}s --latency\` after"
        echo "a 1 s warm-up; $ROUNDS rounds, the variants interleaved in an order that rotates each"
        echo "round. Medians over rounds; \"vs tokio\" is the median of per-round ratios (requests/s:"
        echo "variant / tokio; CPU: tokio / variant, so above 1 means cheaper than tokio). Server CPU"
        echo "is utime+stime from \`/proc/PID/stat\` around the run over wrk's request count; server"
        echo "util is that CPU time over the run's length; \"others' CPUs\" is the machine's busy time"
        echo "in \`/proc/stat\` minus the server's and wrk's, in CPUs (0 = a quiet machine; on 2 CPUs"
        echo "anything above ~0.1 means another job shared the cores and throughput is not comparable"
        echo "between rounds)."
        echo
        echo "Variants: \`tokio\` = \`http_tokio\` (hyper-util \`TokioIo\`/\`TokioTimer\`); \`coring\` ="
        echo "\`http\` (\`stream.compat()\`); \`buf-ring\` = \`http --buf-ring\` (\`Compat::with_buf_ring\`,"
        echo "one multishot receive per connection on a shared provided-buffer ring); \`register\` ="
        echo "\`--register\` (each accepted stream in the ring's file table first)."
        echo
        echo "$HEADER"
        echo "$TABLE"
        echo
        echo "Per round (\`http.csv\`):"
        echo
        echo "| round | server | order | requests/s | server CPU us/req | server util | wrk CPU us/req | p50 us | p99 us | others' CPUs | steal % |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|"
        awk -F, 'NR == 1 { next } { printf "| %s | %s | %s | %s | %s | %.0f%% | %s | %s | %s | %s | %s |\n",
            $1, $2, $3, $5, $6, 100 * $7, $8, $9, $10, $11, $12 }' "$RAW"
    } >"$OUT/http.md"
    echo "wrote $OUT/http.md and $OUT/http.csv" >&2
fi
