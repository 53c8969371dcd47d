#!/bin/sh
# Prints a directory holding cargo-zigbuild and zig, installing both (PyPI's ziglang
# and cargo-zigbuild packages, about 300 MB unpacked) into $NATIVE_GOSSIP_TOOLS/zig
# (default: _build/tools/zig of this checkout) the first time. .ci/nif-artifact.sh
# builds the Linux gnu NIF with them against the glibc floor (.ci/glibc-floor). Both
# are plain executables there, with no Python needed to run them, so the OTP 27 chroot
# of `make test` (which sees this checkout) uses them too. `make tools` runs this
# before the tests, which have no network. A cargo-zigbuild already on PATH (the
# release workflow installs it with pip) is used as it is.
set -eu
if command -v cargo-zigbuild >/dev/null 2>&1 && command -v zig >/dev/null 2>&1; then
  dirname "$(command -v cargo-zigbuild)"
  exit 0
fi
if command -v cargo-zigbuild >/dev/null 2>&1 && python3 -m ziglang version >/dev/null 2>&1; then
  dirname "$(command -v cargo-zigbuild)"
  exit 0
fi
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${NATIVE_GOSSIP_TOOLS:-$root/_build/tools}/zig
if ! [ -x "$dir/bin/cargo-zigbuild" ] || ! "$dir/bin/zig" version >/dev/null 2>&1; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "building the Linux NIF against glibc $(cat "$root/.ci/glibc-floor") needs cargo-zigbuild and zig: install them with pip (pip install ziglang cargo-zigbuild; python3-pip on Debian) or put both on PATH" >&2
    exit 1
  fi
  echo "==> installing ziglang and cargo-zigbuild into $dir" >&2
  rm -rf "$dir"
  python3 -m pip install -q --disable-pip-version-check --target "$dir" ziglang cargo-zigbuild >&2
  ln -sf ../ziglang/zig "$dir/bin/zig"
fi
echo "$dir/bin"
