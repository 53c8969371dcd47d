import Config

# The library's own repository only: a project that depends on NativeGossip does not
# read this file. See config/dev.exs for the topology `iex --sname a -S mix` starts.
import_config "#{config_env()}.exs"
