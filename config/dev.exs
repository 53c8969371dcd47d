import Config

# Lets you try NativeGossip by hand from this repository: run `iex --sname a -S mix`
# and `iex --sname b -S mix` in two terminals (or on two hosts of one network) and the
# nodes connect. It multicasts on your real network, so do not run it on a network you
# do not own; `make demo` does the same inside a private network namespace.
config :native_gossip,
  topologies: [dev: [heartbeat_interval: 1_500]]

config :logger, :console, metadata: [:native_gossip]
