#!/bin/sh
# make nif-artifact: the NIF tarball for this machine's target, named and packed exactly
# as the release workflow publishes it (rustler_precompiled's layout), in _artifacts/,
# and checksum-Elixir.NativeGossip.Native.exs for every tarball there.
#
#   _artifacts/libnative_gossip_nif-v<version>-nif-2.15-<target>.so.tar.gz
#
# NATIVE_GOSSIP_TARGET overrides the target (default: rustc's host triple); CARGO=cross
# cross-compiles (the release workflow's musl targets). Linux gnu targets are built with
# cargo-zigbuild against glibc $(cat .ci/glibc-floor) (.ci/ensure-zig.sh installs it).
set -eu
cd "$(dirname "$0")/.."
version=$(sed -n 's/^  @version "\(.*\)"$/\1/p' mix.exs)
[ -n "$version" ] || { echo "no @version in mix.exs" >&2; exit 1; }
target=${NATIVE_GOSSIP_TARGET:-$(rustc -vV | sed -n 's/^host: //p')}
nif=2.15

case "$target" in
  *-linux-gnu)
    # Linked against the oldest glibc we support (.ci/glibc-floor), with cargo-zigbuild,
    # so that the library loads on every distribution at or above it; the highest
    # GLIBC_ symbol version it needs is checked below.
    floor=$(cat .ci/glibc-floor)
    PATH="$(.ci/ensure-zig.sh):$PATH"
    cargo zigbuild --release -p native_gossip_nif --target "$target.$floor"
    out=${CARGO_TARGET_DIR:-target}/$target/release
    ;;
  *)
    if [ -n "${NATIVE_GOSSIP_TARGET:-}" ]; then
      "${CARGO:-cargo}" build --release -p native_gossip_nif --target "$target"
      out=${CARGO_TARGET_DIR:-target}/$target/release
    else
      "${CARGO:-cargo}" build --release -p native_gossip_nif
      out=${CARGO_TARGET_DIR:-target}/release
    fi
    ;;
esac
case "$target" in
  *-apple-darwin) built=$out/libnative_gossip_nif.dylib ;;
  *) built=$out/libnative_gossip_nif.so ;;
esac

if [ -n "${floor:-}" ]; then
  .ci/glibc-check.sh "$built" "$floor"
fi

# The library inside is named .so on every Unix, as rustler_precompiled loads it.
name=libnative_gossip_nif-v$version-nif-$nif-$target.so
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$built" "$stage/$name"
mkdir -p _artifacts
tar -czf "_artifacts/$name.tar.gz" -C "$stage" "$name"

# sha256sum on Linux, shasum on macOS.
sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1"; else shasum -a 256 "$1"; fi | cut -d' ' -f1
}

# rustler_precompiled's checksum file: a map of tarball name to "sha256:<hex>".
{
  echo "%{"
  for f in _artifacts/*.tar.gz; do
    printf '  "%s" => "sha256:%s",\n' "$(basename "$f")" "$(sha256 "$f")"
  done
  echo "}"
} > checksum-Elixir.NativeGossip.Native.exs
echo "wrote _artifacts/$name.tar.gz and checksum-Elixir.NativeGossip.Native.exs" >&2
