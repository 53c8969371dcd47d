defmodule NativeGossip.Topology do
  @moduledoc false
  # The thin server around one native topology. It owns the native resource (the
  # native thread watches it with a monitor and stops when it dies), turns peer events
  # into connection attempts that never block it, and tells the native side which peers
  # are connected so that connected peers cost no messages at all.

  use GenServer
  require Logger

  alias NativeGossip.{Connector, Native, Options, ShortNames}

  @registry NativeGossip.Registry

  # Of a pair of nodes that hear each other, one connects at once (the native side says
  # which: a running node towards a newcomer, else the smaller name) and the other waits
  # this long before it tries too. Two simultaneous connects between the same nodes
  # cost both a handshake that net_kernel then throws away, and a new node that joins N
  # others would otherwise make 2N handshakes, not N. Once the
  # first side's handshake has reached the second, a connect from the second just
  # waits for it, so this only needs to cover the time a handshake takes to arrive; it
  # is also all a pair loses when the first side cannot connect (a name it cannot
  # resolve, a connect function that refuses, a one-way multicast path).
  @defer_ms 100

  # peers: node => :connected | :disconnected, for every peer the native table holds,
  # so that :connected/:disconnected are sent once per change.
  defstruct [
    :options,
    :native,
    :libcluster,
    connector: %Connector{},
    hosts: %{},
    dropped: %{},
    peers: %{},
    subscribers: %{},
    seed_task: nil,
    seeds: []
  ]

  @doc false
  def start_link(%Options{} = options, libcluster_topology \\ nil) do
    GenServer.start_link(__MODULE__, {options, libcluster_topology},
      name: {:via, Registry, {@registry, options.name}}
    )
  end

  @doc false
  # The native resource of a running topology, for calls that need not go through the
  # server's mailbox (members, stats, announce).
  def native!(name), do: name |> lookup!() |> elem(1)

  @doc false
  def server!(name), do: name |> lookup!() |> elem(0)

  defp lookup!(name) do
    case Registry.lookup(@registry, name) do
      [{pid, native}] when native != nil ->
        {pid, native}

      _ ->
        raise ArgumentError, "no NativeGossip topology named #{inspect(name)} is running"
    end
  end

  @impl true
  def init({options, libcluster}) do
    Logger.metadata(native_gossip: options.name)

    cond do
      error = Native.load_error() ->
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
      {_, _} = Registry.update_value(@registry, options.name, fn _ -> native end)
      :ok = :net_kernel.monitor_nodes(true, node_type: :all)
      warn_if_unauthenticated(options)
      warn_if_compat(options)
      _ = NativeGossip.Telemetry.load()
      Process.send_after(self(), :native_gossip_summary, options.log_interval)
      state = %__MODULE__{options: options, native: native, libcluster: libcluster}
      {:ok, resolve_seeds(state)}
    else
      {:error, {kind, message}} ->
        {:stop, {kind, message}}
    end
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
    unless Map.has_key?(state.subscribers, pid) do
      # Replay what is already known: a subscriber always comes after the topology's
      # start, and peers may have been heard in between.
      for {node, status} <- state.peers do
        send(pid, {:native_gossip, state.options.name, :discovered, node})

        if status == :connected,
          do: send(pid, {:native_gossip, state.options.name, :connected, node})
      end
    end

    subscribers = Map.put_new_lazy(state.subscribers, pid, fn -> Process.monitor(pid) end)

    {:reply, :ok, %{state | subscribers: subscribers}}
  end

  def handle_call(:unsubscribe, {pid, _}, state) do
    {ref, subscribers} = Map.pop(state.subscribers, pid)
    if ref, do: Process.demonitor(ref, [:flush])
    {:reply, :ok, %{state | subscribers: subscribers}}
  end

  @impl true
  def handle_info({:native_gossip, kind, name, {ip, _port}, _incarnation, lead}, state)
      when kind in [:discovered, :heard] do
    # The native side validated the name (and with a secret, authenticated it).
    node = String.to_atom(name)
    state = learn_host(state, node, ip)

    state =
      if kind == :discovered do
        # New, back from lost, or a new incarnation: the native side starts it as not
        # connected, and so do we, so that the two agree and :connected is sent again.
        notify(%{state | peers: Map.put(state.peers, node, :disconnected)}, :discovered, node)
      else
        %{state | peers: Map.put_new(state.peers, node, :disconnected)}
      end

    cond do
      node in list_nodes(state) -> {:noreply, connected(state, node)}
      connectable?(node) -> {:noreply, attempt(state, node, if(lead, do: 0, else: @defer_ms))}
      # Listed in members/1, but a connect could only fail (and make net_kernel log).
      true -> {:noreply, state}
    end
  end

  def handle_info({:native_gossip, :left, name, _address, _incarnation, _lead}, state) do
    node = String.to_atom(name)
    Logger.info("NativeGossip: #{node} left topology #{inspect(state.options.name)}")
    state = %{state | connector: Connector.forget(state.connector, node)}
    {:noreply, notify(state, :left, node)}
  end

  def handle_info({:native_gossip, :lost, name, _address, _incarnation, _lead}, state) do
    Logger.info(
      "NativeGossip: no heartbeat from #{name} for #{state.options.lost_after} ms " <>
        "(topology #{inspect(state.options.name)})"
    )

    {:noreply, notify(state, :lost, String.to_atom(name))}
  end

  def handle_info({:native_gossip, :forgotten, name, _address, _incarnation, _lead}, state) do
    node = String.to_atom(name)

    {:noreply,
     %{
       state
       | connector: Connector.forget(state.connector, node),
         peers: Map.delete(state.peers, node)
     }}
  end

  def handle_info({:native_gossip_deferred, node}, state) do
    # This side let the other connect first (see @defer_ms); connect now unless it did.
    cond do
      Map.get(state.peers, node) != :disconnected -> {:noreply, state}
      node in list_nodes(state) -> {:noreply, connected(state, node)}
      true -> {:noreply, attempt(state, node, 0)}
    end
  end

  def handle_info(
        {:DOWN, ref, :process, _, {:native_gossip_seeds, seeds}},
        %{seed_task: ref} = state
      ) do
    Process.send_after(self(), :native_gossip_resolve_seeds, state.options.seed_refresh)

    if seeds != state.seeds do
      Logger.debug("NativeGossip: seeds now #{inspect(seeds)}")
      Native.set_seeds(state.native, Enum.map(seeds, &Options.seed_string/1))
    end

    {:noreply, %{state | seed_task: nil, seeds: seeds}}
  end

  def handle_info(:native_gossip_resolve_seeds, state) do
    {:noreply, resolve_seeds(state)}
  end

  def handle_info({:native_gossip_membership, :joined}, state) do
    Logger.info("NativeGossip topology #{inspect(state.options.name)} joined its multicast group")
    {:noreply, state}
  end

  def handle_info({:native_gossip_membership, {:not_joined, message}}, state) do
    Logger.warning(
      "NativeGossip topology #{inspect(state.options.name)}: #{message}; retrying in the background"
    )

    {:noreply, state}
  end

  def handle_info(:native_gossip_summary, state) do
    Process.send_after(self(), :native_gossip_summary, state.options.log_interval)
    dropped = Native.stats(state.native).dropped

    # At most one line per reason per interval, never one per packet.
    deltas =
      for {reason, count} <- dropped,
          reason != :own_packet,
          (delta = count - Map.get(state.dropped, reason, 0)) > 0,
          into: %{},
          do: {reason, delta}

    for {reason, delta} <- deltas do
      Logger.warning(
        "NativeGossip topology #{inspect(state.options.name)} dropped #{delta} datagram(s) " <>
          "in the last #{state.options.log_interval} ms: #{reason} (#{explain(reason)})"
      )
    end

    if deltas != %{} do
      NativeGossip.Telemetry.execute(
        [:native_gossip, :packets, :dropped],
        Map.put(deltas, :total, Enum.sum(Map.values(deltas))),
        %{topology: state.options.name, interval: state.options.log_interval}
      )
    end

    {:noreply, %{state | dropped: dropped}}
  end

  def handle_info({:native_gossip_fault, message}, state) do
    Logger.error(
      "NativeGossip topology #{inspect(state.options.name)} stopped by a native fault: #{message}"
    )

    {:stop, {:native_fault, message}, state}
  end

  def handle_info({:DOWN, ref, :process, _pid, _reason}, %{seed_task: ref} = state) do
    # The resolving task crashed: try again at the next refresh.
    Process.send_after(self(), :native_gossip_resolve_seeds, state.options.seed_refresh)
    {:noreply, %{state | seed_task: nil}}
  end

  def handle_info({:DOWN, ref, :process, pid, reason}, state) do
    case Connector.finished(state.connector, ref, reason) do
      :unknown ->
        {:noreply, %{state | subscribers: Map.delete(state.subscribers, pid)}}

      {node, :connected, connector} ->
        Logger.debug("NativeGossip: connected to #{node}")
        {:noreply, connected(%{state | connector: connector}, node)}

      {node, {:failed, why, failures}, connector} ->
        log_failure(node, why, failures)
        {:noreply, %{state | connector: connector}}
    end
  end

  def handle_info({:nodeup, node, _info}, state) do
    if Map.has_key?(state.peers, node),
      do: {:noreply, connected(state, node)},
      else: {:noreply, state}
  end

  def handle_info({:nodedown, node, _info}, state) do
    case state.peers do
      %{^node => :connected} ->
        Native.set_connected(state.native, Atom.to_string(node), false)
        state = %{state | peers: Map.put(state.peers, node, :disconnected)}
        {:noreply, notify(state, :disconnected, node)}

      _ ->
        {:noreply, state}
    end
  end

  def handle_info({:EXIT, _pid, reason}, state) do
    {:stop, reason, state}
  end

  def handle_info(_other, state), do: {:noreply, state}

  @impl true
  def terminate(reason, %__MODULE__{native: native}) do
    # A clean stop says goodbye so peers do not wait for a timeout; a crash does not.
    Native.stop(native, clean?(reason))
  end

  def terminate(_reason, _state), do: :ok

  @explanations %{
    too_short: "shorter than any heartbeat: another protocol on this port, or junk",
    too_long: "longer than any heartbeat: another protocol on this port, or junk",
    bad_magic: "not a NativeGossip packet: another protocol on this group and port",
    unsupported_version: "a NativeGossip version this node does not speak",
    malformed: "a NativeGossip header whose lengths do not add up: corrupted or forged",
    bad_name: "a node name outside the accepted rules",
    missing_signature: "unsigned, and this topology has a :secret: a node without one",
    bad_signature: "signed with a secret this topology does not have, or forged",
    unexpected_signature: "signed, and this topology has no :secret: a node with one",
    replay: "an old heartbeat again: duplicated on the network, or replayed",
    name_conflict: "another node announces this node's name",
    peer_table_full: "a new peer while the table holds :max_peers peers",
    rate_limited: "too many new names from one host (no :secret): see :new_peer_rate",
    legacy_bad_term:
      "a libcluster-format heartbeat whose term is not %{node: atom} (compat: :libcluster)",
    legacy_bad_ciphertext:
      "not NativeGossip, and not a libcluster heartbeat encrypted with this :secret " <>
        "(compat: :libcluster): another secret, or junk"
  }

  defp explain(reason), do: Map.get(@explanations, reason, "see NativeGossip.stats/1")

  defp clean?(:normal), do: true
  defp clean?(:shutdown), do: true
  defp clean?({:shutdown, _}), do: true
  defp clean?(_), do: false

  defp learn_host(%{options: %{resolve_short_names: true}} = state, node, ip),
    do: %{state | hosts: ShortNames.learn(state.hosts, node, ip)}

  defp learn_host(state, _node, _ip), do: state

  # Distribution connects only nodes named like this one: a short name (`a@host`)
  # when this node uses long names (`--name`), or a long one (`a@host.domain`,
  # `a@10.0.0.1`) when it uses short names, is refused by net_kernel.
  defp connectable?(node) do
    [_, host] = node |> Atom.to_string() |> String.split("@", parts: 2)
    long? = String.contains?(host, ".") or String.contains?(host, ":")
    long? == :net_kernel.longnames()
  end

  defp connected(state, node) do
    case state.peers do
      %{^node => :connected} ->
        state

      %{^node => _} ->
        Native.set_connected(state.native, Atom.to_string(node), true)
        peers = Map.put(state.peers, node, :connected)
        state = %{state | peers: peers, connector: Connector.connected(state.connector, node)}
        notify(state, :connected, node)

      _ ->
        state
    end
  end

  defp notify(state, event, node) do
    for {pid, _ref} <- state.subscribers do
      send(pid, {:native_gossip, state.options.name, event, node})
    end

    NativeGossip.Telemetry.execute(
      [:native_gossip, :peer, event],
      %{system_time: System.system_time()},
      %{topology: state.options.name, node: node}
    )

    state
  end

  defp attempt(state, node, defer) do
    %{connect: connect, list_nodes: list_nodes} = state.options
    libcluster = state.libcluster

    fun =
      if libcluster && Code.ensure_loaded?(Cluster.Strategy) do
        fn -> NativeGossip.Strategy.connect(libcluster, connect, list_nodes, node) end
      else
        fn -> apply_mfa(connect, node) end
      end

    %{state | connector: Connector.maybe_attempt(state.connector, node, fun, defer)}
  end

  defp list_nodes(%{options: %{list_nodes: {m, f, a}}}), do: apply(m, f, a)

  defp apply_mfa({m, f, a}, node), do: apply(m, f, a ++ [node])

  defp log_failure(node, why, 1) do
    Logger.warning(
      "NativeGossip: could not connect to #{node} (#{inspect(why)}); retrying with backoff " <>
        "while it keeps sending heartbeats"
    )
  end

  defp log_failure(node, why, failures) do
    Logger.debug("NativeGossip: connect to #{node} failed #{failures} times: #{inspect(why)}")
  end
end
