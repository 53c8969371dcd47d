defmodule NativeGossip.Topology.Detection do
  @moduledoc false
  # What a topology server does with a NativeGossip.Detector result: carries out its
  # effects (probes, each in a process of its own or through another member's
  # NativeGossip.Prober; timers; the disconnect; the state members/1 shows) and hands
  # its events (:lost, :suspect, :dead) to the log, subscribers and telemetry.

  require Logger

  alias NativeGossip.{Connector, Detector, Prober, Topology}
  alias NativeGossip.Topology.Result

  @spec apply(Topology.t(), Detector.result()) :: Topology.t()
  def apply(state, {events, effects, detector}) do
    state = %{state | detector: detector}
    Enum.each(effects, &carry_out(&1, state))
    for {event, node} <- events, do: announce(state, event, node)
    state
  end

  @doc """
  The members to ask about `node`, shuffled: the peers this node is connected to
  (visible nodes only: hidden ones are left alone), `node` and peers under suspicion
  excepted; nil when `node` itself is not connected (nothing to confirm).
  """
  @spec helpers(Topology.t(), node()) :: [node()] | nil
  def helpers(state, node) do
    status = Connector.status(state.connector)

    if Map.get(status, node) == :connected and node in Node.list() do
      suspects = state.detector.probing

      peers =
        for {peer, :connected} <- status,
            peer != node,
            not Map.has_key?(suspects, peer),
            do: peer

      Enum.shuffle(peers)
    end
  end

  defp carry_out({:ping, node, id}, state) do
    server = self()
    timeout = state.detector.timeout
    spawn(fn -> send(server, {:native_gossip_probe, id, :direct, Prober.ping(node, timeout)}) end)
  end

  defp carry_out({:ask, helper, node, id}, state) do
    case Prober.ask(helper, node, id, state.detector.timeout, self()) do
      :ok -> :ok
      :not_sent -> send(self(), {:native_gossip_probe, id, helper, :not_connected})
    end
  end

  defp carry_out({:timer, id, ms}, _state),
    do: Process.send_after(self(), {:native_gossip_probe_timeout, id}, ms)

  defp carry_out({:reprobe, node, ms}, _state),
    do: Process.send_after(self(), {:native_gossip_reprobe, node}, ms)

  defp carry_out({:disconnect, node}, state) do
    disconnect = state.disconnect
    # Off the server: a libcluster disconnect function logs and lists nodes.
    spawn(fn -> disconnect.(node) end)
  end

  defp carry_out({:state, node, nil}, state), do: :ets.delete(state.states, node)
  defp carry_out({:state, node, s}, state), do: :ets.insert(state.states, {node, s})

  defp announce(state, :lost, node), do: Result.notify(state, :lost, node)

  defp announce(state, :suspect, node) do
    Logger.info(
      "NativeGossip: no heartbeat from #{node} for #{state.options.lost_after} ms and it is " <>
        "connected: probing it (topology #{inspect(state.options.name)})"
    )

    Result.notify(state, :suspect, node)
  end

  defp announce(state, :dead, node) do
    evidence = Detector.evidence(state.detector, node)

    Logger.warning(
      "NativeGossip: #{node} declared dead and disconnected: no heartbeat for " <>
        "#{state.options.lost_after} ms and no probe answered (#{describe(evidence)}) " <>
        "(topology #{inspect(state.options.name)})"
    )

    Result.notify(state, :dead, node, %{evidence: evidence})
  end

  defp describe(%{direct: direct, indirect: indirect}) do
    Enum.join(
      ["direct: #{direct}" | for({helper, o} <- Enum.sort(indirect), do: "via #{helper}: #{o}")],
      ", "
    )
  end
end
