#!/bin/sh
# A bounded run of the datagram fuzz target (make test). It works on a scratch copy of
# the committed seed corpus, so the tree stays clean. A long run:
#   FUZZ_SECONDS=600 .ci/fuzz-smoke.sh
set -eu
cd "$(dirname "$0")/../native/native_gossip_core"
seconds=${FUZZ_SECONDS:-20}
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz (from crates.io)"
  cargo install cargo-fuzz --locked --quiet
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# -s none: no sanitizer, which builds on the stable toolchain (the decoder is safe Rust).
status=0
cargo fuzz run -s none datagram "$scratch" fuzz/corpus/datagram -- \
  -max_total_time="$seconds" -print_final_stats=1 >"$scratch.log" 2>&1 || status=$?
# The summary, or everything if the fuzzer found something.
if [ "$status" = 0 ]; then
  grep -E "^Done|stat::number_of_executed_units|stat::peak_rss" "$scratch.log"
else
  cat "$scratch.log"
fi
rm -f "$scratch.log"
exit "$status"
