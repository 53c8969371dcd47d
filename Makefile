# NativeGossip: the two commands of the README, and the pieces they are made of.
#
#   make demo   three BEAM nodes discover each other, inside a private network namespace
#   make test   formatting, lint, dialyzer, Rust and Elixir tests (the Elixir ones in a
#               namespace) on OTP 25 and 27, the docs built and their links checked,
#               and a smoke run of the benchmark scripts
#
# Both install what they need first (as root on Debian) or say what is missing.

SHELL := /bin/sh
NETNS := test/support/private_net.sh

.PHONY: all tools test flake-hunt rust-test elixir-portable elixir-lint dialyzer elixir-test bench-smoke elixir-otp27 probe demo bench nif-artifact loopback-join docs docs-check sim clean

# This repository builds the NIF from source (rustler; config/config.exs says so, and
# this for examples/ that depend on it), never downloads it: users of a release get it
# precompiled (rustler_precompiled; see RELEASING.md).
export NATIVE_GOSSIP_BUILD = 1

all: test

tools:
	@.ci/ensure-tools.sh

test: tools rust-test elixir-portable elixir-lint dialyzer elixir-test docs-check bench-smoke elixir-otp27

rust-test: tools
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo test -p native_gossip_core
	@# The protocol crate is sans-IO: no socket, thread, OS-randomness or libc crate
	@# anywhere in its dependency tree (its own test checks its manifest).
	! cargo tree -p native_gossip_core -e normal --prefix none | \
	  grep -E '^(socket2|libc|getrandom|crossbeam|parking_lot|mio|tokio) '
	$(NETNS) cargo test -p native_gossip_io
	$(NETNS) cargo test -p native_gossip_io --features portable
	@# The simulator's short run: the bounds of a join's cost and of convergence, at
	@# up to 128 nodes (a few seconds; make sim runs the whole table).
	cargo test --release -p native_gossip_sim
	cargo clippy -p native_gossip_io -p native_gossip_nif --features native_gossip_io/portable -- -D warnings
	.ci/fuzz-smoke.sh

# The socket paths of macOS and the BSDs (recvfrom, no IP_MULTICAST_ALL), forced on
# Linux: joins across test hosts by multicast and by seeds. Built apart (_build/portable);
# elixir-lint rebuilds the regular NIF after it.
elixir-portable: tools probe
	NATIVE_GOSSIP_PORTABLE=1 MIX_ENV=test MIX_BUILD_PATH=$(CURDIR)/_build/portable mix compile --force
	@# The library under test is the portable one: recvfrom, not recvmmsg.
	! nm -D priv/native/libnative_gossip_nif.so | grep -q recvmmsg
	NATIVE_GOSSIP_PORTABLE=1 MIX_ENV=test MIX_BUILD_PATH=$(CURDIR)/_build/portable $(NETNS) \
	  mix test --only portable

# The same Elixir checks and tests under OTP 27 and Elixir 1.18, what most users run:
# a Debian trixie chroot made once by ../shared/tools/newer-otp.sh (about a minute; it
# builds into _build/otp27, and runs inside a private network namespace of its own).
# The chroot has no Python, so no PyYAML: the workflow checks run in elixir-test only.
elixir-otp27: tools probe
	../shared/tools/newer-otp.sh run sh -c 'export NATIVE_GOSSIP_BUILD=1 MIX_ENV=test && \
	  mix compile --warnings-as-errors && mix test --exclude workflows'

elixir-lint: tools
	MIX_ENV=test mix format --check-formatted
	MIX_ENV=test mix compile --force --warnings-as-errors

# Dialyzer on lib/ (erlang-dialyzer; no dialyxir): zero warnings. The PLT is built
# once per OTP and Elixir version under _build/dialyzer/ (about two minutes).
dialyzer: tools
	MIX_ENV=test mix compile --warnings-as-errors
	MIX_ENV=test mix run --no-start .ci/dialyzer.exs

# The multi-host tests use native-gossip-probe as an attacker. Then the two-node join
# the macOS CI jobs run (.github/workflows/ci.yml), here on loopback with TTL 0.
elixir-test: tools probe
	MIX_ENV=test $(NETNS) mix test
	$(MAKE) loopback-join

loopback-join: tools
	MIX_ENV=test $(NETNS) mix run --no-start .ci/loopback-join.exs

# The release tarball of the NIF for this machine, as the release workflow makes it,
# and its checksum file: _artifacts/ and checksum-Elixir.NativeGossip.Native.exs.
nif-artifact:
	.ci/nif-artifact.sh

probe:
	cargo build --release -p native_gossip_probe

# The protocol simulated at 8 to 1024 nodes (native_gossip_sim; about 20 minutes):
# every scenario with the current protocol, then join and start_all as nodes that
# predate OPT_ANSWER, and as a cluster of both; the tables of docs/BENCHMARKS.md
# "Scale: the simulator". SIZES and SCENARIOS narrow it.
SIZES ?= 8,32,128,512,1024
sim:
	cargo build --release -p native_gossip_sim
	./target/release/native-gossip-sim --sizes $(SIZES) $(if $(SCENARIOS),--scenarios $(SCENARIOS))
	./target/release/native-gossip-sim --sizes $(SIZES) --scenarios join,start_all --protocol legacy
	./target/release/native-gossip-sim --sizes $(SIZES) --scenarios join,start_all --protocol mixed
	@# (make bench runs the same three, ONLY=sim bench/run.sh alone, into docs/BENCHMARKS.md,
	@# and writes the chart docs/assets/scale.svg: native-gossip-sim --chart PATH.)

# HexDocs into doc/ (ex_doc, from ../shared/deps here, hex elsewhere): a warning of
# the docs (a reference to a hidden module, a file that is not there) fails it. The
# dev build comes first, apart: its dependencies' own compile warnings are theirs.
docs: tools
	@mkdir -p _build
	mix compile > _build/docs-compile.log 2>&1 || { cat _build/docs-compile.log; exit 1; }
	mix docs > _build/docs.log 2>&1 || { cat _build/docs.log; exit 1; }
	@cat _build/docs.log
	@! grep -i warning _build/docs.log

# The pages opened in headless Chromium, inside a private network namespace: a broken
# internal link (page or anchor) or a missing image fails it (.ci/docs-check.exs).
docs-check: docs
	$(NETNS) elixir .ci/docs-check.exs doc

# Every benchmark script once with tiny parameters (about 3 minutes): a script that a
# change broke fails here rather than at the next make bench. Writes nothing to docs/.
bench-smoke: tools probe
	bench/smoke.sh

# The multi-host tests N times (FLAKE_RUNS, default 10; FLAKE_FILES, FLAKE_LOAD=1: see
# the script), with each failing test's count. Not part of make test.
flake-hunt: tools probe
	.ci/flake-hunt.sh

# Benchmarks (not part of make test), about 50 minutes: docs/BENCHMARKS.md from the
# template bench/BENCHMARKS.md.in, and the charts docs/assets/formation.svg,
# formation-nobusy.svg (formation with busy waiting off in every VM) and scale.svg.
bench: tools probe
	MIX_ENV=test mix compile
	bench/run.sh

demo: tools
	MIX_ENV=test mix compile
	MIX_ENV=test $(NETNS) mix run --no-start test/support/demo.exs

clean:
	rm -rf _build target priv/native/*.so _artifacts
