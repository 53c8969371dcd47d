#!/bin/sh
# Where the CPU of a 32-node formation goes, by thread, with NativeGossip and with the
# floor (a diagnostic beside bench/formation.exs, not part of `make bench`). Runs
# bench/formation.exs once per way (WAYS=1: NativeGossip, WAYS=5: the floor), under
# `perf record -a`, which samples only from just before each trial's start until its
# full mesh (PERF_CTL, a perf control FIFO); then prints the samples per trial by
# thread name (1 sample = 1 ms of a CPU, at 1000 Hz) and, for NativeGossip's native
# threads, what they were in: the kernel's send path (which, on this one machine,
# also delivers each multicast datagram to every other VM's socket through the test
# bridge), receiving, waiting in poll, or the library's own code; and the BEAM
# schedulers' largest symbols each way.
#
# With SCHED=1, `perf sched record -a` instead, and per thread class how long its
# threads waited for a CPU each time they were runnable (`perf sched timehist`'s
# "sch delay"), as percentiles: a discovery waits for two such turns before its
# connect starts, the native thread woken by the datagram and the topology server's
# scheduler.
#
#   bench/formation_perf.sh            (root: perf -a; SIZES=32 TRIALS=9 by default,
#                                       KEEP=dir)
#   SCHED=1 bench/formation_perf.sh    (TRIALS=3 by default)
set -eu
cd "$(dirname "$0")/.."
command -v perf >/dev/null || { echo "formation_perf.sh: needs perf (apt-get install linux-perf)" >&2; exit 2; }
sched=${SCHED:-0}
if [ "$sched" = 1 ]; then
  record="perf sched record"
  trials=${TRIALS:-3}
else
  record="perf record -g -F 1000"
  trials=${TRIALS:-9}
fi
# KEEP=dir keeps the perf data there, for `perf report -i dir/1.data` (1: NativeGossip,
# 5: the floor).
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
  # shellcheck disable=SC2086
  $record -q -a -D -1 --control="fifo:$dir/ctl" -o "$dir/$way.data" >/dev/null 2>&1 &
  recorder=$!
  sleep 1
  PERF_CTL="$dir/ctl" SIZES=${SIZES:-32} TRIALS=$trials WAYS=$way CHART="$dir/chart.svg" \
    MIX_ENV=test test/support/private_net.sh mix run --no-compile --no-start bench/formation.exs |
    grep -E '^\| [0-9]'
  kill -INT $recorder
  wait $recorder || true
  rm "$dir/ctl"
  if [ "$sched" = 1 ]; then
    perf sched timehist -i "$dir/$way.data" > "$dir/$way.timehist" 2>/dev/null
  fi
done

if [ "$sched" = 1 ]; then
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
  exit 0
fi

python3 - "$dir" "$trials" <<'EOF'
import collections, subprocess, sys
d, trials = sys.argv[1], int(sys.argv[2])

def by_thread(way):
    out = subprocess.run(["perf", "report", "-i", f"{d}/{way}.data", "--no-children", "-q",
                          "--stdio", "-g", "none", "--sort", "comm", "-F", "sample,comm"],
                         capture_output=True, text=True).stdout
    counts = collections.Counter()
    for line in out.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0].isdigit():
            name = parts[1].strip()
            if name.endswith("scheduler"):
                name = "BEAM schedulers"
            elif "dirty" in name:
                name = "BEAM dirty schedulers"
            elif name == "swapper":
                name = "idle"
            counts[name] += int(parts[0])
    return counts

def native_split():
    out = subprocess.run(["perf", "script", "-i", f"{d}/1.data", "--comm", "native_gossip",
                          "-F", "comm,ip,sym"], capture_output=True, text=True).stdout
    split, stack = collections.Counter(), []
    def flush():
        s = " ".join(stack)
        if not stack:
            return
        if "sendmsg" in s or "sendto" in s or "ip_output" in s:
            split["sending (kernel, with the bridge's delivery)"] += 1
        elif "recvmmsg" in s or "recvmsg" in s:
            split["receiving (kernel)"] += 1
        elif "poll" in s:
            split["waiting in poll, waking (kernel)"] += 1
        else:
            split["the library's code and libc"] += 1
    for line in out.splitlines():
        if line.split() == ["native_gossip"]:
            flush()
            stack = []
        elif line.strip():
            stack.append(line.strip())
    flush()
    return split

def scheduler_symbols(way, top=6):
    out = subprocess.run(["perf", "report", "-i", f"{d}/{way}.data", "--no-children", "-q",
                          "--stdio", "-g", "none", "--comm", "1_scheduler,2_scheduler",
                          "--sort", "sym", "-F", "sample,sym"],
                         capture_output=True, text=True).stdout
    rows = [l.split(None, 1) for l in out.splitlines()]
    rows = [(int(n), sym.strip()) for n, sym in (r for r in rows if len(r) == 2) if n.isdigit()]
    return sorted(rows, reverse=True)[:top]

ng, floor = by_thread(1), by_thread(5)
print(f"\nSamples per trial (1 ms of one CPU each), {trials} trials each way:\n")
print("| thread | NativeGossip | floor |")
print("|---|---|---|")
for name in sorted(set(ng) | set(floor), key=lambda n: -(ng[n] + floor[n])):
    if ng[name] + floor[name] >= trials:
        print(f"| {name} | {ng[name] / trials:.0f} | {floor[name] / trials:.0f} |")
busy = lambda c: sum(v for k, v in c.items() if k != "idle")
print(f"| all but idle | {busy(ng) / trials:.0f} | {busy(floor) / trials:.0f} |")
for way, label in [(1, "NativeGossip"), (5, "the floor")]:
    print(f"\nThe BEAM schedulers' largest symbols, {label}, per trial (an unnamed address"
          " in beam.smp is often its busy-wait loop):\n")
    for n, sym in scheduler_symbols(way):
        print(f"- {sym}: {n / trials:.0f}")
print("\nNativeGossip's native threads, per trial:\n")
for what, n in native_split().most_common():
    print(f"- {what}: {n / trials:.0f}")
EOF
