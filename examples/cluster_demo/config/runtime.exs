import Config

# Everything a deployment sets comes from the environment (see NativeGossip's docs):
#
#   NATIVE_GOSSIP_SECRET   the cluster's secret (required here: no unauthenticated
#                          clustering in production)
#   NATIVE_GOSSIP_SEEDS    hosts to reach by unicast where multicast does not pass
#   NATIVE_GOSSIP_PORT, NATIVE_GOSSIP_MULTICAST_IF, ... (NativeGossip.options_from_env/1)
#
# and the release's own RELEASE_NODE, RELEASE_COOKIE and RELEASE_DISTRIBUTION.
if config_env() == :prod do
  # One line that says what to set, rather than an exception in the boot and a crash
  # dump.
  if System.get_env("NATIVE_GOSSIP_SECRET", "") == "" do
    IO.puts(
      :stderr,
      "cluster_demo: set NATIVE_GOSSIP_SECRET (the cluster's secret, the same on every " <>
        "node; at least 16 random bytes) and start again"
    )

    System.halt(1)
  end

  config :native_gossip, topologies: [demo: NativeGossip.options_from_env()]
end
