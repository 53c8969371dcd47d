#!/bin/sh
# make nif-artifact: the NIF tarball for this machine's target, named and packed exactly
# as the release workflow publishes it (rustler_precompiled's layout), in _artifacts/,
# and checksum-Elixir.NativeGossip.Native.exs for every tarball there.
#
#   _artifacts/libnative_gossip_nif-v<version>-nif-2.15-<target>.so.tar.gz
#
# NATIVE_GOSSIP_TARGET overrides the target (default: rustc's host triple); CARGO=cross
# cross-compiles (the release workflow).
set -eu
cd "$(dirname "$0")/.."
version=$(sed -n 's/^  @version "\(.*\)"$/\1/p' mix.exs)
[ -n "$version" ] || { echo "no @version in mix.exs" >&2; exit 1; }
target=${NATIVE_GOSSIP_TARGET:-$(rustc -vV | sed -n 's/^host: //p')}
nif=2.15

if [ -n "${NATIVE_GOSSIP_TARGET:-}" ]; then
  "${CARGO:-cargo}" build --release -p native_gossip_nif --target "$target"
  out=${CARGO_TARGET_DIR:-target}/$target/release
else
  "${CARGO:-cargo}" build --release -p native_gossip_nif
  out=${CARGO_TARGET_DIR:-target}/release
fi
case "$target" in
  *-apple-darwin) built=$out/libnative_gossip_nif.dylib ;;
  *) built=$out/libnative_gossip_nif.so ;;
esac

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
