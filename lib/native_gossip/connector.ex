defmodule NativeGossip.Connector do
  @moduledoc false
  # Who to connect, and when: decisions only. Each function takes one thing that
  # happened (a peer report of the native side, a distribution event, the end of an
  # attempt, a timer) and the connector's state, and returns
  #
  #     {events, effects, connector}
  #
  # `events` are the peer events for subscribers and telemetry (:connected and
  # :disconnected once per change); `effects` are what NativeGossip.Topology carries
  # out, in order (see effect/0): start an attempt, wake this module later, have the
  # native side report a peer again after a backoff, tell it a peer's connection state,
  # log. This module starts no process, sends no message and calls no NIF; what it asks
  # of the world (the connected nodes, the time, `:connect_if`) it asks through the
  # functions of NativeGossip.Connector.World, which a test replaces.
  #
  # The backoff lives here, and only here: a failed peer is retried only when the
  # native side reports it again after its backoff (report_after), so a peer that went
  # away is not retried forever. The tie-break's rule (which side of a pair leads) is
  # the native side's (`Engine::leads`, in `engine/lead.rs`), given with each report
  # as `lead`; when the side that does not lead takes its turn is Connector.Turns'.

  alias NativeGossip.{Connector.Turns, Connector.World, NodeName}

  @initial_backoff 100
  @max_backoff 30_000

  # Most connect attempts in flight at once: each is a process, and one towards a host
  # that drops SYNs lasts net_kernel's setup time (7 s by default). More wait in a
  # queue, each once, in the order they came.
  @max_attempts 32

  defstruct world: nil,
            tags: %{},
            attempting: %{},
            waits: %{},
            started: 0,
            queue: :queue.new(),
            queued: MapSet.new(),
            peers: %{},
            status: %{},
            dropped: %{},
            late_at: nil

  # attempting: each attempt in flight, and when it started.
  # peers: the backoff of each peer attempted. retry_at is nil when the peer is not
  # backing off (monotonic time is usually negative on the BEAM, so no number can stand
  # for "long ago"); deferred is true once this side has let the other side connect
  # first, until the peer is connected.
  # status: every peer the native table holds, :connected or :disconnected.
  # dropped: when each peer's connection last dropped, until it is connected again or
  # forgotten (Turns.lead_wait/3).
  # late_at: when a peer that leads last connected after this side's turn for it.
  @type peer :: %{failures: non_neg_integer(), retry_at: integer() | nil, deferred: boolean()}
  @type t :: %__MODULE__{
          world: World.t(),
          tags: %{node() => NativeGossip.tags()},
          attempting: %{node() => integer()},
          waits: %{node() => pos_integer()},
          started: non_neg_integer(),
          queue: :queue.queue(node()),
          queued: MapSet.t(node()),
          peers: %{node() => peer()},
          status: %{node() => :connected | :disconnected},
          dropped: %{node() => integer()},
          late_at: integer() | nil
        }

  @typedoc "Peer events for subscribers and telemetry, in order."
  @type events :: [
          {:discovered | :connected | :disconnected | :left | :tags_changed, node()}
        ]

  @typedoc """
  What the topology server does for the connector:

  - `{:attempt, node}`: connect to `node` in a process of its own, and hand its end to
    `finished/3`;
  - `{:wake, node, ms}`: call `turn/2` for `node` after `ms`;
  - `{:report_after, node, ms}`: have the native side report `node` again (as
    `:heard`) no sooner than `ms` from now;
  - `{:set_connected, node, connected?}`: tell the native side (with the connection's
    address when connected: it proves where the peer is);
  - `{:log, :warning | :debug, message}`: log (a debug message is a function, built only
    when debug logging is on).
  """
  @type effect ::
          {:attempt, node()}
          | {:wake, node(), non_neg_integer()}
          | {:report_after, node(), non_neg_integer()}
          | {:set_connected, node(), boolean()}
          | {:log, :warning, String.t()}
          | {:log, :debug, (() -> String.t())}
  @type result :: {events(), [effect()], t()}

  @doc "A connector that asks `world` (see NativeGossip.Connector.World)."
  @spec new(World.t()) :: t()
  def new(world), do: %__MODULE__{world: world}

  @doc "A peer's tags as last heard (empty when it has none or is unknown)."
  @spec tags(t(), node()) :: NativeGossip.tags()
  def tags(%__MODULE__{tags: tags}, node), do: Map.get(tags, node, %{})

  @doc "Every known peer and whether it is connected."
  @spec status(t()) :: %{node() => :connected | :disconnected}
  def status(%__MODULE__{status: status}), do: status

  @doc "Most connect attempts in flight at once (more wait in a queue)."
  @spec max_attempts() :: pos_integer()
  def max_attempts, do: @max_attempts

  @doc "Number of attempts in flight."
  @spec in_flight(t()) :: non_neg_integer()
  def in_flight(%__MODULE__{attempting: a}), do: map_size(a)

  @doc """
  A peer was reported `:discovered` (new, back from lost, or a new incarnation: the
  native side starts it as not connected, and so does this) or `:heard` again while
  not connected. `lead` says whether this side connects first.

  Heard while this side waits its first turn for the peer: the native side reports
  that only when the peer asked again for what this side already answered (a
  newcomer's burst goes on: this side's answer may have been lost, and the newcomer,
  which leads, may never connect), so the turn is taken now (`turn/2`: unless the
  peer's handshake is under way).

  `held`: how long the native side held the report back before telling the owner (ms):
  it holds back the discovery of a peer this side does not lead for up to the first
  wait (see `native_gossip_core::outbox`), and the turn comes the first wait after it
  would have come had the owner been told at once.
  """
  @spec heard(
          t(),
          node(),
          :discovered | :heard,
          boolean(),
          NativeGossip.tags(),
          non_neg_integer()
        ) :: result()
  def heard(c, node, kind, lead, tags \\ %{}, held \\ 0) do
    c = %{c | tags: Map.put(c.tags, node, tags)}

    {events, c} =
      if kind == :discovered,
        do: {[discovered: node], put_status(c, node, :disconnected)},
        else: {[], %{c | status: Map.put_new(c.status, node, :disconnected)}}

    {more, effects, c} =
      case kind == :heard and not lead and Turns.waiting(c, node) do
        {:waiting, peer} ->
          turn(%{c | peers: Map.put(c.peers, node, %{peer | retry_at: nil})}, node)

        _ ->
          wait = if lead, do: Turns.lead_wait(c, node, kind), else: Turns.defer_wait(held)
          consider(c, node, wait)
      end

    {events ++ more, effects, c}
  end

  @doc """
  The peer changed its tags: announced, and, if it is not connected, considered again
  (`:connect_if` may say yes now).
  """
  @spec tags_changed(t(), node(), NativeGossip.tags()) :: result()
  def tags_changed(c, node, tags) do
    c = %{c | tags: Map.put(c.tags, node, tags)}

    case c.status do
      %{^node => :disconnected} ->
        {more, effects, c} = consider(c, node, 0)
        {[tags_changed: node] ++ more, effects, c}

      %{^node => _} ->
        {[tags_changed: node], [], c}

      _ ->
        {[], [], c}
    end
  end

  @doc """
  A `{:wake, node, _}` came due: this side's turn in the tie-break, or a longer wait
  (see NativeGossip.Connector.Turns). Connects unless the other side did, or the peer
  left or was forgotten meanwhile (forget/2 dropped the entry its wait made).
  """
  @spec turn(t(), node()) :: result()
  def turn(c, node) do
    waits = Map.get(c.waits, node, 0)

    cond do
      Map.get(c.status, node) != :disconnected or not is_map_key(c.peers, node) ->
        {[], [], %{c | waits: Map.delete(c.waits, node)}}

      waits < Turns.max_waits() and (c.world.pending?.(node) or Turns.slow?(c, waits)) ->
        {[], [{:wake, node, Turns.defer_ms()}], %{c | waits: Map.put(c.waits, node, waits + 1)}}

      true ->
        consider(%{c | waits: Map.delete(c.waits, node)}, node, 0)
    end
  end

  @doc "The peer said goodbye: not reconnected until it comes back."
  @spec left(t(), node()) :: result()
  def left(c, node), do: {[left: node], [], forget(c, node)}

  @doc "The native side forgot the peer."
  @spec forgotten(t(), node()) :: result()
  def forgotten(c, node) do
    c = forget(c, node)
    {[], [], %{c | status: Map.delete(c.status, node), tags: Map.delete(c.tags, node)}}
  end

  @doc "A node came up (by our attempt or its own)."
  @spec nodeup(t(), node()) :: result()
  def nodeup(c, node), do: mark_connected(c, node)

  @doc "A node went down: a known peer is announced disconnected and reported again."
  @spec nodedown(t(), node()) :: result()
  def nodedown(c, node) do
    case c.status do
      %{^node => :connected} ->
        c = %{c | dropped: Map.put(c.dropped, node, now(c))}

        {[disconnected: node], [{:set_connected, node, false}],
         put_status(c, node, :disconnected)}

      _ ->
        {[], [], c}
    end
  end

  @doc """
  An attempt ended with `outcome`: `{:native_gossip_connect, result}` (what the connect
  function returned, or `{:crashed, {kind, reason}}`), or the exit reason of an attempt
  that was killed. A failure is logged (the first one as a warning) and backs off; the
  next queued attempt, if any, starts.
  """
  @spec finished(t(), node(), term()) :: result()
  def finished(c, node, outcome) do
    {drained, c} = drain_queue(%{c | attempting: Map.delete(c.attempting, node)})
    peer = Map.get(c.peers, node, fresh())

    if success?(outcome) do
      c = %{c | peers: Map.put(c.peers, node, fresh())}
      {events, effects, c} = mark_connected(c, node)
      connected = {:log, :debug, fn -> "NativeGossip: connected to #{node}" end}
      {events, drained ++ [connected | effects], c}
    else
      failures = peer.failures + 1
      backoff = min(@initial_backoff * Integer.pow(2, failures - 1), @max_backoff)
      peer = %{peer | failures: failures, retry_at: now(c) + backoff}
      effects = [failure_log(node, failure(outcome), failures), {:report_after, node, backoff}]
      {[], drained ++ effects, %{c | peers: Map.put(c.peers, node, peer)}}
    end
  end

  # Whether to connect, given what is known of the peer. `defer` > 0: this side does
  # not lead, and its first attempt waits that long.
  defp consider(c, node, defer) do
    cond do
      c.world.connected?.(node) ->
        mark_connected(c, node)

      not c.world.allowed?.(node, tags(c, node)) ->
        # Listed, never connected by this side: asked again when its tags change, or
        # when it is heard after the longest backoff.
        {[], [{:report_after, node, @max_backoff}], c}

      NodeName.connectable?(node, c.world.longnames) ->
        {effects, c} = maybe_attempt(c, node, defer)
        {[], effects, c}

      true ->
        # Listed in members/1, but a connect could only fail (and make net_kernel
        # log): the native side need not report it often.
        {[], [{:report_after, node, @max_backoff}], c}
    end
  end

  # Starts an attempt unless one runs or the peer is backing off. With `defer` > 0, the
  # first attempt towards a peer that is not connected waits `defer` ms (a :wake); if
  # the other side connected meanwhile, no attempt is made.
  defp maybe_attempt(c, node, defer) do
    peer = Map.get(c.peers, node, fresh())

    cond do
      Map.has_key?(c.attempting, node) or MapSet.member?(c.queued, node) ->
        {[], c}

      peer.retry_at != nil and now(c) < peer.retry_at ->
        {[], c}

      defer > 0 and not peer.deferred ->
        peer = %{peer | deferred: true, retry_at: now(c) + defer}
        {[{:wake, node, defer}], %{c | peers: Map.put(c.peers, node, peer)}}

      map_size(c.attempting) >= @max_attempts ->
        {[], %{c | queue: :queue.in(node, c.queue), queued: MapSet.put(c.queued, node)}}

      true ->
        start(c, node, peer)
    end
  end

  defp start(c, node, peer) do
    c = %{
      c
      | attempting: Map.put(c.attempting, node, now(c)),
        started: c.started + 1,
        peers: Map.put(c.peers, node, peer)
    }

    {[{:attempt, node}], c}
  end

  # Starts queued attempts while there is room; a peer forgotten (or connected)
  # meanwhile is skipped.
  defp drain_queue(c, effects \\ []) do
    with true <- map_size(c.attempting) < @max_attempts,
         {{:value, node}, queue} <- :queue.out(c.queue) do
      c = %{c | queue: queue, queued: MapSet.delete(c.queued, node)}

      if Map.get(c.status, node) != :connected do
        {more, c} = start(c, node, Map.get(c.peers, node, fresh()))
        drain_queue(c, effects ++ more)
      else
        drain_queue(c, effects)
      end
    else
      _ -> {effects, c}
    end
  end

  defp mark_connected(c, node) do
    case c.status do
      %{^node => :connected} ->
        {[], [], c}

      %{^node => _} ->
        c = Turns.note_late(c, node)
        # Its next disconnection starts afresh.
        peers = if Map.has_key?(c.peers, node), do: Map.put(c.peers, node, fresh()), else: c.peers

        c = %{
          put_status(c, node, :connected)
          | peers: peers,
            dropped: Map.delete(c.dropped, node)
        }

        {[connected: node], [{:set_connected, node, true}], c}

      _ ->
        {[], [], c}
    end
  end

  # Forgets a peer's backoff and its place in the queue (it left, or was forgotten).
  defp forget(c, node) do
    c = %{
      c
      | peers: Map.delete(c.peers, node),
        waits: Map.delete(c.waits, node),
        dropped: Map.delete(c.dropped, node)
    }

    if MapSet.member?(c.queued, node),
      do: %{c | queued: MapSet.delete(c.queued, node), queue: :queue.delete(node, c.queue)},
      else: c
  end

  defp put_status(c, node, status), do: %{c | status: Map.put(c.status, node, status)}

  defp fresh, do: %{failures: 0, retry_at: nil, deferred: false}

  defp now(%{world: world}), do: world.now.()

  # :net_kernel.connect_node/1 and Node.connect/1 return true; libcluster's
  # Cluster.Strategy.connect_nodes/4 returns :ok.
  defp success?({:native_gossip_connect, true}), do: true
  defp success?({:native_gossip_connect, :ok}), do: true
  defp success?(_), do: false

  defp failure({:native_gossip_connect, result}), do: result
  defp failure(killed), do: {:crashed, {:exit, killed}}

  defp failure_log(node, why, 1) do
    {:log, :warning,
     "NativeGossip: could not connect to #{node} (#{inspect(why)}); retrying with backoff " <>
       "while it keeps sending heartbeats"}
  end

  defp failure_log(node, why, failures) do
    {:log, :debug,
     fn -> "NativeGossip: connect to #{node} failed #{failures} times: #{inspect(why)}" end}
  end
end
