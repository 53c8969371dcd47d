#!/bin/sh
# Runs a command inside a private network namespace whose only interface is loopback,
# with multicast routed on it, and a private PID namespace. No packet the command sends
# can leave the machine, and every process it starts (epmd, BEAM nodes) dies with it.
#
#   test/support/private_net.sh <command> [args...]
#
# As root it uses `unshare --net`; otherwise it tries a user namespace
# (`unshare --user --map-root-user`). Already inside one (NATIVE_GOSSIP_NETNS=1), it
# just runs the command.
set -eu

if [ "${NATIVE_GOSSIP_NETNS:-}" = 1 ]; then
  exec "$@"
fi

if ! command -v unshare >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1; then
  echo "private_net.sh: needs unshare (util-linux) and ip (iproute2)" >&2
  exit 2
fi

setup='
  # Namespaces the tests make (ip netns add) are named in a /run/netns of our own, so
  # none of their names can outlive this run on the host.
  mkdir -p /run/netns && mount -t tmpfs ng-netns /run/netns
  ip link set lo up
  ip link set lo multicast on
  ip route add 224.0.0.0/4 dev lo src 127.0.0.1
  NATIVE_GOSSIP_NETNS=1 exec "$@"
'

if [ "$(id -u)" = 0 ]; then
  exec unshare --net --pid --fork --mount-proc --kill-child -- sh -c "$setup" sh "$@"
elif unshare --user --map-root-user --net true 2>/dev/null; then
  exec unshare --user --map-root-user --net --pid --fork --mount-proc --kill-child -- sh -c "$setup" sh "$@"
else
  echo "private_net.sh: cannot create a network namespace (run as root, or enable" >&2
  echo "unprivileged user namespaces: sysctl kernel.unprivileged_userns_clone=1)" >&2
  exit 2
fi
