#!/usr/bin/env bash
# One tokengate build on its two databases side by side: SQLite (the default, one instance) and
# PostgreSQL (several instances sharing the load), same generator, same run, alternating.
#
#   bash bench/backends.sh                      # MODE=hotp USERS=100000 ROUNDS=3 SECS=5 RATE=5000
#   PG=postgres://postgres@127.0.0.1:5432/postgres bash bench/backends.sh
#   BIN=/tmp/tg-before bash bench/backends.sh   # a build's directory (tokengate, tg-loadgen)
#
# Creates a throw-away PostgreSQL database next to PG's (dropped on exit), populates it and a
# SQLite file with USERS users each (each side gets its own secrets and its own HOTP counters),
# starts one gateway on each, warms both caches (every user once), then alternates: closed-loop
# peak runs (CONC outstanding, Message-Authenticator) and open-loop runs at RATE/s. Prints
# medians and PostgreSQL/SQLite ratios. Every process it started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${USERS:-100000}
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
RATE=${RATE:-5000}
CONC=${CONC:-64}
THREADS=${THREADS:-2}
MODE=${MODE:-hotp}
PG=${PG:-postgres://postgres@127.0.0.1:5432/postgres}
SECRET=testing123
case "$MODE" in hotp | totp) ;; *) echo "MODE must be hotp or totp"; exit 1 ;; esac
command -v psql >/dev/null || { echo "psql is needed to create the PostgreSQL database"; exit 1; }

# shellcheck source=bench/lib.sh
source bench/lib.sh tg-backends
DBNAME="tg_bench_$$_$(date +%s)"
PG_URL="${PG%/*}/$DBNAME"
drop_db() { psql -q "$PG" -c "DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)" >/dev/null 2>&1 || true; }
trap 'cleanup; drop_db' EXIT
psql -q "$PG" -c "CREATE DATABASE $DBNAME" >/dev/null

if [ -n "${BIN:-}" ]; then
  BIN=$(cd "$BIN" && pwd)
  say "using the tokengate and tg-loadgen in $BIN"
else
  say "building tokengate and tg-loadgen (release)"
  cargo build --release --quiet -p tokengate -p tokengate-bench
  BIN=$PWD/target/release
fi

PS=$(free_port)
PP=$(free_port)
while [ "$PP" = "$PS" ]; do PP=$(free_port); done
config sqlite "$PS"
config pg "$PP"
sed -i "s|^data_dir = .*|&\ndatabase = \"$PG_URL\"|" "$WORK/pg/tokengate.toml"

for side in sqlite pg; do
  say "populating $USERS users ($MODE tokens) in $side"
  "$BIN/tokengate" --config "$WORK/$side/tokengate.toml" populate --users "$USERS" --mode "$MODE" \
    --secrets-out "$WORK/secrets_$side.csv" --json >"$WORK/populate_$side.json"
done

serve "$BIN/tokengate" sqlite
PID_S=$SERVED_PID
serve "$BIN/tokengate" pg
PID_P=$SERVED_PID

gen() { # gen sqlite|pg OUT ARGS…
  local side=$1 out=$2 port pid
  shift 2
  if [ "$side" = sqlite ]; then port=$PS pid=$PID_S; else port=$PP pid=$PID_P; fi
  "$BIN/tg-loadgen" --secret "$SECRET" --threads "$THREADS" --json --server "127.0.0.1:$port" \
    --server-pid "$pid" --secrets "$WORK/secrets_$side.csv" --state "$WORK/state_$side" \
    --message-authenticator "$@" >"$out" 2>>"$WORK/runs.log"
}
warm_up sqlite pg
# CPU ticks (utime + stime) of every PostgreSQL server process: its share of each run.
pg_ticks() {
  local t=0 p s
  for p in $(pgrep -f '^postgres' || true); do
    s=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
    t=$((t + s))
  done
  echo "$t"
}
for r in $(seq 1 "$ROUNDS"); do
  for side in sqlite pg; do
    say "round $r/$ROUNDS $side: peak ($CONC outstanding, ${SECS} s), then $RATE/s open loop"
    for kind in peak rate; do
      if [ "$kind" = peak ]; then load=(--concurrency "$CONC"); else load=(--rate "$RATE"); fi
      t0=$(pg_ticks)
      gen "$side" "$WORK/${kind}_${side}_$r.json" "${load[@]}" --duration "$SECS"
      echo $(($(pg_ticks) - t0)) >"$WORK/pgticks_${kind}_${side}_$r"
    done
  done
done
python3 bench/pair.py "$WORK" "$ROUNDS" \
  "SQLite vs PostgreSQL: $USERS users (${MODE^^} tokens), $ROUNDS rounds, medians" \
  sqlite SQLite pg PostgreSQL --pg-ticks
