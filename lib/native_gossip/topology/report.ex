defmodule NativeGossip.Topology.Report do
  @moduledoc false
  # One peer report of the native side (`:discovered`, `:heard`, `:tags_changed`,
  # `:left`, `:lost`, `:forgotten`), as the topology server applies it: where the peer's
  # distribution listens (NativeGossip.EPMD) and its short host name (ShortNames), the
  # connector's decision (NativeGossip.Connector) and the failure detector's
  # (NativeGossip.Detector), each carried out.

  alias NativeGossip.{Connector, Detector, ShortNames, Topology}
  alias NativeGossip.Topology.{Detection, Result}

  # The native side validated the name, and without a secret admitted at most
  # :max_names names that were not atoms yet (with a secret, it authenticated it).
  #
  # Where this node connects follows an event's address only when it may: `proven`
  # (authenticated and bound to its source, or pinned by a connection) always; an
  # unproven one (no secret, or a libcluster-format heartbeat) only without a secret,
  # where nothing better exists, and then never over a proven one (NativeGossip.EPMD,
  # ShortNames). With a secret, an unproven address is never used.
  @doc "Applies one peer report of the native side (a map, see NativeGossip.Native)."
  @spec apply(map(), Topology.t()) :: Topology.t()
  def apply(
        %{
          kind: kind,
          name: name,
          address: {ip, _port},
          lead: lead,
          tags: tags,
          dist_port: dist_port,
          proven: proven
        } = report,
        state
      ) do
    node = String.to_atom(name)
    usable = proven or state.options.secrets == []

    # Without epmd (NativeGossip.EPMD): where this node's distribution listens.
    case kind do
      :forgotten -> NativeGossip.EPMD.forget(node)
      _ when dist_port > 0 and usable -> NativeGossip.EPMD.learn(node, ip, dist_port, proven)
      _ -> :ok
    end

    state =
      if usable and kind in [:discovered, :heard], do: learn_host(state, node, ip), else: state

    state = connector(state, kind, node, lead, tags, Map.get(report, :held, 0))

    # Failure detection: a connected peer gone silent is probed (any other is published
    # lost); any other report of a peer ends its suspicion.
    d = state.detector

    case kind do
      :lost -> Detection.apply(state, Detector.lost(d, node, Detection.helpers(state, node)))
      _ -> Detection.apply(state, Detector.clear(d, node))
    end
  end

  # The connector's part (NativeGossip.Connector), carried out.
  defp connector(state, kind, node, lead, tags, held) do
    c = state.connector
    # Connected and silent, never published lost (NativeGossip.Detector): heard again,
    # it is no news.
    silent = Detector.silent?(state.detector, node)

    case kind do
      :discovered when silent ->
        route(state, hush(Connector.heard(c, node, kind, lead, tags, held), node))

      :discovered ->
        route(state, Connector.heard(c, node, kind, lead, tags, held))

      :heard ->
        route(state, Connector.heard(c, node, kind, lead, tags))

      :tags_changed ->
        route(state, Connector.tags_changed(c, node, tags))

      :left ->
        route(release_host(state, node), Connector.left(c, node))

      :lost ->
        # Published, or not, by the failure detector (apply/2).
        state

      :forgotten ->
        route(release_host(state, node), Connector.forgotten(c, node), [node])
    end
  end

  defp hush({events, effects, c}, node),
    do: {Enum.reject(events, &(&1 in [discovered: node, connected: node])), effects, c}

  defp route(state, result, touched \\ []), do: Result.apply(state, result, touched)

  defp learn_host(%{hosts: nil} = state, _node, _ip), do: state
  defp learn_host(state, node, ip), do: %{state | hosts: ShortNames.learn(state.hosts, node, ip)}

  defp release_host(%{hosts: nil} = state, _node), do: state
  defp release_host(state, node), do: %{state | hosts: ShortNames.release(state.hosts, node)}
end
