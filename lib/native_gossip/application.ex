defmodule NativeGossip.Application do
  @moduledoc false
  # Starts the registry that names topologies, the prober that answers other members'
  # probes (failure detection), and the topologies configured under
  # `config :native_gossip, topologies: [...]`.

  use Application

  # Loaded once per VM when the application starts: every module of NativeGossip and
  # the standard library's that its paths use. In interactive mode (`iex -S mix`),
  # modules load on first use, through the VM's one code server; the first heartbeat,
  # connection or tie-break wait would otherwise stop the topology server for that (a
  # formation of 32 VMs on two cores, sampled: one server waited ~0.4 s on the code
  # server in its tie-break). In a release they are loaded already.
  #
  # NativeGossip's modules are those of lib/ (found when this module compiles; in the
  # test environment the application also holds test/support/'s, which stay unloaded
  # as a user's modules would).
  lib = Path.expand("..", __DIR__)
  sources = Path.wildcard(Path.join(lib, "**/*.ex"))
  for source <- sources, do: @external_resource(source)

  @modules for source <- sources,
               [_, name] <- Regex.scan(~r/^defmodule ([A-Z][\w.]*) do$/m, File.read!(source)),
               uniq: true,
               do: Module.concat([name])

  @stdlib [
    Node,
    Enumerable,
    Enumerable.List,
    Enumerable.Map,
    Enumerable.MapSet,
    MapSet,
    :sets,
    :queue,
    :inet,
    :inet_parse
  ]

  @impl true
  def start(_type, _args) do
    # A NIF that does not load is reported by the first topology, with why.
    _ = :code.ensure_modules_loaded(@modules ++ @stdlib)
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
