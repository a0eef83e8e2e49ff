#!/usr/bin/env bash
# Two tokengate builds side by side, same generator, same run: the before/after measurement of a
# hot-path change (bench/README.md records its numbers).
#
#   bash bench/ab.sh DIR_A DIR_B      # each DIR holds a `tokengate` and a `tg-loadgen` binary
#   USERS=200000 ROUNDS=3 SECS=8 RATE=4000 bash bench/ab.sh /tmp/tg-base target/release
#
# Populates one SQLite database with build A, copies it (and the master key) for build B, starts
# both servers on free loopback ports, warms both caches (every user once), then alternates A/B:
# closed-loop peak runs (CONC outstanding, Message-Authenticator) and open-loop runs at RATE/s.
# Each server has its own database copy, so both can accept the same user's code in the same
# TOTP step. Prints medians and B/A ratios; every process it started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

A=$(cd "$1" && pwd)
B=$(cd "$2" && pwd)
USERS=${USERS:-200000}
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-8}
RATE=${RATE:-3000}
CONC=${CONC:-64}
THREADS=${THREADS:-2}
SECRET=testing123

WORK=$(mktemp -d /tmp/tg-ab.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }
free_port() {
  python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
config() { # config NAME PORT
  mkdir -p "$WORK/$1"
  cat >"$WORK/$1/tokengate.toml" <<TOML
version = 1
[server]
data_dir = "$WORK/$1/data"
dictionary = "$PWD/dictionaries/dictionary"
[radius]
listen = ["127.0.0.1:$2"]
[[client]]
name = "bench"
address = "127.0.0.1/32"
secret = "$SECRET"
TOML
}
PA=$(free_port)
PB=$(free_port)
while [ "$PB" = "$PA" ]; do PB=$(free_port); done
config a "$PA"
config b "$PB"
say "populating $USERS users with build A"
"$A/tokengate" --config "$WORK/a/tokengate.toml" populate --users "$USERS" \
  --secrets-out "$WORK/secrets.csv" --json >"$WORK/populate.json"
cp -r "$WORK/a/data" "$WORK/b/data"

RUST_LOG=warn "$A/tokengate" --config "$WORK/a/tokengate.toml" serve 2>"$WORK/a.log" &
PID_A=$!
PIDS+=("$PID_A")
RUST_LOG=warn "$B/tokengate" --config "$WORK/b/tokengate.toml" serve 2>"$WORK/b.log" &
PID_B=$!
PIDS+=("$PID_B")

gen() { # gen a|b OUT ARGS…
  local who=$1 out=$2 port pid
  shift 2
  if [ "$who" = a ]; then port=$PA pid=$PID_A; else port=$PB pid=$PID_B; fi
  "$A/tg-loadgen" --secret "$SECRET" --threads "$THREADS" --json --server "127.0.0.1:$port" \
    --server-pid "$pid" --secrets "$WORK/secrets.csv" --state "$WORK/cursor_$who" \
    --message-authenticator "$@" >"$out" 2>>"$WORK/runs.log"
}
for who in a b; do
  for _ in $(seq 1 50); do
    n=$(gen "$who" /dev/stdout --unknown --requests 3 --concurrency 1 --timeout-ms 200 2>/dev/null |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"]["reject"])' || echo 0)
    [ "$n" = 3 ] && break
    sleep 0.2
  done
  [ "$n" = 3 ] || { echo "build $who does not answer"; cat "$WORK/$who.log"; exit 1; }
done
say "warm-up: every user once on each server"
gen a "$WORK/warm_a.json" --concurrency "$CONC" --requests "$USERS" --timeout-ms 5000 || true
gen b "$WORK/warm_b.json" --concurrency "$CONC" --requests "$USERS" --timeout-ms 5000 || true
sleep $((31 - $(date +%s) % 30))
for r in $(seq 1 "$ROUNDS"); do
  for who in a b; do
    say "round $r/$ROUNDS build $who: peak ($CONC outstanding, ${SECS} s), then $RATE/s open loop"
    gen "$who" "$WORK/peak_${who}_$r.json" --concurrency "$CONC" --duration "$SECS"
    gen "$who" "$WORK/rate_${who}_$r.json" --rate "$RATE" --duration "$SECS"
  done
done
python3 - "$WORK" "$ROUNDS" "$USERS" <<'PY'
import json, statistics, sys
w, n, users = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def med(kind, who, f):
    vals = []
    for r in range(1, n + 1):
        x = json.load(open(f"{w}/{kind}_{who}_{r}.json"))
        if x["counts"]["accept"] + x["counts"]["reject"] > 0 and f(x) is not None:
            vals.append(f(x))
    return statistics.median(vals) if vals else float("nan")
cpu = lambda x: x["server_cpu"]["us_per_request"] if x.get("server_cpu") else None
rows = [
    ("peak throughput (req/s)", "peak", lambda x: x["requests_per_s"]),
    ("server CPU per request (us)", "peak", cpu),
    ("peak p50 (us)", "peak", lambda x: x["latency"]["p50_us"]),
    ("peak p99.9 (us)", "peak", lambda x: x["latency"]["p999_us"]),
    ("open-loop p50 (us)", "rate", lambda x: x["latency"]["p50_us"]),
    ("open-loop p99 (us)", "rate", lambda x: x["latency"]["p99_us"]),
    ("open-loop p99.9 (us)", "rate", lambda x: x["latency"]["p999_us"]),
    ("open-loop max (us)", "rate", lambda x: x["latency"]["max_us"]),
    ("open-loop timeouts", "rate", lambda x: x["counts"]["timeouts"]),
]
print(f"\nbuild A vs build B: {users} users, {n} rounds, medians")
print(f"{'measure':32} {'A':>12} {'B':>12} {'B/A':>7}")
for name, kind, f in rows:
    a, b = med(kind, "a", f), med(kind, "b", f)
    print(f"{name:32} {a:12.1f} {b:12.1f} {b / a if a else float('nan'):7.2f}")
PY
