defmodule Cluster.Strategy.State do
  @moduledoc false
  # The shape of libcluster 3.5's state struct (see ../shared/notes/libcluster.md),
  # defined here only so that tests can start NativeGossip.Strategy the way
  # Cluster.Supervisor does, without libcluster installed.
  defstruct topology: nil,
            connect: {:net_kernel, :connect_node, []},
            disconnect: {:erlang, :disconnect_node, []},
            list_nodes: {:erlang, :nodes, [:connected]},
            config: [],
            meta: nil
end
