# NativeGossip: the two commands of the README, and the pieces they are made of.
#
#   make demo   three BEAM nodes discover each other, inside a private network namespace
#   make test   formatting, lint, Rust and Elixir tests (the Elixir ones in a namespace)
#
# Both install what they need first (as root on Debian) or say what is missing.

SHELL := /bin/sh
NETNS := test/support/private_net.sh

.PHONY: all tools test rust-test elixir-lint elixir-test demo bench clean

all: test

tools:
	@.ci/ensure-tools.sh

test: tools rust-test elixir-lint elixir-test

rust-test:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo test -p native_gossip_core

elixir-lint:
	MIX_ENV=test mix format --check-formatted
	MIX_ENV=test mix compile --force --warnings-as-errors

elixir-test:
	MIX_ENV=test $(NETNS) mix test

# Benchmarks (not part of make test); results and method: docs/BENCHMARKS.md.
bench: tools
	MIX_ENV=test mix compile
	MIX_ENV=test $(NETNS) mix run --no-start bench/join.exs
	MIX_ENV=test $(NETNS) mix run --no-start bench/network.exs

demo: tools
	MIX_ENV=test mix compile
	MIX_ENV=test $(NETNS) mix run --no-start test/support/demo.exs

clean:
	rm -rf _build target priv/native/*.so
