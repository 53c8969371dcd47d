import Config

# Tests start their own topologies, inside network namespaces they create.
config :native_gossip, topologies: []
config :logger, level: :warning
