defmodule NativeGossip.Telemetry do
  @moduledoc """
  Telemetry events, sent when the application has the `:telemetry` library (an
  optional dependency of NativeGossip: add `{:telemetry, "~> 1.0"}` to your deps if
  nothing brings it already; Phoenix, Ecto and libcluster do). Without it nothing is
  sent and nothing fails. Attach handlers with
  `:telemetry.attach/4` or `:telemetry.attach_many/4`, or define metrics on them with
  `Telemetry.Metrics`.

  ## Peer events

  `[:native_gossip, :peer, event]`, with `event` one of `:discovered`, `:connected`,
  `:disconnected`, `:left`, `:lost`, `:tags_changed`, `:suspect` and `:dead` (the
  events of `NativeGossip.subscribe/1`, with the same meaning), once per change, never
  per heartbeat.

    * measurements: `%{system_time: integer}` (`System.system_time/0`, native units)
    * metadata: `%{topology: atom, node: node, tags: %{String.t() => String.t()}}` (the
      peer's tags as last heard; `%{}` when it has none); for `:dead`, also
      `evidence: %{direct: outcome, indirect: %{helper_node => outcome}}`, what each
      probe gave (`:failed`, `:timeout`, or `:not_connected` for a member with no
      connection to the peer), see "Failure detection" in the README

  ## Dropped datagrams

  `[:native_gossip, :packets, :dropped]`, at most once per `:log_interval` (default
  10 s), and only when datagrams were dropped in it: counts by reason over the
  interval, never one event per packet. The node's own heartbeats, looped back, are
  not drops (`stats/1` counts them as `looped_back`).

    * measurements: `%{total: non_neg_integer}` plus one key per reason that occurred,
      among those of `NativeGossip.DropReason` (`:own_packet` excepted)
    * metadata: `%{topology: atom, interval: milliseconds}`

  ## Heartbeats that could not be sent

  `[:native_gossip, :packets, :send_failed]`, at most once per `:log_interval`, when
  sends failed in it (no route to the group or broadcast address, an interface down,
  a firewall that rejects): the same interval also logs one warning with the OS's error.

    * measurements: `%{count: pos_integer}`
    * metadata: `%{topology: atom, interval: milliseconds, error: String.t()}` (the
      last failure: where to, and the OS's error, such as `"to 255.255.255.255:45892:
      Network is unreachable (os error 101)"`)

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
  # Loads :telemetry if it is on the code path and makes sure its application runs
  # (once, when NativeGossip's application starts: looking for a module that is not
  # there searches the whole code path). Elixir >= 1.15 and releases start telemetry
  # first anyway (an optional application of ours); Elixir 1.14 writes no optional
  # applications into the .app file, so nothing else would. false without telemetry.
  @spec load() :: boolean()
  def load do
    Code.ensure_loaded?(:telemetry) and
      match?({:ok, _}, Application.ensure_all_started(:telemetry))
  end

  @doc false
  # A peer event of a topology: `[:native_gossip, :peer, event]`.
  @spec peer(atom(), atom(), node(), NativeGossip.tags(), map()) :: :ok
  def peer(topology, event, node, tags \\ %{}, extra \\ %{}) do
    execute(
      [:native_gossip, :peer, event],
      %{system_time: System.system_time()},
      Map.merge(%{topology: topology, node: node, tags: tags}, extra)
    )
  end

  # Drops that a healthy topology has: in compat mode, the libcluster copies of
  # heartbeats from nodes that speak NativeGossip.
  @expected [:legacy_native_name]

  # Said once per topology, with what to do, rather than every interval.
  @once [:libcluster_format]

  @doc false
  # What the summary of the last :log_interval compares with: the counters then, and
  # the reasons already explained once.
  @spec summary_start() :: map()
  def summary_start, do: %{dropped: %{}, send_errors: 0, told: MapSet.new()}

  @doc false
  # The summary of one :log_interval, from `previous` (what the last one saw) and the
  # topology's `stats/1` now: one warning per drop reason that occurred (never one line
  # per packet; a reason in @once is explained the first time only) and one telemetry
  # event with the counts; the same for heartbeats that could not be sent, with the
  # OS's error. Returns what the next summary compares with.
  @spec summary(atom(), pos_integer(), map(), map()) :: map()
  def summary(topology, interval, previous, stats) do
    told = drop_summary(topology, interval, previous, stats.dropped)
    send_summary(topology, interval, previous.send_errors, stats)
    %{dropped: stats.dropped, send_errors: stats.send_errors, told: told}
  end

  defp drop_summary(topology, interval, previous, current) do
    deltas =
      for {reason, count} <- current,
          reason not in @expected,
          (delta = count - Map.get(previous.dropped, reason, 0)) > 0,
          into: %{},
          do: {reason, delta}

    for {reason, delta} <- deltas, reason not in @once or reason not in previous.told do
      Logger.warning(
        "NativeGossip topology #{inspect(topology)} dropped #{delta} datagram(s) " <>
          "in the last #{interval} ms: #{reason} (#{DropReason.explain(reason)})" <>
          if(reason in @once, do: "; said once, counted in stats/1 and telemetry", else: "")
      )
    end

    if deltas != %{} do
      execute(
        [:native_gossip, :packets, :dropped],
        Map.put(deltas, :total, Enum.sum(Map.values(deltas))),
        %{topology: topology, interval: interval}
      )
    end

    Enum.reduce(Map.keys(deltas), previous.told, fn reason, told ->
      if reason in @once, do: MapSet.put(told, reason), else: told
    end)
  end

  defp send_summary(topology, interval, previous, %{send_errors: now} = stats)
       when now > previous do
    error = stats.last_send_error || "no error recorded"

    Logger.warning(
      "NativeGossip topology #{inspect(topology)} could not send #{now - previous} " <>
        "heartbeat(s) in the last #{interval} ms (last: #{error}). Check that the host " <>
        "has a route to the group or broadcast address (`ip route get <address>`), that " <>
        "the interface is up, and that no firewall rejects outgoing UDP; with " <>
        "broadcast, use the subnet's own broadcast address (such as 10.0.0.255)."
    )

    execute(
      [:native_gossip, :packets, :send_failed],
      %{count: now - previous},
      %{topology: topology, interval: interval, error: stats.last_send_error}
    )
  end

  defp send_summary(_topology, _interval, _previous, _stats), do: :ok

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
  rescue
    # telemetry's application stopped (its handler table gone): no event, no crash.
    ArgumentError -> :ok
  end
end
