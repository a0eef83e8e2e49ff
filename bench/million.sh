#!/usr/bin/env bash
# Target 4 of issue 5: a large user population (default 1,000,000) against a small one.
#
#   bash bench/million.sh                       # MODE=hotp USERS=1000000 SMALL=1000 ROUNDS=3 REQS=8000
#   USERS=200000 bash bench/million.sh          # a quicker look
#   MODE=totp bash bench/million.sh             # TOTP tokens: SMALL=30000 by default
#
# Measures: `tokengate populate` time for USERS users; start-up to serving (from exec until the
# first Access-Request is answered); resident memory after start and after the runs; and the
# throughput of first logins (cold cache: each request loads one user from the database) and of
# cached logins (the same users again), on the large database against a database of SMALL
# users, both servers running side by side and measured alternately.
#
# MODE=hotp (default): HOTP users can log in again as soon as they are answered, so the small
# side really is 1,000 users. First logins are limited by the small population: each cold run
# is COLD = min(REQS, SMALL / ROUNDS) distinct users on both sides (333 for 1,000 users: a short
# run, noisy); the cached runs are REQS logins over those same ROUNDS × COLD users on both sides.
# MODE=totp: one login per user per 30 s step, so each run is REQS distinct users, the small
# population must hold ROUNDS × REQS, and the cached runs wait for the next step.
# Every process it started is stopped on exit. Takes about 3 minutes for 1M users.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${MODE:-hotp}
USERS=${USERS:-1000000}
if [ "$MODE" = hotp ]; then SMALL=${SMALL:-1000}; else SMALL=${SMALL:-30000}; fi
ROUNDS=${ROUNDS:-3}
REQS=${REQS:-8000}
CONC=${CONC:-64}
SECRET=testing123
case "$MODE" in
  totp)
    COLD=$REQS
    [ $((ROUNDS * REQS)) -le "$SMALL" ] || { echo "SMALL must hold ROUNDS × REQS users"; exit 1; }
    ;;
  hotp)
    COLD=$((SMALL / ROUNDS))
    [ "$COLD" -le "$REQS" ] || COLD=$REQS
    [ "$COLD" -ge "$CONC" ] || { echo "SMALL / ROUNDS must be at least CONC ($CONC) users"; exit 1; }
    ;;
  *) echo "MODE must be hotp or totp"; exit 1 ;;
esac

cargo build --release --locked --quiet --bin tokengate --bin tg-loadgen
BIN=${CARGO_TARGET_DIR:-target}/release
# shellcheck source=bench/lib.sh
source bench/lib.sh tg-million
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
PL=$(free_port)
PS=$(free_port)
while [ "$PS" = "$PL" ]; do PS=$(free_port); done
config large "$PL"
config small "$PS"
say "populating $USERS users (large) and $SMALL users (small), $MODE tokens"
"$BIN/tokengate" --config "$WORK/large/tokengate.toml" populate --users "$USERS" --mode "$MODE" \
  --secrets-out "$WORK/large.csv" --json >"$WORK/populate_large.json"
"$BIN/tokengate" --config "$WORK/small/tokengate.toml" populate --users "$SMALL" --mode "$MODE" \
  --secrets-out "$WORK/small.csv" --json >"$WORK/populate_small.json"

gen() { # gen large|small OUT ARGS…
  local who=$1 out=$2 port pid STATE=()
  shift 2
  # HOTP: each server's counters carried from run to run (the TOTP runs use disjoint slices
  # or wait for a new step, and need no state).
  [ "$MODE" = totp ] || STATE=(--state "$WORK/state_$who")
  if [ "$who" = large ]; then port=$PL pid=$PID_L; else port=$PS pid=$PID_S; fi
  "$BIN/tg-loadgen" --secret "$SECRET" --json --server "127.0.0.1:$port" --server-pid "$pid" \
    --secrets "$WORK/$who.csv" --message-authenticator "${STATE[@]}" "$@" \
    >"$out" 2>>"$WORK/runs.log"
}
start() { # start large|small: starts the server, waits for its first answer; sets STARTED_PID, STARTED_S
  local who=$1 port t0 pid n
  if [ "$who" = large ]; then port=$PL; else port=$PS; fi
  t0=$(date +%s.%N)
  serve "$BIN/tokengate" "$who"
  pid=$SERVED_PID
  for _ in $(seq 1 600); do
    n=$("$BIN/tg-loadgen" --secret "$SECRET" --json --server "127.0.0.1:$port" \
      --secrets "$WORK/$who.csv" --message-authenticator --unknown --requests 1 \
      --concurrency 1 --timeout-ms 50 2>/dev/null |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"]["reject"])' || echo 0)
    [ "$n" = 1 ] && break
  done
  [ "$n" = 1 ] || { echo "$who does not answer"; cat "$WORK/$who.log"; exit 1; }
  STARTED_PID=$pid
  STARTED_S=$(python3 -c "print(round($(date +%s.%N) - $t0, 2))")
}
say "starting both servers"
start large
PID_L=$STARTED_PID START_L=$STARTED_S
start small
PID_S=$STARTED_PID START_S=$STARTED_S
RSS_L0=$(rss_kib "$PID_L")
RSS_S0=$(rss_kib "$PID_S")

runs() { # runs cold|warm: ROUNDS alternating runs on each server
  local r lo hi who n
  for r in $(seq 1 "$ROUNDS"); do
    if [ "$1" = cold ] || [ "$MODE" = totp ]; then
      # COLD distinct users (TOTP: REQS), never logged in before (cold) or not in this step.
      lo=$(((r - 1) * COLD)) hi=$((r * COLD)) n=$COLD
    else
      # HOTP, cached: REQS logins over every user the cold runs loaded, reused as answered.
      lo=0 hi=$((ROUNDS * COLD)) n=$REQS
    fi
    for who in large small; do
      say "round $r/$ROUNDS $who: $n logins of users $lo..$hi ($1 cache)"
      gen "$who" "$WORK/$1_${who}_$r.json" --slice "$lo:$hi" --concurrency "$CONC" --requests "$n"
    done
  done
}
[ "$MODE" = hotp ] || sleep $((31 - $(date +%s) % 30))
runs cold
if [ "$MODE" = totp ]; then
  say "waiting for the next TOTP step: the same users again, now cached"
  sleep $((31 - $(date +%s) % 30))
fi
runs warm
RSS_L1=$(rss_kib "$PID_L")
RSS_S1=$(rss_kib "$PID_S")

python3 - "$WORK" "$ROUNDS" "$USERS" "$SMALL" "$START_L" "$START_S" "$RSS_L0" "$RSS_S0" "$RSS_L1" "$RSS_S1" "$MODE" "$COLD" <<'PY'
import json, os, statistics, sys
w, n, users, small = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
start_l, start_s = float(sys.argv[5]), float(sys.argv[6])
rss = [int(x) / 1024 for x in sys.argv[7:11]]
mode, cold = sys.argv[11], int(sys.argv[12])
def med(kind, who, f):
    return statistics.median(f(json.load(open(f"{w}/{kind}_{who}_{r}.json"))) for r in range(1, n + 1))
rps = lambda x: x["requests_per_s"]
cpu = lambda x: x["server_cpu"]["us_per_request"] if x.get("server_cpu") else float("nan")
pop = lambda who: json.load(open(f"{w}/populate_{who}.json"))["seconds"]
db = lambda who: os.path.getsize(f"{w}/{who}/data/tokengate.db") / 2**20
print(f"\n{users} users (large) vs {small} users (small), {mode.upper()} tokens, {n} rounds of runs, medians")
print(f"first-login runs: {cold} distinct users each; cached runs: {json.load(open(f'{w}/warm_large_1.json'))['counts']['sent']} logins each")
print(f"{'measure':40} {'large':>12} {'small':>12} {'large/small':>12}")
def row(name, a, b):
    print(f"{name:40} {a:12.1f} {b:12.1f} {a / b if b else float('nan'):12.2f}")
row("populate (s)", pop("large"), pop("small"))
row("database file (MiB)", db("large"), db("small"))
row("start-up to first answer (s)", start_l, start_s)
row("RSS after start (MiB)", rss[0], rss[1])
row("RSS after the runs (MiB)", rss[2], rss[3])
row("first-login throughput (req/s)", med("cold", "large", rps), med("cold", "small", rps))
row("first-login CPU per request (us)", med("cold", "large", cpu), med("cold", "small", cpu))
row("cached-login throughput (req/s)", med("warm", "large", rps), med("warm", "small", rps))
row("cached-login CPU per request (us)", med("warm", "large", cpu), med("warm", "small", cpu))
warn = sorted({f"{kind}/{who}: {m}" for kind in ("cold", "warm") for who in ("large", "small")
               for r in range(1, n + 1) for m in json.load(open(f"{w}/{kind}_{who}_{r}.json"))["warnings"]})
if warn:
    print("\nwarnings from the runs:")
    for m in warn:
        print("  " + m)
PY
