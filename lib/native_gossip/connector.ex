defmodule NativeGossip.Connector do
  @moduledoc false
  # Who to connect, and when: the one owner of that decision. The native side reports
  # peers (discovered, heard again while unconnected, left, lost, forgotten); this
  # module decides whether to connect, waits its turn in the tie-break, makes the
  # attempt, backs off after a failure and tells the native side when to report the
  # peer again (so there is one backoff, this one), and keeps each peer's connection
  # status so that :connected/:disconnected are announced once per change.
  #
  # Each attempt runs in its own monitored process, so a name that does not resolve or
  # a host that drops SYNs never delays the topology server. A failed peer is retried
  # only when it is heard again after its backoff, so a peer that went away is not
  # retried forever.

  require Logger

  alias NativeGossip.{Log, Native, NodeName}

  @initial_backoff 100
  @max_backoff 30_000

  # Most connect attempts in flight at once: each is a process, and one towards a host
  # that drops SYNs lasts net_kernel's setup time (7 s by default). More wait in a
  # queue, each once, in the order they came.
  @max_attempts 32

  # Of a pair of nodes that hear each other, one connects at once (the native side says
  # which: a running node towards a newcomer, else the smaller name) and the other waits
  # this long before it tries too. Two simultaneous connects between the same nodes
  # cost both a handshake that net_kernel then throws away, and a new node that joins N
  # others would otherwise make 2N handshakes, not N. Once the first side's handshake
  # has reached the second, a connect from the second just waits for it, so this only
  # needs to cover the time a handshake takes to arrive; it is also all a pair loses
  # when the first side cannot connect (a name it cannot resolve, a connect function
  # that refuses, a one-way multicast path).
  @defer_ms 100

  # When this side's turn comes and the pair is still not connected, it waits longer,
  # @defer_ms at a time and at most @max_waits times, if the other side's handshake is
  # under way here already (net_kernel has it pending), or if this node's own
  # handshakes are slow right now (one of its attempts has run longer than @defer_ms:
  # many nodes starting at once on few cores). Connecting then would only start a
  # second handshake for the same pair. On a quiet machine the turn is taken at once.
  @max_waits 10

  defstruct native: nil,
            libcluster: nil,
            connect: nil,
            connect_if: nil,
            tags: %{},
            list_nodes: {:erlang, :nodes, [:connected]},
            attempts: %{},
            attempting: %{},
            started_at: %{},
            waits: %{},
            started: 0,
            queue: :queue.new(),
            queued: %{},
            peers: %{},
            status: %{}

  # peers: the backoff of each peer attempted. retry_at is nil when the peer is not
  # backing off (monotonic time is usually negative on the BEAM, so no number can stand
  # for "long ago"); deferred is true once this side has let the other side connect
  # first, until the peer is connected.
  # status: every peer the native table holds, :connected or :disconnected.
  @type peer :: %{failures: non_neg_integer(), retry_at: integer() | nil, deferred: boolean()}
  @type t :: %__MODULE__{
          native: reference() | nil,
          libcluster: atom() | nil,
          connect: (node() -> term()) | nil,
          connect_if: {module(), atom(), list()} | nil,
          tags: %{node() => NativeGossip.tags()},
          list_nodes: {module(), atom(), list()},
          attempts: %{reference() => node()},
          attempting: %{node() => reference()},
          started_at: %{reference() => integer()},
          waits: %{node() => pos_integer()},
          started: non_neg_integer(),
          queue: :queue.queue(node()),
          queued: %{node() => (() -> term())},
          peers: %{node() => peer()},
          status: %{node() => :connected | :disconnected}
        }

  @typedoc "Peer events for subscribers and telemetry, in order."
  @type events :: [
          {:discovered | :connected | :disconnected | :left | :lost | :tags_changed, node()}
        ]

  @doc """
  A connector for a topology's native resource and options; with a libcluster topology
  state, attempts go through `Cluster.Strategy.connect_nodes/4`.
  """
  @spec new(reference(), NativeGossip.Options.t(), term()) :: t()
  def new(native, %{connect: connect, list_nodes: list_nodes} = options, libcluster) do
    fun =
      if libcluster && Code.ensure_loaded?(Cluster.Strategy) do
        &NativeGossip.Strategy.connect(libcluster, connect, list_nodes, &1)
      else
        fn node -> apply_mfa(connect, node) end
      end

    %__MODULE__{
      native: native,
      libcluster: libcluster,
      connect: fun,
      list_nodes: list_nodes,
      connect_if: Map.get(options, :connect_if)
    }
  end

  @doc "A peer's tags as last heard (empty when it has none or is unknown)."
  @spec tags(t(), node()) :: NativeGossip.tags()
  def tags(%__MODULE__{tags: tags}, node), do: Map.get(tags, node, %{})

  @doc "Every known peer and whether it is connected."
  @spec status(t()) :: %{node() => :connected | :disconnected}
  def status(%__MODULE__{status: status}), do: status

  @doc """
  A peer was reported `:discovered` (new, back from lost, or a new incarnation: the
  native side starts it as not connected, and so does this) or `:heard` again while
  not connected. `lead` says whether this side connects first.
  """
  @spec heard(t(), node(), :discovered | :heard, boolean(), NativeGossip.tags()) ::
          {events(), t()}
  def heard(c, node, kind, lead, tags \\ %{}) do
    c = %{c | tags: Map.put(c.tags, node, tags)}

    {events, c} =
      if kind == :discovered,
        do: {[discovered: node], put_status(c, node, :disconnected)},
        else: {[], %{c | status: Map.put_new(c.status, node, :disconnected)}}

    {more, c} = consider(c, node, if(lead, do: 0, else: @defer_ms))
    {events ++ more, c}
  end

  @doc """
  The peer changed its tags: announced, and, if it is not connected, considered again
  (`:connect_if` may say yes now).
  """
  @spec tags_changed(t(), node(), NativeGossip.tags()) :: {events(), t()}
  def tags_changed(c, node, tags) do
    c = %{c | tags: Map.put(c.tags, node, tags)}

    case c.status do
      %{^node => :disconnected} ->
        {more, c} = consider(c, node, 0)
        {[tags_changed: node] ++ more, c}

      %{^node => _} ->
        {[tags_changed: node], c}

      _ ->
        {[], c}
    end
  end

  @doc "This side's turn in the tie-break has come: connect unless the other side did."
  @spec deferred(t(), node()) :: {events(), t()}
  def deferred(c, node) do
    waits = Map.get(c.waits, node, 0)

    cond do
      Map.get(c.status, node) != :disconnected ->
        {[], %{c | waits: Map.delete(c.waits, node)}}

      waits < @max_waits and (pending?(node) or slow?(c)) ->
        Process.send_after(self(), {:native_gossip_deferred, node}, @defer_ms)
        {[], %{c | waits: Map.put(c.waits, node, waits + 1)}}

      true ->
        consider(%{c | waits: Map.delete(c.waits, node)}, node, 0)
    end
  end

  # A handshake with `node` is under way (either side started it).
  defp pending?(node) do
    case :net_kernel.node_info(node, :state) do
      {:ok, state} -> state in [:pending, :up_pending]
      _ -> false
    end
  catch
    # Not distributed (a connector in a unit test): no handshake can be under way.
    :error, :badarg -> false
  end

  # One of this node's own attempts has been running longer than the tie-break wait.
  defp slow?(%{started_at: started_at}) do
    limit = now() - @defer_ms
    Enum.any?(started_at, fn {_ref, t} -> t < limit end)
  end

  defp consider(c, node, defer) do
    cond do
      node in list_nodes(c) ->
        mark_connected(c, node)

      not allowed?(c, node) ->
        # Listed, never connected by this side: asked again when its tags change, or
        # when it is heard after the longest backoff.
        report_after(c, node, @max_backoff)
        {[], c}

      NodeName.connectable?(node) ->
        {[], maybe_attempt(c, node, fn -> c.connect.(node) end, defer)}

      true ->
        # Listed in members/1, but a connect could only fail (and make net_kernel
        # log): the native side need not report it often.
        report_after(c, node, @max_backoff)
        {[], c}
    end
  end

  # :connect_if says yes (or there is none). A function that raises or returns
  # anything but true says no, with a warning.
  defp allowed?(%{connect_if: nil}, _node), do: true

  defp allowed?(%{connect_if: {m, f, a}} = c, node) do
    case apply(m, f, a ++ [node, tags(c, node)]) do
      true ->
        true

      false ->
        false

      other ->
        Logger.warning(
          "NativeGossip: :connect_if #{inspect({m, f, a})} returned #{inspect(other)} for " <>
            "#{node}, not a boolean: not connecting"
        )

        false
    end
  catch
    kind, reason ->
      Logger.warning(
        "NativeGossip: :connect_if #{inspect({m, f, a})} failed for #{node}: " <>
          Exception.format_banner(kind, reason)
      )

      false
  end

  @doc "The peer said goodbye: not reconnected until it comes back."
  @spec left(t(), node()) :: {events(), t()}
  def left(c, node), do: {[left: node], forget(c, node)}

  @doc "The peer went silent."
  @spec lost(t(), node()) :: {events(), t()}
  def lost(c, node), do: {[lost: node], c}

  @doc "The native side forgot the peer."
  @spec forgotten(t(), node()) :: {events(), t()}
  def forgotten(c, node) do
    c = forget(c, node)
    {[], %{c | status: Map.delete(c.status, node), tags: Map.delete(c.tags, node)}}
  end

  @doc "A node came up (by our attempt or its own)."
  @spec nodeup(t(), node()) :: {events(), t()}
  def nodeup(c, node), do: mark_connected(c, node)

  @doc "A node went down: a known peer is announced disconnected and reported again."
  @spec nodedown(t(), node()) :: {events(), t()}
  def nodedown(c, node) do
    case c.status do
      %{^node => :connected} ->
        Native.set_connected(c.native, Atom.to_string(node), false, nil)
        {[disconnected: node], put_status(c, node, :disconnected)}

      _ ->
        {[], c}
    end
  end

  @doc """
  A monitored process ended: `:unknown` if it was not an attempt; otherwise the
  events it causes. A failure is logged (the first one as a warning) and backs off.
  """
  @spec down(t(), reference(), term()) :: :unknown | {events(), t()}
  def down(c, ref, reason) do
    case finished(c, ref, reason) do
      :unknown ->
        :unknown

      {node, :connected, c} ->
        Log.debug(c.libcluster, fn -> "NativeGossip: connected to #{node}" end)
        mark_connected(c, node)

      {node, {:failed, why, failures}, c} ->
        log_failure(c, node, why, failures)
        report_after(c, node, c.peers[node].retry_at - now())
        {[], c}
    end
  end

  defp mark_connected(c, node) do
    case c.status do
      %{^node => :connected} ->
        {[], c}

      %{^node => _} ->
        # The connection's remote address proves where the peer is (see
        # NativeGossip.Native.set_connected/4 and docs/PROTOCOL.md, "Threat model").
        Native.set_connected(c.native, Atom.to_string(node), true, dist_address(node))
        {[connected: node], connected(put_status(c, node, :connected), node)}

      _ ->
        {[], c}
    end
  end

  @doc """
  The remote IP address of the distribution connection with `node`, or nil (none, or
  a distribution carrier that has no IP address).
  """
  @spec dist_address(node()) :: :inet.ip_address() | nil
  def dist_address(node) do
    case :net_kernel.node_info(node, :address) do
      {:ok, {:net_address, {ip, _port}, _host, _protocol, _family}} when is_tuple(ip) -> ip
      _ -> nil
    end
  catch
    _, _ -> nil
  end

  defp put_status(c, node, status), do: %{c | status: Map.put(c.status, node, status)}

  defp report_after(%{native: nil}, _node, _ms), do: :ok

  defp report_after(c, node, ms),
    do: Native.report_after(c.native, Atom.to_string(node), max(ms, 0))

  defp list_nodes(%{list_nodes: {m, f, a}}), do: apply(m, f, a)

  defp apply_mfa({m, f, a}, node), do: apply(m, f, a ++ [node])

  defp log_failure(_c, node, why, 1) do
    Logger.warning(
      "NativeGossip: could not connect to #{node} (#{inspect(why)}); retrying with backoff " <>
        "while it keeps sending heartbeats"
    )
  end

  defp log_failure(c, node, why, failures) do
    Log.debug(c.libcluster, fn ->
      "NativeGossip: connect to #{node} failed #{failures} times: #{inspect(why)}"
    end)
  end

  # The attempt bookkeeping itself.

  @doc """
  Starts an attempt unless one runs or the peer is backing off. `fun` does the connect.

  With `defer` > 0, the first attempt towards a peer that is not connected waits
  `defer` ms: the calling process gets `{:native_gossip_deferred, node}` then, and
  calls this again. This is the side of a pair that lets the other side connect
  first; if the other side did, the peer is connected by then and no attempt is made.
  """
  @spec maybe_attempt(t(), node(), (() -> term()), non_neg_integer()) :: t()
  def maybe_attempt(%__MODULE__{} = c, node, fun, defer \\ 0) do
    peer = Map.get(c.peers, node, fresh())

    cond do
      Map.has_key?(c.attempting, node) or Map.has_key?(c.queued, node) ->
        c

      peer.retry_at != nil and now() < peer.retry_at ->
        c

      defer > 0 and not peer.deferred ->
        Process.send_after(self(), {:native_gossip_deferred, node}, defer)
        peer = %{peer | deferred: true, retry_at: now() + defer}
        %{c | peers: Map.put(c.peers, node, peer)}

      map_size(c.attempts) >= @max_attempts ->
        %{c | queue: :queue.in(node, c.queue), queued: Map.put(c.queued, node, fun)}

      true ->
        start(c, node, peer, fun)
    end
  end

  # Starts queued attempts while there is room; a peer forgotten (or connected)
  # meanwhile is skipped.
  defp drain_queue(c) do
    with true <- map_size(c.attempts) < @max_attempts,
         {{:value, node}, queue} <- :queue.out(c.queue) do
      {fun, queued} = Map.pop(c.queued, node)
      c = %{c | queue: queue, queued: queued}

      if fun != nil and Map.get(c.status, node) != :connected,
        do: drain_queue(start(c, node, Map.get(c.peers, node, fresh()), fun)),
        else: drain_queue(c)
    else
      _ -> c
    end
  end

  @doc "Most connect attempts in flight at once (more wait in a queue)."
  @spec max_attempts() :: pos_integer()
  def max_attempts, do: @max_attempts

  @doc "The peer is connected (by us or by itself): its next disconnection starts afresh."
  @spec connected(t(), node()) :: t()
  def connected(%__MODULE__{} = c, node) do
    if Map.has_key?(c.peers, node), do: %{c | peers: Map.put(c.peers, node, fresh())}, else: c
  end

  defp fresh, do: %{failures: 0, retry_at: nil, deferred: false}

  defp start(c, node, peer, fun) do
    # The exit reason carries the result, so one :DOWN tells success and failure. A
    # connect function that raises is a failure like another (logged once by the
    # server), not a crash report from a bare process.
    {_pid, ref} =
      spawn_monitor(fn ->
        result =
          try do
            fun.()
          catch
            kind, reason -> {:crashed, {kind, reason}}
          end

        exit({:native_gossip_connect, result})
      end)

    %{
      c
      | attempts: Map.put(c.attempts, ref, node),
        attempting: Map.put(c.attempting, node, ref),
        started_at: Map.put(c.started_at, ref, now()),
        started: c.started + 1,
        peers: Map.put(c.peers, node, peer)
    }
  end

  @doc """
  Handles the end of an attempt: its `:DOWN` reason is `{:native_gossip_connect, result}`,
  or a crash reason. Returns `{node, outcome, connector}`, or `:unknown` for a monitor
  that is not ours.
  """
  @spec finished(t(), reference(), term()) ::
          {node(), :connected | {:failed, term(), non_neg_integer()}, t()} | :unknown
  def finished(%__MODULE__{} = c, ref, result) do
    case Map.pop(c.attempts, ref) do
      {nil, _} ->
        :unknown

      {node, attempts} ->
        c = %{
          c
          | attempts: attempts,
            attempting: Map.delete(c.attempting, node),
            started_at: Map.delete(c.started_at, ref)
        }

        c = drain_queue(c)
        peer = Map.get(c.peers, node, fresh())

        if success?(result) do
          {node, :connected, %{c | peers: Map.put(c.peers, node, fresh())}}
        else
          failures = peer.failures + 1
          backoff = min(@initial_backoff * Integer.pow(2, failures - 1), @max_backoff)
          peer = %{peer | failures: failures, retry_at: now() + backoff}
          {node, {:failed, failure(result), failures}, %{c | peers: Map.put(c.peers, node, peer)}}
        end
    end
  end

  # :net_kernel.connect_node/1 and Node.connect/1 return true; libcluster's
  # Cluster.Strategy.connect_nodes/4 returns :ok.
  defp success?({:native_gossip_connect, true}), do: true
  defp success?({:native_gossip_connect, :ok}), do: true
  defp success?(_), do: false

  defp failure({:native_gossip_connect, result}), do: result
  defp failure(killed), do: {:crashed, {:exit, killed}}

  @doc "Forgets a peer's backoff (it left, or was forgotten by the native side)."
  @spec forget(t(), node()) :: t()
  def forget(%__MODULE__{} = c, node) do
    c = %{c | peers: Map.delete(c.peers, node), waits: Map.delete(c.waits, node)}

    case Map.pop(c.queued, node) do
      {nil, _} -> c
      {_fun, queued} -> %{c | queued: queued, queue: :queue.delete(node, c.queue)}
    end
  end

  @doc "Number of attempts in flight."
  @spec in_flight(t()) :: non_neg_integer()
  def in_flight(%__MODULE__{attempts: a}), do: map_size(a)

  defp now, do: System.monotonic_time(:millisecond)
end
