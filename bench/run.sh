#!/bin/sh
# make bench: runs every benchmark and writes docs/BENCHMARKS.md from the template
# bench/BENCHMARKS.md.in, each @@name@@ line replaced by what that benchmark printed
# (its result table and its verdict against the target), with the date and the
# machine. bench/formation.exs also writes the chart docs/assets/formation.svg (its
# run with busy waiting off, formation_nobusy: formation-nobusy.svg), the
# simulator docs/assets/scale.svg. Needs root:
# the benchmarks make network namespaces, and no packet leaves them.
#
#   ONLY="join join_n" bench/run.sh   runs some of them, keeping the others' last
#                                     output (in bench/out/, not committed; a section
#                                     with none there keeps what docs/BENCHMARKS.md
#                                     has: bench/recover.py)
set -eu
cd "$(dirname "$0")/.."
netns=test/support/private_net.sh
out=bench/out
mkdir -p "$out"
all="join join_cold join_n join_n_nobusy network failover flood attacks soak fuzz throughput formation formation_nobusy idle sim calibration scale"

# Compiled once, first, and every benchmark runs with --no-compile: no "Compiling ..."
# line can land in a benchmark's output (a source edited during a long run was compiled
# by the next benchmark's `mix run`, into docs/BENCHMARKS.md), and every section of one
# run measures the same build.
MIX_ENV=test mix compile >&2

for name in ${ONLY:-$all}; do
  echo "==> $name" >&2
  case "$name" in
    fuzz)
      FUZZ_SECONDS=${FUZZ_SECONDS:-60} .ci/fuzz-smoke.sh > "$out/fuzz.raw"
      sed 's/^/    /' "$out/fuzz.raw" > "$out/$name.tmp"
      ;;
    sim)
      # The simulator (make sim): no VM, no network; about 20 minutes on one core.
      cargo build -q --release -p native_gossip_sim
      { ./target/release/native-gossip-sim
        echo
        ./target/release/native-gossip-sim --scenarios join,start_all --protocol legacy
        echo
        ./target/release/native-gossip-sim --scenarios join,start_all --protocol mixed
      } > "$out/$name.tmp"
      ./target/release/native-gossip-sim --chart docs/assets/scale.svg
      ;;
    throughput)
      cargo bench -q -p native_gossip_core --bench throughput > "$out/throughput.raw"
      grep -E '^(\||- |$)' "$out/throughput.raw" | cat -s > "$out/$name.tmp"
      ;;
    *_nobusy)
      # The same benchmark with busy waiting off in every VM (the controller's and
      # the nodes': ERL_FLAGS reaches both): N VMs share this machine's cores, where a
      # deployment gives each its own host, and a VM's schedulers that spin after
      # their work (the default) take the cores from the VMs that have work. Its
      # chart, if any, goes next to the default run's.
      ERL_FLAGS="+sbwt none +sbwtdcpu none +sbwtdio none" \
        CHART="docs/assets/${name%_nobusy}-nobusy.svg" \
        MIX_ENV=test $netns mix run --no-compile --no-start "bench/${name%_nobusy}.exs" > "$out/$name.tmp"
      ;;
    *)
      MIX_ENV=test $netns mix run --no-compile --no-start "bench/$name.exs" > "$out/$name.tmp"
      ;;
  esac
  mv "$out/$name.tmp" "$out/$name.md"
  date -u '+%Y-%m-%d %H:%M UTC' > "$out/$name.when"
done

# Sections not run here and not in bench/out/: as docs/BENCHMARKS.md has them.
python3 bench/recover.py bench/BENCHMARKS.md.in docs/BENCHMARKS.md "$out"

# Every section must have its output before the document is written.
for name in $all; do
  [ -s "$out/$name.md" ] && [ -s "$out/$name.when" ] ||
    { echo "missing output of $name: run bench/run.sh without ONLY" >&2; exit 1; }
done

{
  echo "Run on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"
  echo "$(free -g | awk '/Mem:/ {print $2}') GiB, Linux $(uname -r), OTP $(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().'), Elixir $(elixir -e 'IO.write(System.version())'), $(rustc --version)."
  echo "Each section finished at (ONLY= re-runs some of them):"
  echo
  for name in $all; do echo "- $name: $(cat "$out/$name.when")"; done
} > "$out/machine.md"

awk -v dir="$out" '
  /^<!--/ { skip = 1 }
  skip { if (/-->/) skip = 0; next }
  /^@@[a-z_]+@@$/ {
    file = dir "/" substr($0, 3, length($0) - 4) ".md"
    while ((getline line < file) > 0) print line
    close(file)
    next
  }
  { print }
' bench/BENCHMARKS.md.in | cat -s > docs/BENCHMARKS.md
echo "wrote docs/BENCHMARKS.md (and the charts of the sections run) in docs/assets/" >&2
