defmodule NativeGossip.Topology do
  @moduledoc false
  # The thin server around one native topology. It owns the native resource (the
  # native thread watches it with a monitor and stops when it dies) and routes what
  # arrives: peer reports, distribution events and the ends of connect attempts to
  # NativeGossip.Connector, which decides; this server carries out the effects it
  # returns (connect attempts, each in a monitored process, timers, calls to the native
  # side, log lines) and hands the peer events to subscribers, telemetry and waiters
  # (Topology.Waiters); the drop counters go to NativeGossip.Telemetry's summary, and
  # seed names to a resolver.

  use GenServer
  require Logger

  alias NativeGossip.{Connector, Log, Native, Options, ShortNames, Telemetry}
  alias NativeGossip.Connector.World
  alias NativeGossip.Detector
  alias NativeGossip.Topology.{Detection, Report, Result, Subscribers, Waiters, Warnings}

  @registry NativeGossip.Registry

  defstruct [
    :options,
    :native,
    :connector,
    :connect,
    :disconnect,
    :libcluster,
    :detector,
    :states,
    attempts: %{},
    hosts: nil,
    summary: nil,
    subscribers: %{},
    waiters: [],
    connected: 0,
    seed_task: nil,
    seeds: [],
    warned: false
  ]

  @type t :: %__MODULE__{
          options: Options.t(),
          native: reference(),
          connector: Connector.t(),
          connect: (node() -> term()),
          disconnect: (node() -> term()),
          libcluster: atom() | nil,
          detector: Detector.t(),
          states: :ets.tid(),
          attempts: %{reference() => node()},
          hosts: ShortNames.t() | nil,
          summary: term(),
          subscribers: %{pid() => reference()},
          waiters: Waiters.t(),
          connected: non_neg_integer(),
          seed_task: reference() | nil,
          seeds: [term()],
          warned: boolean()
        }

  # The warnings about a topology's options wait this long after its start: in a freshly
  # booted VM the first log line loads the logger's modules, which took milliseconds
  # out of the join when it was logged at once. (A topology stopped before then says
  # nothing: logging on the way out of every short-lived test topology was noise.)
  @warn_after 500

  @doc false
  # `opts`: `libcluster:` the libcluster topology this one runs as; `connect:` the
  # function that connects a node (NativeGossip.Strategy's goes through libcluster;
  # by default the :connect MFA); `origin:` where this start comes from, for the error
  # when a topology of the same name is already running (a Warnings.origin(); by default
  # the caller, the supervisor that starts the child). Kept as a term and only
  # described in that error, so a start builds no text.
  def start_link(%Options{} = options, opts \\ []) do
    libcluster = Keyword.get(opts, :libcluster)
    origin = Keyword.get_lazy(opts, :origin, fn -> Warnings.origin(libcluster) end)
    connect = Keyword.get_lazy(opts, :connect, fn -> node_fun(options.connect) end)
    disconnect = Keyword.get_lazy(opts, :disconnect, fn -> node_fun(options.disconnect) end)
    # The registry's value: {native resource once started, origin, the table of peers'
    # detector states (for members/1)}.
    name = {:via, Registry, {@registry, options.name, {nil, origin, nil}}}

    case GenServer.start_link(__MODULE__, {options, libcluster, connect, disconnect}, name: name) do
      {:error, {:already_started, pid}} = error ->
        first =
          case Registry.lookup(@registry, options.name) do
            [{^pid, {_, first, _}}] -> first
            _ -> nil
          end

        Warnings.already_running(options, pid, first, origin)
        error

      other ->
        other
    end
  end

  defp node_fun({m, f, a}), do: fn node -> apply(m, f, a ++ [node]) end

  @doc false
  # The native resource of a running topology, for calls that need not go through the
  # server's mailbox (members, stats, announce).
  def native!(name), do: name |> lookup!() |> elem(1)

  @doc false
  # The table of peers' failure-detection states (:suspect, :dead) of a topology.
  def states!(name), do: name |> lookup!() |> elem(2)

  @doc false
  def server!(name), do: name |> lookup!() |> elem(0)

  defp lookup!(name) do
    case Registry.lookup(@registry, name) do
      [{pid, {native, _origin, states}}] when native != nil ->
        {pid, native, states}

      _ ->
        raise ArgumentError, "no NativeGossip topology named #{inspect(name)} is running"
    end
  end

  @impl true
  def init({options, libcluster, connect, disconnect}) do
    Logger.metadata(native_gossip: options.name)

    cond do
      error = Native.Status.load_error() ->
        {:stop, {:nif_not_loaded, "the NativeGossip NIF could not be loaded: #{error}"}}

      not Node.alive?() ->
        Logger.warning(
          "NativeGossip topology #{inspect(options.name)} not started: this node is not " <>
            "distributed (start it with --sname or --name)"
        )

        :ignore

      true ->
        start_native(options, libcluster, {connect, disconnect})
    end
  end

  defp start_native(options, libcluster, {connect, disconnect}) do
    # Exits of linked processes (the parent supervisor) must reach terminate/2, so that
    # a clean shutdown sends the goodbye heartbeat.
    Process.flag(:trap_exit, true)

    with {:ok, native_options} <- Options.to_native(options, Atom.to_string(node())),
         {:ok, native} <- Native.start(native_options) do
      states = :ets.new(:native_gossip_states, [:protected, read_concurrency: true])

      {_, _} =
        Registry.update_value(@registry, options.name, fn {_, o, _} -> {native, o, states} end)

      :ok = :net_kernel.monitor_nodes(true, node_type: :all)
      Process.send_after(self(), :native_gossip_summary, options.log_interval)
      hosts = if options.resolve_short_names, do: ShortNames.new(node())

      state = %__MODULE__{
        options: options,
        native: native,
        connector: Connector.new(World.new(options)),
        detector: Detector.new(options),
        states: states,
        connect: connect,
        disconnect: disconnect,
        libcluster: libcluster,
        hosts: hosts
      }

      # The first heartbeat has left (from Native.start/1); the warnings wait until the
      # join is done (@warn_after).
      Process.send_after(self(), :native_gossip_warn, @warn_after)
      {:ok, resolve_seeds(state)}
    else
      {:error, {kind, message}} ->
        {:stop, {kind, message}}
    end
  end

  defp warn(%{warned: true} = state), do: state

  defp warn(state) do
    :ok = Warnings.options(state.options)
    %{state | warned: true}
  end

  # Seeds given by name are resolved in a task (DNS can take seconds), now and every
  # :seed_refresh ms, so that a headless service's changing addresses are followed.
  defp resolve_seeds(%{options: %{seeds: []}} = state), do: state

  defp resolve_seeds(%{options: options} = state) do
    if Enum.any?(options.seeds, &is_list(elem(&1, 0))) do
      # Monitored, not linked: this server traps exits and stops on a linked exit.
      {_pid, ref} =
        spawn_monitor(fn -> exit({:native_gossip_seeds, Options.resolve_seeds(options)}) end)

      %{state | seed_task: ref}
    else
      state
    end
  end

  @impl true
  def handle_call(:subscribe, {pid, _}, state) do
    %{subscribers: subs, options: %{name: name}, connector: c} = state
    subscribers = Subscribers.add(subs, pid, name, c, fn -> gone(state) end)
    {:reply, :ok, %{state | subscribers: subscribers}}
  end

  def handle_call({:set_tags, tags}, _from, state) do
    case Native.set_tags(state.native, Options.tag_list(tags)) do
      :ok ->
        {:reply, :ok, %{state | options: %{state.options | tags: tags}}}

      {:error, message} ->
        {:reply, {:error, {:invalid_option, :tags, message}}, state}
    end
  end

  def handle_call({:await_members, match, count, timeout}, from, state) do
    case Waiters.add(state.waiters, state.connector, from, match, count, timeout) do
      {:reply, waiters} -> {:reply, :ok, %{state | waiters: waiters}}
      {:wait, waiters} -> {:noreply, %{state | waiters: waiters}}
    end
  end

  def handle_call(:unsubscribe, {pid, _}, state),
    do: {:reply, :ok, %{state | subscribers: Subscribers.delete(state.subscribers, pid)}}

  # Events wait on the native side, which sends :native_gossip_events once until they
  # have all been taken, so however much traffic arrives this mailbox holds that one
  # and those of take_events/1, one per take of the server's own (at a nodeup, before
  # a turn) that left more than a batch behind. A batch at a time, so other messages
  # are served in between.
  @batch 256

  @impl true
  def handle_info(:native_gossip_events, state), do: {:noreply, take_events(state)}

  def handle_info({:await_timeout, ref}, state),
    do: {:noreply, %{state | waiters: Waiters.timeout(state.waiters, ref)}}

  def handle_info({:native_gossip_turn, node}, state) do
    # What waits untold first (see :nodeup below): the turn waits while a handshake
    # with a known peer is under way (Connector.Turns.slow?/2), and a peer that leads
    # and is connecting now is one whose discovery may be held back.
    state = take_events(state)
    route(state, Connector.turn(state.connector, node))
  end

  def handle_info({:nodeup, node, _info}, state) do
    # The discovery of a peer this node does not lead may be waiting untold on the
    # native side (held back until an event this server must act on, a connection, or
    # the first wait: native_gossip_core::outbox), so what waits is taken first: a
    # peer's discovery (of its new incarnation, after a restart) comes before its
    # connection.
    state = take_events(state)
    {:noreply, state} = route(state, Connector.nodeup(state.connector, node))
    # Connected again: whatever was concluded of it before is over.
    {:noreply, Detection.apply(state, Detector.clear(state.detector, node))}
  end

  def handle_info({:nodedown, node, _info}, state) do
    {:noreply, state} = route(state, Connector.nodedown(state.connector, node))
    {:noreply, Detection.apply(state, Detector.down(state.detector, node))}
  end

  def handle_info({:native_gossip_probe, id, from, outcome}, state)
      when outcome in [:ok, :failed, :not_connected],
      do: {:noreply, Detection.apply(state, Detector.answer(state.detector, id, from, outcome))}

  def handle_info({:native_gossip_probe_timeout, id}, state),
    do: {:noreply, Detection.apply(state, Detector.timeout(state.detector, id))}

  def handle_info({:native_gossip_reprobe, node}, state) do
    helpers = Detection.helpers(state, node)
    {:noreply, Detection.apply(state, Detector.still_lost(state.detector, node, helpers))}
  end

  def handle_info({:DOWN, ref, :process, _, reason}, %{seed_task: ref} = state) do
    # The resolver's result (or its crash): seeds now, and again at the next refresh.
    Process.send_after(self(), :native_gossip_resolve_seeds, state.options.seed_refresh)

    case reason do
      {:native_gossip_seeds, seeds} when seeds != state.seeds ->
        Log.debug(state.libcluster, fn ->
          "NativeGossip: seeds now #{inspect(seeds)}"
        end)

        Native.set_seeds(state.native, Enum.map(seeds, &Options.seed_string/1))
        {:noreply, %{state | seed_task: nil, seeds: seeds}}

      _ ->
        {:noreply, %{state | seed_task: nil}}
    end
  end

  def handle_info({:DOWN, ref, :process, pid, reason}, state) do
    case Map.pop(state.attempts, ref) do
      {nil, _} ->
        {:noreply, other_down(state, ref, pid)}

      {node, attempts} ->
        route(%{state | attempts: attempts}, Connector.finished(state.connector, node, reason))
    end
  end

  def handle_info(:native_gossip_resolve_seeds, state), do: {:noreply, resolve_seeds(state)}

  def handle_info(:native_gossip_warn, state), do: {:noreply, warn(state)}

  def handle_info({:native_gossip_membership, status}, state) do
    :ok = Warnings.membership(state.options, status)
    {:noreply, state}
  end

  def handle_info(:native_gossip_summary, %{options: o} = state) do
    Process.send_after(self(), :native_gossip_summary, o.log_interval)
    previous = state.summary || Telemetry.summary_start()
    summary = Telemetry.summary(o.name, o.log_interval, previous, Native.stats(state.native))
    {:noreply, %{state | summary: summary}}
  end

  def handle_info({:native_gossip_fault, message}, state) do
    Logger.error(
      "NativeGossip topology #{inspect(state.options.name)} stopped by a native fault: #{message}"
    )

    {:stop, {:native_fault, message}, state}
  end

  def handle_info({:EXIT, _pid, reason}, state), do: {:stop, reason, state}

  def handle_info(_other, state), do: {:noreply, state}

  # Takes a batch of waiting peer events and applies them; comes back for more with a
  # message.
  defp take_events(state) do
    {events, more} = Native.take_events(state.native, @batch)
    if more, do: send(self(), :native_gossip_events)
    Enum.reduce(events, state, &Report.apply/2)
  end

  # The peers that left or are lost (members/2's states: one that failure detection is
  # probing, :suspect, is not gone yet).
  defp gone(state) do
    for %{node: node, state: s} <- NativeGossip.members(state.options.name),
        s in [:left, :lost, :dead],
        into: MapSet.new(),
        do: node
  end

  # A waiter or a subscriber went away.
  defp other_down(state, ref, pid) do
    case Waiters.down(state.waiters, ref) do
      {:ok, waiters} -> %{state | waiters: waiters}
      :unknown -> %{state | subscribers: Map.delete(state.subscribers, pid)}
    end
  end

  defp route(state, result, touched \\ []), do: {:noreply, Result.apply(state, result, touched)}

  @impl true
  def terminate(reason, %__MODULE__{native: native}) do
    # A clean stop says goodbye so peers do not wait for a timeout; a crash does not.
    Native.stop(native, clean?(reason))
  end

  def terminate(_reason, _state), do: :ok

  defp clean?(:normal), do: true
  defp clean?(:shutdown), do: true
  defp clean?({:shutdown, _}), do: true
  defp clean?(_), do: false
end
