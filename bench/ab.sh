#!/usr/bin/env bash
# Two tokengate builds side by side, same generator, same run: the before/after measurement of a
# hot-path change (bench/README.md records its numbers).
#
#   bash bench/ab.sh DIR_A DIR_B      # each DIR holds a `tokengate` and a `tg-loadgen` binary
#   USERS=200000 ROUNDS=3 SECS=8 RATE=4000 bash bench/ab.sh /tmp/tg-base target/release
#   MODE=hotp bash bench/ab.sh DIR_A DIR_B   # HOTP tokens (default: MODE=totp)
#
# Populates one SQLite database with build A, copies it (and the master key) for build B, starts
# both servers on free loopback ports, warms both caches (every user once), then alternates A/B:
# closed-loop peak runs (CONC outstanding, Message-Authenticator) and open-loop runs at RATE/s.
# Each server has its own database copy, so both can accept the same user's code in the same
# TOTP step (HOTP: each server's counters are kept in a state file of its own). MODE=hotp needs
# `populate --mode` and a HOTP-capable tg-loadgen: taken from build A when it has them, else
# from build B (the older build then only serves). Prints medians and B/A ratios; every process
# it started is stopped on exit.
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
MODE=${MODE:-totp}
SECRET=testing123
case "$MODE" in hotp | totp) ;; *) echo "MODE must be hotp or totp"; exit 1 ;; esac
# The build whose tools populate and generate (A, unless it predates HOTP).
TOOLS=$A
if [ "$MODE" = hotp ]; then
  populate_help=$("$A/tokengate" populate --help 2>&1 || true)
  loadgen_help=$("$A/tg-loadgen" --help 2>&1 || true)
  [[ $populate_help == *--mode* && $loadgen_help == *HOTP* ]] || TOOLS=$B
fi
POPULATE_MODE=()
[ "$MODE" = totp ] || POPULATE_MODE=(--mode hotp)

# shellcheck source=bench/lib.sh
source bench/lib.sh tg-ab
PA=$(free_port)
PB=$(free_port)
while [ "$PB" = "$PA" ]; do PB=$(free_port); done
config a "$PA"
config b "$PB"
say "populating $USERS users ($MODE tokens) with $TOOLS/tokengate"
"$TOOLS/tokengate" --config "$WORK/a/tokengate.toml" populate --users "$USERS" "${POPULATE_MODE[@]}" \
  --secrets-out "$WORK/secrets.csv" --json >"$WORK/populate.json"
cp -r "$WORK/a/data" "$WORK/b/data"

serve "$A/tokengate" a
PID_A=$SERVED_PID
serve "$B/tokengate" b
PID_B=$SERVED_PID

gen() { # gen a|b OUT ARGS…
  local who=$1 out=$2 port pid
  shift 2
  if [ "$who" = a ]; then port=$PA pid=$PID_A; else port=$PB pid=$PID_B; fi
  "$TOOLS/tg-loadgen" --secret "$SECRET" --threads "$THREADS" --json --server "127.0.0.1:$port" \
    --server-pid "$pid" --secrets "$WORK/secrets.csv" --state "$WORK/cursor_$who" \
    --message-authenticator "$@" >"$out" 2>>"$WORK/runs.log"
}
warm_up a b
for r in $(seq 1 "$ROUNDS"); do
  for who in a b; do
    say "round $r/$ROUNDS build $who: peak ($CONC outstanding, ${SECS} s), then $RATE/s open loop"
    gen "$who" "$WORK/peak_${who}_$r.json" --concurrency "$CONC" --duration "$SECS"
    gen "$who" "$WORK/rate_${who}_$r.json" --rate "$RATE" --duration "$SECS"
  done
done
python3 bench/pair.py "$WORK" "$ROUNDS" \
  "build A vs build B: $USERS users (${MODE^^} tokens), $ROUNDS rounds, medians" a A b B
