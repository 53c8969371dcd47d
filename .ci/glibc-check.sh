#!/bin/sh
# glibc-check.sh LIBRARY FLOOR: fails when LIBRARY needs a glibc symbol version above
# FLOOR (e.g. 2.17), read from its dynamic symbol table (readelf --dyn-syms -W), so that a gnu
# artifact that would not load on an old distribution never ships.
set -eu
lib=$1
floor=$2
command -v readelf >/dev/null 2>&1 || { echo "glibc-check: readelf (binutils) is needed" >&2; exit 1; }
highest=$(readelf --dyn-syms -W "$lib" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -Vu | tail -1)
[ -n "$highest" ] || { echo "glibc-check: $lib needs no versioned glibc symbol?" >&2; exit 1; }
if [ "$(printf '%s\n%s\n' "$highest" "$floor" | sort -V | tail -1)" != "$floor" ]; then
  echo "glibc-check: $lib needs GLIBC_$highest, above the floor $floor:" >&2
  readelf --dyn-syms -W "$lib" | grep "GLIBC_$highest" >&2
  exit 1
fi
echo "glibc-check: $lib needs at most GLIBC_$highest (floor $floor)" >&2
