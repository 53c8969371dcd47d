#!/bin/sh
# How long the threads of a 32-node formation wait for a CPU once they are runnable,
# with NativeGossip and with the floor (a diagnostic beside bench/formation_perf.sh,
# not part of `make bench`). Runs bench/formation.exs once per way (WAYS=1:
# NativeGossip, WAYS=5: the floor) under `perf sched record -a`, which records only
# from just before each trial's start until its full mesh (PERF_CTL), then prints per
# thread class the scheduling delay of each time a thread was switched in (`perf sched
# timehist`'s "sch delay": from runnable to running), as percentiles. A discovery waits
# for two such turns before its connect starts: the native thread woken by the
# datagram, then the topology server's scheduler.
#
#   bench/formation_sched.sh            (root: perf -a; SIZES=32 TRIALS=3 by default,
#                                        KEEP=dir keeps the perf data)
set -eu
cd "$(dirname "$0")/.."
command -v perf >/dev/null || { echo "formation_sched.sh: needs perf (apt-get install linux-perf)" >&2; exit 2; }
trials=${TRIALS:-3}
if [ -n "${KEEP:-}" ]; then
  dir=$KEEP
  mkdir -p "$dir"
  rm -f "$dir/ctl"
else
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
fi
MIX_ENV=test mix compile >&2

for way in 1 5; do
  mkfifo "$dir/ctl"
  perf sched record -q -a -D -1 --control="fifo:$dir/ctl" -o "$dir/$way.data" >/dev/null 2>&1 &
  recorder=$!
  sleep 1
  PERF_CTL="$dir/ctl" SIZES=${SIZES:-32} TRIALS=$trials WAYS=$way CHART="$dir/chart.svg" \
    MIX_ENV=test test/support/private_net.sh mix run --no-compile --no-start bench/formation.exs |
    grep -E '^\| [0-9]'
  kill -INT $recorder
  wait $recorder || true
  rm "$dir/ctl"
  perf sched timehist -i "$dir/$way.data" > "$dir/$way.timehist" 2>/dev/null
done

python3 - "$dir" <<'EOF'
import collections, re, sys
d = sys.argv[1]
row = re.compile(r"\s*[\d.]+\s+\[\d+\]\s+(\S+)\[\d+(?:/\d+)?\]\s+[\d.]+\s+([\d.]+)\s+[\d.]+")

def delays(way):
    out = collections.defaultdict(list)
    for line in open(f"{d}/{way}.timehist"):
        m = row.match(line)
        if not m:
            continue
        name = re.sub(r"/?\d+$", "", m.group(1))
        if name.endswith("scheduler") and "dirty" not in name:
            name = "BEAM schedulers"
        elif "dirty" in name:
            name = "BEAM dirty schedulers"
        out[name].append(float(m.group(2)))
    return out

def q(v, p):
    return v[min(len(v) - 1, int(p * len(v)))]

for way, label in [(1, "NativeGossip"), (5, "the floor")]:
    print(f"\n{label}: delay from runnable to running, by thread (ms; switch-ins):\n")
    print("| thread | switch-ins | p50 | p90 | p99 |")
    print("|---|---|---|---|---|")
    rows = sorted(delays(way).items(), key=lambda kv: -len(kv[1]))
    for name, v in rows[:8]:
        v.sort()
        print(f"| {name} | {len(v)} | {q(v, .5):.2f} | {q(v, .9):.2f} | {q(v, .99):.2f} |")
EOF
