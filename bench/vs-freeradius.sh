#!/usr/bin/env bash
# tokengate vs FreeRADIUS 3.2, side by side on loopback, same generator, same run (issue 5).
#
#   bash bench/vs-freeradius.sh            # defaults below; override with environment variables
#   USERS=200000 ROUNDS=3 SECS=10 bash bench/vs-freeradius.sh
#   MODE=totp bash bench/vs-freeradius.sh  # TOTP tokens instead of HOTP
#
# Installs FreeRADIUS from Debian if missing, writes throw-away configs for both servers under a
# temporary directory (FreeRADIUS: PAP users in a `users` file, cleartext; tokengate: the same
# names with PIN + HOTP or PIN + TOTP tokens made by `tokengate populate`), starts both on free
# loopback ports,
# runs tg-loadgen against each in turn for several rounds and prints medians and
# tokengate/FreeRADIUS ratios. Every process it started is stopped on exit (trap).
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${MODE:-hotp}            # hotp: users are reused as fast as answered; totp: once per 30 s step
USERS=${USERS:-200000}        # accept-path population (TOTP: one login per user per 30 s step)
REJECT_USERS=${REJECT_USERS:-2000}  # separate users for the wrong-passcode runs (they get locked)
ROUNDS=${ROUNDS:-3}           # alternating rounds per measurement
SECS=${SECS:-10}              # seconds per peak-throughput run
SHORT=${SHORT:-5}             # seconds per half-rate and reject-path run
CONC=${CONC:-64}              # closed-loop outstanding requests
THREADS=${THREADS:-2}         # generator sockets
SECRET=testing123
case "$MODE" in hotp | totp) ;; *) echo "MODE must be hotp or totp"; exit 1 ;; esac

say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

if ! command -v freeradius >/dev/null 2>&1; then
  say "installing FreeRADIUS (Debian package freeradius)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq freeradius >/dev/null
fi
command -v python3 >/dev/null || { echo "python3 is needed (free ports, JSON)"; exit 1; }

say "building tokengate and tg-loadgen (release)"
cargo build --release --locked --quiet --bin tokengate --bin tg-loadgen
TARGET=${CARGO_TARGET_DIR:-target}/release
TG=$TARGET/tokengate
GEN=$TARGET/tg-loadgen

WORK=$(mktemp -d /tmp/tg-vs-fr.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
TG_PORT=$(free_port)
FR_PORT=$(free_port)
while [ "$FR_PORT" = "$TG_PORT" ]; do FR_PORT=$(free_port); done

# ---- tokengate ---------------------------------------------------------------------------
mkdir -p "$WORK/tg"
cat >"$WORK/tg/tokengate.toml" <<TOML
version = 1
[server]
data_dir = "$WORK/tg/data"
dictionary = "$PWD/dictionaries/dictionary"
[radius]
listen = ["127.0.0.1:$TG_PORT"]
[[client]]
name = "bench"
address = "127.0.0.1/32"
secret = "$SECRET"
TOML
TOTAL=$((USERS + REJECT_USERS))
say "populating tokengate with $TOTAL users ($MODE tokens)"
"$TG" --config "$WORK/tg/tokengate.toml" populate --users "$TOTAL" --mode "$MODE" \
  --secrets-out "$WORK/secrets.csv" --json >"$WORK/populate.json"
POPULATE_S=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["seconds"], 1))' "$WORK/populate.json")

# ---- FreeRADIUS: the same names, PAP with cleartext passwords of the same length -----------
FR=$WORK/fr
mkdir -p "$FR/run" "$FR/log"
# Password = PIN + "123456": as long as tokengate's PIN + tokencode.
awk -F, '!/^#/ && $1 != "user" { printf "%s Cleartext-Password := \"%s123456\"\n", $1, $2 }' \
  "$WORK/secrets.csv" >"$FR/users"
cat >"$FR/radiusd.conf" <<CONF
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = $FR/log
raddbdir = $FR
radacctdir = $FR/log
name = freeradius
confdir = $FR
modconfdir = $FR
certdir = $FR
cadir = $FR
run_dir = $FR/run
db_dir = $FR
libdir = /usr/lib/freeradius
pidfile = $FR/run/freeradius.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 1048576
hostname_lookups = no
proxy_requests = no
log {
  destination = files
  file = /dev/null
  auth = no
  auth_badpass = no
  auth_goodpass = no
}
security {
  allow_core_dumps = no
  max_attributes = 200
  reject_delay = 0
  status_server = no
}
thread pool {
  start_servers = 4
  max_servers = 32
  min_spare_servers = 3
  max_spare_servers = 10
  max_requests_per_server = 0
  auto_limit_acct = no
}
client bench {
  ipaddr = 127.0.0.1
  secret = $SECRET
  require_message_authenticator = no
}
modules {
  pap {
    normalise = no
  }
  files {
    filename = $FR/users
  }
}
server default {
  listen {
    type = auth
    ipaddr = 127.0.0.1
    port = $FR_PORT
  }
  authorize {
    files
    pap
  }
  authenticate {
    Auth-Type PAP {
      pap
    }
  }
}
CONF

say "starting tokengate on 127.0.0.1:$TG_PORT and FreeRADIUS on 127.0.0.1:$FR_PORT"
RUST_LOG=warn "$TG" --config "$WORK/tg/tokengate.toml" serve 2>"$WORK/tg.log" &
TG_PID=$!
PIDS+=("$TG_PID")
freeradius -f -d "$FR" -n radiusd 2>"$WORK/fr.log" >&2 &
FR_PID=$!
PIDS+=("$FR_PID")

gen() { # gen OUT.json ARGS…: one run, JSON to OUT, the human table to the log
  local out=$1
  shift
  "$GEN" --secret "$SECRET" --threads "$THREADS" --json "$@" >"$out" 2>>"$WORK/runs.log"
}
tg_gen() { gen "$1" --server "127.0.0.1:$TG_PORT" --server-pid "$TG_PID" --secrets "$WORK/secrets.csv" "${@:2}"; }
fr_gen() { gen "$1" --server "127.0.0.1:$FR_PORT" --server-pid "$FR_PID" --users-file "$FR/users" "${@:2}"; }

# Both answer before we measure.
for _ in $(seq 1 50); do
  ok_fr=$("$GEN" --server "127.0.0.1:$FR_PORT" --users-file "$FR/users" --requests 5 \
    --concurrency 1 --timeout-ms 200 --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"]["accept"])' || echo 0)
  ok_tg=$("$GEN" --server "127.0.0.1:$TG_PORT" --secrets "$WORK/secrets.csv" --slice "$USERS:" \
    --unknown --message-authenticator --requests 5 --concurrency 1 --timeout-ms 200 --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"]["reject"])' || echo 0)
  [ "$ok_fr" = 5 ] && [ "$ok_tg" = 5 ] && break
  sleep 0.2
done
[ "${ok_fr:-0}" = 5 ] || { echo "FreeRADIUS does not answer; see $WORK/fr.log"; cat "$WORK/fr.log"; exit 1; }
[ "${ok_tg:-0}" = 5 ] || { echo "tokengate does not answer; see $WORK/tg.log"; cat "$WORK/tg.log"; exit 1; }

STATE=$WORK/state     # TOTP cursor or HOTP counters, carried from run to run
ACCEPT=(--slice "0:$USERS" --state "$STATE")
REJECT=(--slice "$USERS:$TOTAL")

if [ "$MODE" = totp ]; then
  say "warm-up: every tokengate user once (fills its cache), then wait for the next TOTP step"
else
  say "warm-up: every tokengate user once (fills its cache)"
fi
tg_gen "$WORK/warm_tg.json" "${ACCEPT[@]}" --concurrency "$CONC" --message-authenticator \
  --requests "$USERS" --timeout-ms 5000 || true
fr_gen "$WORK/warm_fr.json" --concurrency "$CONC" --message-authenticator --duration 3
# TOTP: the warm-up used every user in this step. HOTP users are reused at once (--state keeps
# their counters from run to run).
[ "$MODE" = hotp ] || sleep $((31 - $(date +%s) % 30))

for r in $(seq 1 "$ROUNDS"); do
  say "round $r/$ROUNDS: peak throughput, closed loop $CONC outstanding, Message-Authenticator, ${SECS} s each"
  tg_gen "$WORK/peak_tg_$r.json" "${ACCEPT[@]}" --concurrency "$CONC" --message-authenticator --duration "$SECS"
  fr_gen "$WORK/peak_fr_$r.json" --concurrency "$CONC" --message-authenticator --duration "$SECS"
done
HALF=$(python3 - "$WORK" "$ROUNDS" <<'PY'
import json, statistics, sys
w, n = sys.argv[1], int(sys.argv[2])
print(round(statistics.median(json.load(open(f"{w}/peak_tg_{r}.json"))["requests_per_s"] for r in range(1, n + 1)) / 2))
PY
)
for r in $(seq 1 "$ROUNDS"); do
  say "round $r/$ROUNDS: open loop at half of tokengate's peak ($HALF/s), ${SHORT} s each"
  tg_gen "$WORK/half_tg_$r.json" "${ACCEPT[@]}" --rate "$HALF" --message-authenticator --duration "$SHORT"
  fr_gen "$WORK/half_fr_$r.json" --rate "$HALF" --message-authenticator --duration "$SHORT"
  say "round $r/$ROUNDS: reject path (wrong passcode, unknown user), closed loop 8 outstanding, ${SHORT} s each"
  tg_gen "$WORK/acc_tg_$r.json" "${ACCEPT[@]}" --concurrency 8 --message-authenticator --duration "$SHORT"
  fr_gen "$WORK/acc_fr_$r.json" --concurrency 8 --message-authenticator --duration "$SHORT"
  tg_gen "$WORK/wrong_tg_$r.json" "${REJECT[@]}" --wrong --concurrency 8 --message-authenticator --duration "$SHORT"
  fr_gen "$WORK/wrong_fr_$r.json" --wrong --concurrency 8 --message-authenticator --duration "$SHORT"
  tg_gen "$WORK/unk_tg_$r.json" "${REJECT[@]}" --unknown --concurrency 8 --message-authenticator --duration "$SHORT"
  fr_gen "$WORK/unk_fr_$r.json" --unknown --concurrency 8 --message-authenticator --duration "$SHORT"
done

python3 - "$WORK" "$ROUNDS" "$USERS" "$POPULATE_S" "$HALF" "$MODE" <<'PY'
import json, statistics, sys
w, n, users, populate_s, half, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
def load(kind, srv):
    return [json.load(open(f"{w}/{kind}_{srv}_{r}.json")) for r in range(1, n + 1)]
def med(kind, srv, f):
    # A run that was stopped before any answer (population used up) has nothing to say.
    vals = [f(x) for x in load(kind, srv) if x["counts"]["accept"] + x["counts"]["reject"] > 0]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else float("nan")
cpu = lambda x: x["server_cpu"]["us_per_request"] if x.get("server_cpu") else None
rps = lambda x: x["requests_per_s"]
p99 = lambda x: x["latency"]["p99_us"]
p50 = lambda x: x["latency"]["p50_us"]
rows = []
def row(name, tg, fr, target, ok):
    ratio = tg / fr if fr else float("nan")
    res = "-" if ok is None else ("met" if ok(tg, fr, ratio) else "NOT met")
    rows.append((name, tg, fr, ratio, target, res))
row("throughput with MA (req/s)", med("peak", "tg", rps), med("peak", "fr", rps), ">= 3x", lambda t, f, r: r >= 3)
row("server CPU per request (us)", med("peak", "tg", cpu), med("peak", "fr", cpu), "<= 1/4", lambda t, f, r: r <= 0.25)
row(f"p99 at {half}/s, half TG peak (us)", med("half", "tg", p99), med("half", "fr", p99), "TG <= 1000 us", lambda t, f, r: t <= 1000)
acc_tg, acc_fr = med("acc", "tg", p50), med("acc", "fr", p50)
wr_tg, wr_fr = med("wrong", "tg", p50), med("wrong", "fr", p50)
un_tg, un_fr = med("unk", "tg", p50), med("unk", "fr", p50)
row("accept p50, 8 outstanding (us)", acc_tg, acc_fr, "-", None)
row("wrong-passcode p50 (us)", wr_tg, wr_fr, "-", None)
row("unknown-user p50 (us)", un_tg, un_fr, "-", None)
row("reject/accept time, wrong passcode", wr_tg / acc_tg, wr_fr / acc_fr, "TG ~ 1", lambda t, f, r: 0.8 <= t <= 1.25)
row("reject/accept time, unknown user", un_tg / acc_tg, un_fr / acc_fr, "TG ~ 1", lambda t, f, r: 0.8 <= t <= 1.25)
print()
print(f"tokengate vs FreeRADIUS: {users} users ({mode.upper()} tokens), {n} rounds, medians (populate took {populate_s} s)")
print(f"{'measure':40} {'tokengate':>12} {'FreeRADIUS':>12} {'TG/FR':>8}  {'target':>14}  result")
for name, tg, fr, ratio, target, res in rows:
    print(f"{name:40} {tg:12.1f} {fr:12.1f} {ratio:8.2f}  {target:>14}  {res}")
warn = set()
for kind in ("peak", "half", "acc", "wrong", "unk"):
    for srv in ("tg", "fr"):
        for x in load(kind, srv):
            for m in x["warnings"]:
                warn.add(f"{kind}/{srv}: {m}")
if warn:
    print("\nwarnings from the runs (see the README on noise):")
    for m in sorted(warn):
        print("  " + m)
PY
[ "${KEEP:-0}" = 1 ] || echo "(KEEP=1 keeps the work directory with every run's JSON and runs.log)" >&2
