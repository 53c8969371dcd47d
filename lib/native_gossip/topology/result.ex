defmodule NativeGossip.Topology.Result do
  @moduledoc false
  # What a topology server does with a NativeGossip.Connector result: carries out its
  # effects (connect attempts, each in a monitored process whose :DOWN the server hands
  # back to Connector.finished/3; timers; calls to the native side; log lines), then
  # hands its peer events to the log, subscribers, telemetry, the short-name resolver,
  # NativeGossip.EPMD and the callers waiting in await_members/2.

  require Logger

  alias NativeGossip.{Connector, Log, Native, ShortNames, Telemetry, Topology}
  alias NativeGossip.Connector.World
  alias NativeGossip.Topology.Waiters

  # The connector's new state, its effects carried out, and its events to subscribers,
  # telemetry, waiters and the log. `touched`: peers whose status may have changed
  # without an event (forgotten).
  @spec apply(Topology.t(), Connector.result(), [node()]) :: Topology.t()
  def apply(state, {events, effects, connector}, touched) do
    old = state.connector
    # The remote address of each new connection, read once for what follows.
    via = for {:connected, node} <- events, into: %{}, do: {node, World.dist_address(node)}
    state = Enum.reduce(effects, %{state | connector: connector}, &carry_out(&1, &2, via))
    nodes = Enum.uniq(touched ++ Enum.map(events, &elem(&1, 1)))
    state = count_connected(state, old, nodes, events)
    for {event, node} <- events, do: notify(state, event, node)
    state = %{state | hosts: prove_hosts(state, events, via)}

    if nodes == [],
      do: state,
      else: %{state | waiters: Waiters.moved(state.waiters, old, connector, nodes)}
  end

  # The connector's effects (Connector.effect/0); `via`: new connections' addresses.
  defp carry_out({:attempt, node}, state, _via) do
    connect = state.connect

    # The exit reason carries the result, so one :DOWN tells success and failure. A
    # connect function that raises is a failure like another (logged by the
    # connector), not a crash report from a bare process.
    {_pid, ref} =
      spawn_monitor(fn ->
        result =
          try do
            connect.(node)
          catch
            kind, reason -> {:crashed, {kind, reason}}
          end

        exit({:native_gossip_connect, result})
      end)

    %{state | attempts: Map.put(state.attempts, ref, node)}
  end

  defp carry_out({:wake, node, ms}, state, _via) do
    Process.send_after(self(), {:native_gossip_turn, node}, ms)
    state
  end

  defp carry_out({:report_after, node, ms}, state, _via) do
    Native.report_after(state.native, Atom.to_string(node), max(ms, 0))
    state
  end

  defp carry_out({:set_connected, node, connected?}, state, via) do
    # The connection's remote address proves where the peer is (see
    # NativeGossip.Native.set_connected/4 and docs/PROTOCOL.md, "Threat model").
    address = if connected?, do: Map.get_lazy(via, node, fn -> World.dist_address(node) end)
    Native.set_connected(state.native, Atom.to_string(node), connected?, address)
    state
  end

  defp carry_out({:log, :warning, message}, state, _via) do
    Logger.warning(message)
    state
  end

  defp carry_out({:log, :debug, message}, state, _via) do
    Log.debug(state.libcluster, message)
    state
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
    name = state.options.name

    cond do
      state.connected == 0 and count > 0 ->
        [node | _] = for {:connected, n} <- events, do: n
        Logger.info("NativeGossip topology #{inspect(name)} connected to its first peer, #{node}")

      state.connected > 0 and count == 0 ->
        Logger.info("NativeGossip topology #{inspect(name)} has no connected peer any more")

      true ->
        :ok
    end

    %{state | connected: count}
  end

  # A connection proves its remote address: the one a short host name maps to (see
  # ShortNames) and the one NativeGossip.EPMD answers for the node.
  defp prove_hosts(%{hosts: hosts}, events, via) do
    Enum.reduce(events, hosts, fn
      {:connected, node}, h ->
        ip = via[node]
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

  @doc """
  A peer event to the log (`:left`, `:lost`), the debug log, subscribers and telemetry
  (`extra`: more telemetry metadata, such as a `:dead` event's evidence).
  """
  @spec notify(Topology.t(), atom(), node(), map()) :: :ok
  def notify(%{options: %{name: name}} = state, event, node, extra \\ %{}) do
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

    Log.debug(state.libcluster, fn ->
      "NativeGossip topology #{inspect(name)}: #{event} #{node}"
    end)

    for {pid, _ref} <- state.subscribers, do: send(pid, {:native_gossip, name, event, node})
    Telemetry.peer(name, event, node, Connector.tags(state.connector, node), extra)
  end
end
