#!/usr/bin/env bash
# make flake-hunt: runs the multi-host tests N times (FLAKE_RUNS, default 10), each run
# inside a private network namespace as make test runs them, and prints how many runs
# each failing test failed in. Not part of make test (about 4 minutes a run here).
#   FLAKE_RUNS=20 make flake-hunt          all multi-host tests, 20 runs
#   FLAKE_FILES="test/native_gossip/multihost_features_test.exs" make flake-hunt
# With FLAKE_LOAD=1, two busy loops run beside the tests (CI's machine is as loaded
# when make test builds and tests in parallel). Exits 1 if any test failed once.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${FLAKE_RUNS:-10}
files=${FLAKE_FILES:-}
log=$(mktemp -d)
trap 'rm -rf "$log"; [ -n "${load_pids:-}" ] && kill $load_pids 2>/dev/null || true' EXIT
load_pids=""
if [ "${FLAKE_LOAD:-0}" = 1 ]; then
  for _ in 1 2; do (while :; do :; done) & load_pids="$load_pids $!"; done
fi
MIX_ENV=test mix compile >/dev/null
for i in $(seq 1 "$runs"); do
  # shellcheck disable=SC2086
  MIX_ENV=test test/support/private_net.sh mix test --only multihost $files \
    >"$log/run$i.out" 2>&1 || true
  summary=$(grep -E '^[0-9]+ (doctest|tests?)' "$log/run$i.out" | tail -1)
  echo "run $i/$runs: ${summary:-no summary (see below)}"
  [ -n "$summary" ] || tail -20 "$log/run$i.out"
done
echo
echo "failures per test over $runs runs:"
{ cat "$log"/run*.out | grep -E '^  [0-9]+\) test ' || true; } | sed -E 's/^  [0-9]+\) test //' |
  sort | uniq -c | sort -rn | tee "$log/counts"
if [ -s "$log/counts" ]; then exit 1; else echo "none"; fi
