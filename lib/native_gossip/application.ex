defmodule NativeGossip.Application do
  @moduledoc false
  # Starts the registry that names topologies, the prober that answers other members'
  # probes (failure detection), and the topologies configured under
  # `config :native_gossip, topologies: [...]`.

  use Application

  # What a topology's start needs, loaded once per VM when the application starts (in
  # interactive mode, as under `iex -S mix`, modules load on first use, which would put
  # the NIF's dlopen and a dozen module loads in the path of the first heartbeat).
  @start_path [
    NativeGossip,
    NativeGossip.Native,
    NativeGossip.Native.Status,
    NativeGossip.Options,
    NativeGossip.Topology,
    NativeGossip.Connector,
    NativeGossip.Connector.World,
    NativeGossip.Topology.Waiters,
    NativeGossip.Topology.Warnings,
    NativeGossip.Topology.Detection,
    NativeGossip.Detector,
    NativeGossip.Prober,
    NativeGossip.ShortNames,
    NativeGossip.NodeName,
    NativeGossip.Telemetry,
    # Of Elixir, used on the way and not loaded by every application.
    Node,
    Enumerable,
    Enumerable.List
  ]

  @impl true
  def start(_type, _args) do
    # A NIF that does not load is reported by the first topology, with why.
    Enum.each(@start_path, &Code.ensure_loaded/1)
    _ = NativeGossip.Telemetry.load()

    topologies = config_children(Application.get_env(:native_gossip, :topologies, []))

    children = [
      {Registry, keys: :unique, name: NativeGossip.Registry},
      NativeGossip.Prober | topologies
    ]

    Supervisor.start_link(children, strategy: :one_for_one, name: NativeGossip.Supervisor)
  end

  @doc false
  # The child specs of `config :native_gossip, :topologies` (validated by the child as
  # it starts, so an invalid topology stops the application with the option's error).
  def config_children(topologies) do
    for {name, opts} <- topologies, opts = Keyword.put(opts, :name, name) do
      %{NativeGossip.child_spec(opts) | start: {__MODULE__, :start_topology, [opts]}}
    end
  end

  @doc false
  def start_topology(opts) do
    with {:ok, options} <- NativeGossip.Options.validate(opts) do
      NativeGossip.Topology.start_link(options, origin: :config)
    end
  end
end
