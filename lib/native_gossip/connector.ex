defmodule NativeGossip.Connector do
  @moduledoc false
  # Connection attempts, kept off the topology server: each attempt runs in its own
  # monitored process, so a name that does not resolve or a host that drops SYNs never
  # delays anything else. A failed peer is retried with exponential backoff, but only
  # when it is heard again (the native side reports unconnected peers at most twice per
  # heartbeat interval), so a peer that went away is not retried forever.

  @initial_backoff 100
  @max_backoff 30_000

  defstruct attempts: %{}, peers: %{}

  # retry_at is nil when the peer is not backing off. (Monotonic time is usually
  # negative on the BEAM, so no number can stand for "long ago".) deferred is true once
  # this side has let the other side connect first (see maybe_attempt/4), until the
  # peer is connected.
  @type peer :: %{failures: non_neg_integer(), retry_at: integer() | nil, deferred: boolean()}
  @type t :: %__MODULE__{
          attempts: %{reference() => node()},
          peers: %{node() => peer()}
        }

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
      node in Map.values(c.attempts) ->
        c

      peer.retry_at != nil and now() < peer.retry_at ->
        c

      defer > 0 and not peer.deferred ->
        Process.send_after(self(), {:native_gossip_deferred, node}, defer)
        peer = %{peer | deferred: true, retry_at: now() + defer}
        %{c | peers: Map.put(c.peers, node, peer)}

      true ->
        start(c, node, peer, fun)
    end
  end

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

    %{c | attempts: Map.put(c.attempts, ref, node), peers: Map.put(c.peers, node, peer)}
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
        c = %{c | attempts: attempts}
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
  def forget(%__MODULE__{} = c, node), do: %{c | peers: Map.delete(c.peers, node)}

  @doc "Number of attempts in flight."
  @spec in_flight(t()) :: non_neg_integer()
  def in_flight(%__MODULE__{attempts: a}), do: map_size(a)

  defp now, do: System.monotonic_time(:millisecond)
end
