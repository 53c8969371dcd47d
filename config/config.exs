import Config

# The library's own repository only: a project that depends on NativeGossip does not
# read this file. See config/dev.exs for the topology `iex --sname a -S mix` starts.
# In this repository the NIF is built from source (cargo), never downloaded: the
# release tarballs are made from it. Users get the precompiled one.
config :rustler_precompiled, :force_build, native_gossip: true

import_config "#{config_env()}.exs"
