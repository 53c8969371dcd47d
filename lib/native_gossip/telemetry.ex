defmodule NativeGossip.Telemetry do
  @moduledoc """
  Telemetry events, emitted when the `:telemetry` library is loaded at run time
  (NativeGossip has no compile-time dependency on it). Attach handlers with
  `:telemetry.attach/4` or `:telemetry.attach_many/4`, or define metrics on them with
  `Telemetry.Metrics`.

  ## Peer events

  `[:native_gossip, :peer, event]`, with `event` one of `:discovered`, `:connected`,
  `:disconnected`, `:left`, `:lost` and `:tags_changed` (the events of
  `NativeGossip.subscribe/1`, with the same meaning), once per change, never per
  heartbeat.

    * measurements: `%{system_time: integer}` (`System.system_time/0`, native units)
    * metadata: `%{topology: atom, node: node, tags: %{String.t() => String.t()}}` (the
      peer's tags as last heard; `%{}` when it has none)

  ## Dropped datagrams

  `[:native_gossip, :packets, :dropped]`, at most once per `:log_interval` (default
  10 s), and only when datagrams were dropped in it: counts by reason over the
  interval, never one event per packet. The node's own heartbeats, looped back, are
  not counted.

    * measurements: `%{total: non_neg_integer}` plus one key per reason that occurred,
      among those of `NativeGossip.DropReason` (`:own_packet` excepted)
    * metadata: `%{topology: atom, interval: milliseconds}`

  ## With libcluster

  As a libcluster strategy (`NativeGossip.Strategy`), connections go through
  `Cluster.Strategy.connect_nodes/4`, which emits libcluster's own
  `[:libcluster, :connect_node, :ok | :error]` events.

  ## Example

      :telemetry.attach_many(
        "log-native-gossip",
        [[:native_gossip, :peer, :connected], [:native_gossip, :packets, :dropped]],
        fn event, measurements, metadata, _config ->
          IO.inspect({event, measurements, metadata})
        end,
        nil
      )
  """

  require Logger

  alias NativeGossip.DropReason

  @doc false
  # Loads :telemetry if it is on the code path (once, when the application starts: looking
  # for a module that is not there searches the whole code path).
  @spec load() :: boolean()
  def load, do: Code.ensure_loaded?(:telemetry)

  @doc false
  # A peer event of a topology: `[:native_gossip, :peer, event]`.
  @spec peer(atom(), atom(), node(), NativeGossip.tags()) :: :ok
  def peer(topology, event, node, tags \\ %{}) do
    execute(
      [:native_gossip, :peer, event],
      %{system_time: System.system_time()},
      %{topology: topology, node: node, tags: tags}
    )
  end

  # Drops that a healthy topology has: its own heartbeats looped back, and in compat
  # mode the libcluster copies of heartbeats from nodes that speak NativeGossip.
  @expected [:own_packet, :legacy_native_name]

  @doc false
  # The drop summary of one :log_interval: one warning per reason that occurred (never
  # one line per packet) and one telemetry event with the counts, from the counters
  # `previous` (at the last summary) and `current`. Returns `current`.
  @spec drop_summary(atom(), pos_integer(), map(), map()) :: map()
  def drop_summary(topology, interval, previous, current) do
    deltas =
      for {reason, count} <- current,
          reason not in @expected,
          (delta = count - Map.get(previous, reason, 0)) > 0,
          into: %{},
          do: {reason, delta}

    for {reason, delta} <- deltas do
      Logger.warning(
        "NativeGossip topology #{inspect(topology)} dropped #{delta} datagram(s) " <>
          "in the last #{interval} ms: #{reason} (#{DropReason.explain(reason)})"
      )
    end

    if deltas != %{} do
      execute(
        [:native_gossip, :packets, :dropped],
        Map.put(deltas, :total, Enum.sum(Map.values(deltas))),
        %{topology: topology, interval: interval}
      )
    end

    current
  end

  @doc false
  # Calls :telemetry.execute/3 if the library is loaded (a cheap check, unlike
  # Code.ensure_loaded?/1); a no-op otherwise. `apply/3` keeps the compiler from
  # wanting the module at build time.
  @spec execute([atom()], map(), map()) :: :ok
  def execute(event, measurements, metadata) do
    if function_exported?(:telemetry, :execute, 3) do
      apply(:telemetry, :execute, [event, measurements, metadata])
    end

    :ok
  end
end
