# NativeGossip: the two commands of the README, and the pieces they are made of.
#
#   make demo   three BEAM nodes discover each other, inside a private network namespace
#   make test   formatting, lint, Rust and Elixir tests (the Elixir ones in a namespace)
#
# Both install what they need first (as root on Debian) or say what is missing.

SHELL := /bin/sh
NETNS := test/support/private_net.sh

.PHONY: all tools test rust-test elixir-lint elixir-test probe demo bench clean

all: test

tools:
	@.ci/ensure-tools.sh

test: tools rust-test elixir-lint elixir-test

rust-test:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(NETNS) cargo test -p native_gossip_core
	.ci/fuzz-smoke.sh

elixir-lint:
	MIX_ENV=test mix format --check-formatted
	MIX_ENV=test mix compile --force --warnings-as-errors

# The multi-host tests use native-gossip-probe as an attacker.
elixir-test: probe
	MIX_ENV=test $(NETNS) mix test

probe:
	cargo build --release -p native_gossip_probe

# Benchmarks (not part of make test), about 25 minutes: docs/BENCHMARKS.md from the
# template bench/BENCHMARKS.md.in, and the chart docs/formation.svg.
bench: tools probe
	MIX_ENV=test mix compile
	bench/run.sh

demo: tools
	MIX_ENV=test mix compile
	MIX_ENV=test $(NETNS) mix run --no-start test/support/demo.exs

clean:
	rm -rf _build target priv/native/*.so
