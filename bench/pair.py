"""Summary table of a paired benchmark (bench/ab.sh, bench/backends.sh): two gateways A and B,
ROUNDS rounds of a closed-loop peak run ("peak") and an open-loop run ("rate") each, one
tg-loadgen JSON file per run named WORK/{kind}_{key}_{round}.json. Prints medians and B/A.

    python3 bench/pair.py WORK ROUNDS TITLE KEY_A LABEL_A KEY_B LABEL_B [--pg-ticks]

When WORK/warm_{key}.json exist (the warm-up: every user logs in once, a cold cache), their
throughput is printed as one more row.

--pg-ticks: WORK/pgticks_{kind}_{key}_{round} hold the CPU ticks the PostgreSQL server
processes used during each run; their share per request is printed under each CPU row.
"""
import json
import os
import statistics
import sys


def main():
    w, n, title = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    key_a, label_a, key_b, label_b = sys.argv[4:8]
    pg_ticks = "--pg-ticks" in sys.argv[8:]

    def runs(kind, key):
        for r in range(1, n + 1):
            x = json.load(open(f"{w}/{kind}_{key}_{r}.json"))
            yield r, x, x["counts"]["accept"] + x["counts"]["reject"]

    def med(kind, key, f):
        vals = [f(x) for _, x, done in runs(kind, key) if done > 0 and f(x) is not None]
        return statistics.median(vals) if vals else float("nan")

    def pg_cpu(kind, key):
        hz = os.sysconf("SC_CLK_TCK")
        vals = []
        for r, _, done in runs(kind, key):
            ticks = int(open(f"{w}/pgticks_{kind}_{key}_{r}").read())
            if done:
                vals.append(ticks * 1e6 / hz / done)
        return statistics.median(vals) if vals else float("nan")

    cpu = lambda x: x["server_cpu"]["us_per_request"] if x.get("server_cpu") else None
    rows = [
        ("peak throughput (req/s)", "peak", lambda x: x["requests_per_s"]),
        ("server CPU per request (us)", "peak", cpu),
        ("peak p50 (us)", "peak", lambda x: x["latency"]["p50_us"]),
        ("peak p99.9 (us)", "peak", lambda x: x["latency"]["p999_us"]),
        ("open-loop server CPU per request (us)", "rate", cpu),
        ("open-loop p50 (us)", "rate", lambda x: x["latency"]["p50_us"]),
        ("open-loop p99 (us)", "rate", lambda x: x["latency"]["p99_us"]),
        ("open-loop p99.9 (us)", "rate", lambda x: x["latency"]["p999_us"]),
        ("open-loop max (us)", "rate", lambda x: x["latency"]["max_us"]),
        ("open-loop timeouts", "rate", lambda x: x["counts"]["timeouts"]),
        ("peak rejects (all should be accepts)", "peak", lambda x: x["counts"]["reject"]),
    ]
    ratio = f"{label_b}/{label_a}"
    rw = max(10, len(ratio))
    print(f"\n{title}")
    print(f"{'measure':42} {label_a:>12} {label_b:>12} {ratio:>{rw}}")
    for name, kind, f in rows:
        a, b = med(kind, key_a, f), med(kind, key_b, f)
        print(f"{name:42} {a:12.1f} {b:12.1f} {b / a if a else float('nan'):{rw}.2f}")
        if pg_ticks and f is cpu:
            # The PostgreSQL processes' CPU during the same runs.
            label = "  + PostgreSQL processes (us)"
            print(f"{label:42} {pg_cpu(kind, key_a):12.1f} {pg_cpu(kind, key_b):12.1f}")
    # The warm-up (every user once, each loaded from the database): one run per gateway.
    warm = [f"{w}/warm_{key}.json" for key in (key_a, key_b)]
    if all(os.path.exists(p) for p in warm):
        a, b = (json.load(open(p))["requests_per_s"] for p in warm)
        name = "first logins, cold cache (req/s, 1 run)"
        print(f"{name:42} {a:12.1f} {b:12.1f} {b / a if a else float('nan'):{rw}.2f}")
    warn = sorted({f"{kind}/{key}: {m}" for kind in ("peak", "rate") for key in (key_a, key_b)
                   for _, x, _ in runs(kind, key) for m in x["warnings"]})
    if warn:
        print("\nwarnings from the runs:")
        for m in warn:
            print("  " + m)


main()
