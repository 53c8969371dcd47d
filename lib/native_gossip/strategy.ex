defmodule NativeGossip.Strategy do
  @moduledoc """
  A [libcluster](https://hexdocs.pm/libcluster) strategy: multicast discovery with the
  socket in a native thread, authenticated heartbeats, and connects that never block.

  It replaces `Cluster.Strategy.Gossip` in a topology. The options under `config:` are
  those of `NativeGossip` (`:port`, `:multicast_addr`, `:multicast_if`/`:if_addr`,
  `:multicast_ttl`, `:secret`, `:heartbeat_interval`, `:seeds`, `:broadcast`, …; Gossip's
  `broadcast_only: true` is accepted as `broadcast: true`); the topology's name is the
  libcluster topology name, and its `connect:`, `disconnect:` and `list_nodes:` are used
  as libcluster defines them.

      # config/runtime.exs
      config :libcluster,
        topologies: [
          lan: [
            strategy: NativeGossip.Strategy,
            config: [secret: System.fetch_env!("CLUSTER_SECRET")]
          ]
        ]

      # lib/my_app/application.ex
      children = [
        {Cluster.Supervisor,
         [Application.get_env(:libcluster, :topologies), [name: MyApp.ClusterSupervisor]]},
        # ...
      ]

  When libcluster is loaded, new peers are connected through
  `Cluster.Strategy.connect_nodes/4`, so its logs and `[:libcluster, :connect_node, _]`
  telemetry work as with its own strategies. This module does not depend on libcluster
  at compile time.

  The topology runs its heartbeats as long as the strategy process runs; members and
  counters are available with `NativeGossip.members/1` and `NativeGossip.stats/1`
  under the topology's name.
  """

  @compile {:no_warn_undefined, Cluster.Strategy}

  @doc """
  Starts the strategy from libcluster's `%Cluster.Strategy.State{}` (given in a
  one-element list, as `Cluster.Supervisor` does).
  """
  @spec start_link([map()]) :: GenServer.on_start()
  def start_link([%{topology: topology, config: config} = state]) do
    config = config || []

    # libcluster fills these in; a bare state may leave them nil (then ours apply).
    mfas =
      Enum.reject(
        [
          connect: Map.get(state, :connect),
          disconnect: Map.get(state, :disconnect),
          list_nodes: Map.get(state, :list_nodes)
        ],
        fn {_key, value} -> value == nil end
      )

    # As libcluster's own strategies do, keys this strategy does not know are not fatal:
    # each is logged once, with the nearest valid key, when the topology starts.
    with {:ok, options} <-
           NativeGossip.Options.validate([name: topology] ++ mfas ++ config, :strategy) do
      NativeGossip.Topology.start_link(options,
        libcluster: topology,
        connect: connect_fun(topology, options),
        disconnect: disconnect_fun(topology, options)
      )
    end
  end

  @doc false
  @spec child_spec([map()]) :: Supervisor.child_spec()
  def child_spec([%{topology: topology} | _] = args) do
    %{id: topology, start: {__MODULE__, :start_link, [args]}, type: :worker}
  end

  # How the topology connects a node: through libcluster's
  # Cluster.Strategy.connect_nodes/4 when libcluster is loaded (its logs and
  # telemetry), else with the :connect MFA alone.
  defp connect_fun(topology, %{connect: {m, f, a} = connect, list_nodes: list_nodes}) do
    if Code.ensure_loaded?(Cluster.Strategy),
      do: &connect(topology, connect, list_nodes, &1),
      else: fn node -> apply(m, f, a ++ [node]) end
  end

  # How the topology disconnects a node declared dead (failure detection): through
  # libcluster's Cluster.Strategy.disconnect_nodes/4 when libcluster is loaded, as its
  # Kubernetes strategy does, else with the :disconnect MFA alone.
  defp disconnect_fun(topology, %{disconnect: {m, f, a} = disconnect, list_nodes: list}) do
    if Code.ensure_loaded?(Cluster.Strategy) do
      fn node ->
        _ = Code.ensure_loaded(m)
        Cluster.Strategy.disconnect_nodes(topology, disconnect, list, [node])
      end
    else
      fn node -> apply(m, f, a ++ [node]) end
    end
  end

  @doc false
  # Runs in a connect-attempt process. connect_nodes/4 checks the MFAs with
  # function_exported?/3, which is false for a module not loaded yet (a user's connect
  # module, in interactive mode): load them first.
  def connect(topology, {m, _, _} = connect, {l, _, _} = list_nodes, node) do
    _ = Code.ensure_loaded(m)
    _ = Code.ensure_loaded(l)
    Cluster.Strategy.connect_nodes(topology, connect, list_nodes, [node])
  end
end
