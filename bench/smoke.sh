#!/bin/sh
# make bench-smoke (part of make test): every benchmark script of `make bench` runs once
# with tiny parameters, so that a script broken by a change (a secret the probe no
# longer shares, a renamed function) fails the tests instead of the next `make bench`.
# Only that each one runs to the end is checked here; their figures mean nothing at
# this size and go nowhere (docs/BENCHMARKS.md is written by bench/run.sh only). The
# soak (ten minutes by design) and the Rust throughput harness (built by clippy's
# --all-targets) are left out. Needs root, like the benchmarks: network namespaces.
set -eu
cd "$(dirname "$0")/.."
netns=test/support/private_net.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
MIX_ENV=test mix compile >&2

run() {
  name=$1
  shift
  echo "==> $name ($*)" >&2
  start=$(date +%s)
  if ! env "$@" MIX_ENV=test $netns mix run --no-start "bench/$name.exs" > "$out/$name.md" 2>&1; then
    cat "$out/$name.md" >&2
    echo "bench/$name.exs failed (bench/smoke.sh)" >&2
    exit 1
  fi
  grep -q '|' "$out/$name.md" || { cat "$out/$name.md" >&2; echo "bench/$name.exs printed no table" >&2; exit 1; }
  git diff --quiet -- docs || { echo "bench/$name.exs changed docs/ (bench/smoke.sh must not)" >&2; exit 1; }
  echo "    ok in $(($(date +%s) - start)) s" >&2
}

run join TRIALS=1
run join_cold TRIALS=1
run join_n SIZES=1 TRIALS=1
run network TRIALS=1 PARTITIONS=1
run flood FLOOD_SECONDS=1 FLOOD_RATE=2000
run attacks ATTACK_SECONDS=1 REFLECT_SECONDS=2
run formation SIZES=2 TRIALS=1 CHART="$out/formation.svg"
run idle DURATION=1 ROUNDS=1
run scale PEERS=200 WAIT=1 WINDOW=2
run calibration SIZES=2 TRIALS=1 WINDOW_MS=1000 JOIN_N=3 JOIN_SETTLE_MS=1000 JOIN_WINDOW_MS=1000
run failover TRIALS=1 SERIES=on500 FAULT_SECONDS=1
