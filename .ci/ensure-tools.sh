#!/bin/sh
# Makes sure the tools `make test` and `make demo` need are here. As root on Debian it
# installs what is missing with apt-get; otherwise it prints exactly what to install
# and exits 1.
set -eu

missing_pkgs=""
problems=""

need_pkg() { missing_pkgs="$missing_pkgs $1"; }

command -v cargo >/dev/null 2>&1 || problems="$problems
  - cargo (Rust >= 1.91): install it with https://rustup.rs"
if command -v cargo >/dev/null 2>&1; then
  cargo fmt --version >/dev/null 2>&1 || problems="$problems
  - rustfmt: rustup component add rustfmt"
  cargo clippy --version >/dev/null 2>&1 || problems="$problems
  - clippy: rustup component add clippy"
fi
command -v elixir >/dev/null 2>&1 && command -v mix >/dev/null 2>&1 || need_pkg elixir
if command -v erl >/dev/null 2>&1; then
  # erlang-dev: the NIF headers of this Erlang installation.
  root=$(erl -noshell -eval 'io:format("~s", [code:root_dir()]), halt().')
  [ -f "$root/usr/include/erl_nif.h" ] || need_pkg erlang-dev
else
  need_pkg erlang-nox
  need_pkg erlang-dev
fi
command -v unshare >/dev/null 2>&1 || need_pkg util-linux
command -v ip >/dev/null 2>&1 || need_pkg iproute2
# nft: packet loss in the multi-host tests and benchmarks (which run as root).
command -v nft >/dev/null 2>&1 || need_pkg nftables
command -v epmd >/dev/null 2>&1 || need_pkg erlang-nox
# dialyzer: the type checks of `make test` (make dialyzer).
command -v dialyzer >/dev/null 2>&1 || need_pkg erlang-dialyzer
# readelf/objdump: the glibc symbol versions of the release NIF (package_test.exs).
command -v objdump >/dev/null 2>&1 && command -v readelf >/dev/null 2>&1 || need_pkg binutils
# PyYAML: workflows_test.exs parses .github/workflows; pip installs zig (below).
python3 -c 'import yaml' >/dev/null 2>&1 || /usr/bin/python3 -c 'import yaml' >/dev/null 2>&1 ||
  need_pkg python3-yaml
python3 -m pip --version >/dev/null 2>&1 || need_pkg python3-pip
# chromium: make docs-check opens the HexDocs pages in it (headless).
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 ||
  need_pkg chromium

if [ -n "$missing_pkgs" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing:$missing_pkgs"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing_pkgs >/dev/null
  else
    problems="$problems
  - Debian/Ubuntu packages:$missing_pkgs  (sudo apt-get install$missing_pkgs)"
  fi
fi

if [ -n "$problems" ]; then
  echo "NativeGossip needs these before it can build and test:$problems" >&2
  exit 1
fi

# Elixir >= 1.14 on OTP >= 25.
otp=$(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().')
if [ "$otp" -lt 25 ]; then
  echo "NativeGossip needs Erlang/OTP >= 25; this is OTP $otp" >&2
  exit 1
fi
# cargo-zigbuild and zig, for the release NIF linked against the glibc floor
# (.ci/nif-artifact.sh; the tests that use it run without network).
"$(dirname "$0")/ensure-zig.sh" >/dev/null

elixir -e 'unless Version.match?(System.version(), ">= 1.14.0"), do: (IO.puts(:stderr, "NativeGossip needs Elixir >= 1.14; this is #{System.version()}"); System.halt(1))'
