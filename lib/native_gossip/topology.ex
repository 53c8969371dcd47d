defmodule NativeGossip.Topology do
  @moduledoc false
  # The thin server around one native topology. It owns the native resource (the
  # native thread watches it with a monitor and stops when it dies) and routes what
  # arrives: peer reports and distribution events to NativeGossip.Connector (who to
  # connect, and when), the peer events that result to subscribers and telemetry, the
  # drop counters to NativeGossip.Telemetry's summary, and seed names to a resolver.

  use GenServer
  require Logger

  alias NativeGossip.{Connector, Log, Native, Options, ShortNames, Telemetry}

  @registry NativeGossip.Registry

  defstruct [
    :options,
    :native,
    :connector,
    hosts: nil,
    summary: nil,
    subscribers: %{},
    waiters: [],
    connected: 0,
    seed_task: nil,
    seeds: [],
    warned: false
  ]

  # The warnings about a topology's options wait this long after its start: in a freshly
  # booted VM the first log line loads the logger's modules, which took milliseconds
  # out of the join when it was logged at once. (A topology stopped before then says
  # nothing: logging on the way out of every short-lived test topology was noise.)
  @warn_after 500

  @doc false
  # `origin` says where this start comes from, for the error when a topology of the same
  # name is already running: `:config`, `{:libcluster, topology}`, or (nil) the caller,
  # the supervisor that starts the child. Kept as a term and only described in that
  # error, so a start builds no text.
  def start_link(%Options{} = options, libcluster_topology \\ nil, origin \\ nil) do
    origin = origin || caller_origin(libcluster_topology)
    # The registry's value: {native resource once started, origin}.
    name = {:via, Registry, {@registry, options.name, {nil, origin}}}

    case GenServer.start_link(__MODULE__, {options, libcluster_topology}, name: name) do
      {:error, {:already_started, pid}} = error ->
        first =
          case Registry.lookup(@registry, options.name) do
            [{^pid, {_, first}}] -> describe_origin(first)
            _ -> "elsewhere"
          end

        Logger.error(
          "NativeGossip topology #{inspect(options.name)} is already running " <>
            "(#{inspect(pid)}, started from #{first}); this start, from " <>
            "#{describe_origin(origin)}, is " <>
            "refused. Start each topology once: in config :native_gossip, :topologies, or " <>
            "in a supervision tree, or as a libcluster topology (or give it another :name)"
        )

        error

      other ->
        other
    end
  end

  defp caller_origin(nil) do
    case Process.info(self(), :registered_name) do
      {:registered_name, name} -> {:caller, name}
      _ -> {:caller, self()}
    end
  end

  defp caller_origin(libcluster_topology), do: {:libcluster, libcluster_topology}

  defp describe_origin(:config), do: "config :native_gossip, :topologies"
  defp describe_origin({:caller, pid}) when is_pid(pid), do: "process #{inspect(pid)}"
  defp describe_origin({:caller, name}), do: inspect(name)

  defp describe_origin({:libcluster, topology}),
    do: "libcluster's topology #{inspect(topology)} (NativeGossip.Strategy)"

  @doc false
  # The native resource of a running topology, for calls that need not go through the
  # server's mailbox (members, stats, announce).
  def native!(name), do: name |> lookup!() |> elem(1)

  @doc false
  def server!(name), do: name |> lookup!() |> elem(0)

  defp lookup!(name) do
    case Registry.lookup(@registry, name) do
      [{pid, {native, _origin}}] when native != nil ->
        {pid, native}

      _ ->
        raise ArgumentError, "no NativeGossip topology named #{inspect(name)} is running"
    end
  end

  @impl true
  def init({options, libcluster}) do
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
        start_native(options, libcluster)
    end
  end

  defp start_native(options, libcluster) do
    # Exits of linked processes (the parent supervisor) must reach terminate/2, so that
    # a clean shutdown sends the goodbye heartbeat.
    Process.flag(:trap_exit, true)

    with {:ok, native_options} <- Options.to_native(options, Atom.to_string(node())),
         {:ok, native} <- Native.start(native_options) do
      {_, _} = Registry.update_value(@registry, options.name, fn {_, o} -> {native, o} end)
      :ok = :net_kernel.monitor_nodes(true, node_type: :all)
      Process.send_after(self(), :native_gossip_summary, options.log_interval)
      connector = Connector.new(native, options, libcluster)
      hosts = if options.resolve_short_names, do: ShortNames.new(node())

      state = %__MODULE__{
        options: options,
        native: native,
        connector: connector,
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

  defp warn(%{options: options} = state) do
    warn_if_unauthenticated(options)
    warn_if_short_secret(options)
    warn_if_compat(options)

    for note <- options.notes,
        do: Logger.warning("NativeGossip topology #{inspect(options.name)}: #{note}")

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

  defp warn_if_unauthenticated(%Options{secrets: []} = o) do
    Logger.warning(
      "NativeGossip topology #{inspect(o.name)} has no :secret: any host that can send to " <>
        "#{:inet.ntoa(o.multicast_addr)}:#{o.port} can make this node connect to a name of " <>
        "its choosing. Set the same :secret on every node to authenticate heartbeats."
    )
  end

  defp warn_if_unauthenticated(_), do: :ok

  # HMAC takes a key of any length, but a short one can be guessed offline from one
  # captured heartbeat.
  defp warn_if_short_secret(%Options{secrets: secrets} = o) do
    if Enum.any?(secrets, &(byte_size(&1) < 16)) do
      Logger.warning(
        "NativeGossip topology #{inspect(o.name)}: a :secret is shorter than 16 bytes; " <>
          "anyone who captures a heartbeat can try to guess it offline. Use at least 16 " <>
          "random bytes (for example :crypto.strong_rand_bytes(24) |> Base.encode64())."
      )
    end
  end

  defp warn_if_compat(%Options{compat: :libcluster} = o) do
    Logger.warning(
      "NativeGossip topology #{inspect(o.name)} also speaks libcluster's Gossip format " <>
        "(compat: :libcluster), which has no MAC and no replay protection. Remove :compat " <>
        "once the last libcluster node is gone."
    )
  end

  defp warn_if_compat(_), do: :ok

  @impl true
  def handle_call(:subscribe, {pid, _}, state) do
    # Replay what is already known: a subscriber always comes after the topology's
    # start, and peers may have been heard in between.
    unless Map.has_key?(state.subscribers, pid) do
      Enum.each(Connector.status(state.connector), fn {node, status} ->
        send(pid, {:native_gossip, state.options.name, :discovered, node})

        if status == :connected,
          do: send(pid, {:native_gossip, state.options.name, :connected, node})
      end)
    end

    subscribers = Map.put_new_lazy(state.subscribers, pid, fn -> Process.monitor(pid) end)

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
    # One scan of the peers when a caller starts waiting; after that each event moves
    # each waiter's count by what it changed (see wake_waiters/3): O(waiters) an event.
    have = connected_matching(state, match)

    if have >= count do
      {:reply, :ok, state}
    else
      ref = make_ref()

      timer =
        if timeout != :infinity, do: Process.send_after(self(), {:await_timeout, ref}, timeout)

      # A caller that goes away stops waiting (with :infinity, nothing else would).
      {caller, _} = from

      waiter = %{
        ref: ref,
        from: from,
        match: match,
        count: count,
        have: have,
        timer: timer,
        monitor: Process.monitor(caller)
      }

      {:noreply, %{state | waiters: [waiter | state.waiters]}}
    end
  end

  def handle_call(:unsubscribe, {pid, _}, state) do
    {ref, subscribers} = Map.pop(state.subscribers, pid)
    if ref, do: Process.demonitor(ref, [:flush])
    {:reply, :ok, %{state | subscribers: subscribers}}
  end

  # Events wait on the native side, which sends :native_gossip_events once until they
  # have all been taken: this mailbox never holds more than one such message, however
  # much traffic arrives. A batch at a time, so other messages are served in between.
  @batch 256

  @impl true
  def handle_info(:native_gossip_events, state) do
    {events, more} = Native.take_events(state.native, @batch)
    if more, do: send(self(), :native_gossip_events)
    {:noreply, Enum.reduce(events, state, &peer_event/2)}
  end

  def handle_info({:await_timeout, ref}, state) do
    case Enum.split_with(state.waiters, &(&1.ref == ref)) do
      {[w], rest} ->
        Process.demonitor(w.monitor, [:flush])
        GenServer.reply(w.from, {:error, {:timeout, w.have}})
        {:noreply, %{state | waiters: rest}}

      {[], _} ->
        {:noreply, state}
    end
  end

  def handle_info({:native_gossip_deferred, node}, state),
    do: route(state, Connector.deferred(state.connector, node))

  def handle_info({:nodeup, node, _info}, state),
    do: route(state, Connector.nodeup(state.connector, node))

  def handle_info({:nodedown, node, _info}, state),
    do: route(state, Connector.nodedown(state.connector, node))

  def handle_info({:DOWN, ref, :process, _, reason}, %{seed_task: ref} = state) do
    # The resolver's result (or its crash): seeds now, and again at the next refresh.
    Process.send_after(self(), :native_gossip_resolve_seeds, state.options.seed_refresh)

    case reason do
      {:native_gossip_seeds, seeds} when seeds != state.seeds ->
        Log.debug(state.connector.libcluster, fn ->
          "NativeGossip: seeds now #{inspect(seeds)}"
        end)

        Native.set_seeds(state.native, Enum.map(seeds, &Options.seed_string/1))
        {:noreply, %{state | seed_task: nil, seeds: seeds}}

      _ ->
        {:noreply, %{state | seed_task: nil}}
    end
  end

  def handle_info({:DOWN, ref, :process, pid, reason}, state) do
    case Enum.split_with(state.waiters, &(&1.monitor == ref)) do
      {[w], rest} ->
        _ = if w.timer, do: Process.cancel_timer(w.timer)
        {:noreply, %{state | waiters: rest}}

      {[], _} ->
        attempt_or_subscriber_down(state, ref, pid, reason)
    end
  end

  def handle_info(:native_gossip_resolve_seeds, state), do: {:noreply, resolve_seeds(state)}

  def handle_info(:native_gossip_warn, state), do: {:noreply, warn(state)}

  def handle_info({:native_gossip_membership, status}, state) do
    case status do
      :joined ->
        Logger.info(
          "NativeGossip topology #{inspect(state.options.name)} joined its multicast group"
        )

      {:not_joined, message} ->
        Logger.warning(
          "NativeGossip topology #{inspect(state.options.name)}: #{message}; retrying in the background"
        )
    end

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

  defp attempt_or_subscriber_down(state, ref, pid, reason) do
    case Connector.down(state.connector, ref, reason) do
      :unknown -> {:noreply, %{state | subscribers: Map.delete(state.subscribers, pid)}}
      result -> route(state, result)
    end
  end

  # The native side validated the name, and without a secret admitted at most
  # :max_names names that were not atoms yet (with a secret, it authenticated it).
  #
  # Where this node connects follows an event's address only when it may: `proven`
  # (authenticated and bound to its source, or pinned by a connection) always; an
  # unproven one (no secret, or a libcluster-format heartbeat) only without a secret,
  # where nothing better exists, and then never over a proven one (NativeGossip.EPMD,
  # ShortNames). With a secret, an unproven address is never used.
  defp peer_event(
         %{
           kind: kind,
           name: name,
           address: {ip, _port},
           lead: lead,
           tags: tags,
           dist_port: dist_port,
           proven: proven
         },
         state
       ) do
    node = String.to_atom(name)
    c = state.connector
    usable = proven or state.options.secrets == []

    # Without epmd (NativeGossip.EPMD): where this node's distribution listens.
    case kind do
      :forgotten -> NativeGossip.EPMD.forget(node)
      _ when dist_port > 0 and usable -> NativeGossip.EPMD.learn(node, ip, dist_port, proven)
      _ -> :ok
    end

    state =
      if usable and kind in [:discovered, :heard], do: learn_host(state, node, ip), else: state

    {:noreply, state} =
      case kind do
        :discovered ->
          route(state, Connector.heard(c, node, kind, lead, tags))

        :heard ->
          route(state, Connector.heard(c, node, kind, lead, tags))

        :tags_changed ->
          route(state, Connector.tags_changed(c, node, tags))

        :left ->
          route(release_host(state, node), Connector.left(c, node))

        :lost ->
          route(state, Connector.lost(c, node))

        :forgotten ->
          route(release_host(state, node), Connector.forgotten(c, node), [node])
      end

    state
  end

  # The connector's new state, and its events to subscribers, telemetry and the log.
  # `touched`: peers whose status may have changed without an event (forgotten).
  defp route(state, {events, connector}, touched \\ []) do
    old = state.connector
    nodes = Enum.uniq(touched ++ Enum.map(events, &elem(&1, 1)))
    state = count_connected(%{state | connector: connector}, old, nodes, events)
    for {event, node} <- events, do: notify(state, event, node)
    state = %{state | hosts: prove_hosts(state, events)}
    {:noreply, if(nodes == [], do: state, else: wake_waiters(state, old, nodes))}
  end

  # How many peers are connected, kept up to date from the status of the peers an event
  # is about (counting the whole status map at each event would cost O(peers)); one
  # info line when the first is connected and when the last goes: what a node at log
  # level :info says about its cluster.
  defp count_connected(state, old, nodes, events) do
    new = state.connector.status

    delta =
      Enum.reduce(nodes, 0, fn node, d ->
        was = Map.get(old.status, node) == :connected
        is = Map.get(new, node) == :connected
        d + if(is, do: 1, else: 0) - if(was, do: 1, else: 0)
      end)

    count = max(state.connected + delta, 0)
    name = inspect(state.options.name)

    cond do
      state.connected == 0 and count > 0 ->
        [node | _] = for {:connected, n} <- events, do: n
        Logger.info("NativeGossip topology #{name} connected to its first peer, #{node}")

      state.connected > 0 and count == 0 ->
        Logger.info("NativeGossip topology #{name} has no connected peer any more")

      true ->
        :ok
    end

    %{state | connected: count}
  end

  defp counts(connector, node, match) do
    if Map.get(Connector.status(connector), node) == :connected and
         match.(Connector.tags(connector, node)),
       do: 1,
       else: 0
  end

  # Connected peers whose tags `match` takes.
  defp connected_matching(state, match) do
    c = state.connector

    Enum.count(Connector.status(c), fn {node, status} ->
      status == :connected and match.(Connector.tags(c, node))
    end)
  end

  defp wake_waiters(%{waiters: []} = state, _old, _nodes), do: state

  # Each waiter's count moves by what the events' peers changed: connected or not,
  # matching or not (their tags may have changed too).
  defp wake_waiters(state, old, nodes) do
    new = state.connector

    waiters =
      Enum.map(state.waiters, fn w ->
        delta =
          Enum.reduce(nodes, 0, fn node, d ->
            d + counts(new, node, w.match) - counts(old, node, w.match)
          end)

        %{w | have: w.have + delta}
      end)

    {done, waiting} = Enum.split_with(waiters, &(&1.have >= &1.count))

    for w <- done do
      _ = if w.timer, do: Process.cancel_timer(w.timer)
      Process.demonitor(w.monitor, [:flush])
      GenServer.reply(w.from, :ok)
    end

    %{state | waiters: waiting}
  end

  # A connection proves its remote address: the one a short host name maps to (see
  # ShortNames) and the one NativeGossip.EPMD answers for the node.
  defp prove_hosts(%{hosts: hosts}, events) do
    Enum.reduce(events, hosts, fn
      {:connected, node}, h ->
        ip = Connector.dist_address(node)
        _ = if ip, do: NativeGossip.EPMD.prove(node, ip)
        if h, do: ShortNames.connected(h, node, ip)

      _, nil ->
        nil

      {:disconnected, node}, h ->
        ShortNames.disconnected(h, node)

      _, h ->
        h
    end)
  end

  defp notify(%{options: %{name: name}} = state, event, node) do
    case event do
      :left ->
        Logger.info("NativeGossip: #{node} left topology #{inspect(name)}")

      :lost ->
        Logger.info(
          "NativeGossip: no heartbeat from #{node} for #{state.options.lost_after} ms " <>
            "(topology #{inspect(name)})"
        )

      _ ->
        :ok
    end

    Log.debug(state.connector.libcluster, fn ->
      "NativeGossip topology #{inspect(name)}: #{event} #{node}"
    end)

    for {pid, _ref} <- state.subscribers, do: send(pid, {:native_gossip, name, event, node})
    Telemetry.peer(name, event, node, Connector.tags(state.connector, node))
  end

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

  defp learn_host(%{hosts: nil} = state, _node, _ip), do: state
  defp learn_host(state, node, ip), do: %{state | hosts: ShortNames.learn(state.hosts, node, ip)}

  defp release_host(%{hosts: nil} = state, _node), do: state
  defp release_host(state, node), do: %{state | hosts: ShortNames.release(state.hosts, node)}
end
