# Shared by bench/ab.sh, bench/backends.sh and bench/million.sh (sourced): a work directory removed
# on exit, the servers started (`serve`) recorded in PIDS and stopped on exit, free loopback ports,
# a throw-away tokengate config, and the wait for answers and the warm-up of two gateways.
WORK=$(mktemp -d "/tmp/$1.XXXXXX")
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
config() { # config NAME PORT: $WORK/NAME/tokengate.toml, SQLite in $WORK/NAME/data
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
await_answers() { # await_answers WHO LOG: up to 10 s until `gen WHO` (the caller's) gets 3 Rejects
  local n=0
  for _ in $(seq 1 50); do
    n=$(gen "$1" /dev/stdout --unknown --requests 3 --concurrency 1 --timeout-ms 200 2>/dev/null |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"]["reject"])' || echo 0)
    [ "$n" = 3 ] && return 0
    sleep 0.2
  done
  echo "gateway $1 does not answer"
  cat "$2"
  exit 1
}
serve() { # serve BIN NAME: BIN serves $WORK/NAME/tokengate.toml, log in $WORK/NAME.log; sets SERVED_PID
  RUST_LOG=warn "$1" --config "$WORK/$2/tokengate.toml" serve 2>"$WORK/$2.log" &
  SERVED_PID=$!
  PIDS+=("$SERVED_PID")
}
warm_up() { # warm_up NAME…: waits for each to answer, logs every user in once on each (the caller's
  # `gen`, USERS, CONC), then with TOTP waits for the next 30 s step so no code is reused
  local who
  for who in "$@"; do await_answers "$who" "$WORK/$who.log"; done
  say "warm-up: every user once on each gateway"
  for who in "$@"; do
    gen "$who" "$WORK/warm_$who.json" --concurrency "$CONC" --requests "$USERS" --timeout-ms 5000 || true
  done
  [ "$MODE" = hotp ] || sleep $((31 - $(date +%s) % 30))
}
