defmodule NativeGossip.Connector.Turns do
  @moduledoc false
  # When the side of a pair that does not lead (NativeGossip.Connector) takes its turn:
  # its wait, the longer waits while handshakes are slow, and the early turn when the
  # peer asks again; and the one wait of the side that leads, after a drop.

  alias NativeGossip.Connector

  # Of a pair of nodes that hear each other, one connects at once (the native side says
  # which, `Engine::leads`: a newcomer towards a small group of running nodes when it
  # takes answers by unicast, as with a secret; otherwise a running node towards a
  # newcomer; of two nodes alike the pair's coin) and the other waits this long before it
  # tries too. Two simultaneous connects between the same nodes
  # cost both a handshake that net_kernel then throws away, and a new node that joins N
  # others would otherwise make 2N handshakes, not N. Once the first side's handshake
  # has reached the second, a connect from the second just waits for it, so this only
  # needs to cover the time a handshake takes to arrive; it is also all a pair loses
  # when the first side cannot connect (a name it cannot resolve, a connect function
  # that refuses, a one-way multicast path).
  @defer_ms 100

  # When this side's turn comes and the pair is still not connected, it waits longer,
  # @defer_ms at a time and at most @max_waits times, if the other side's handshake is
  # under way here already (net_kernel has it pending), or if handshakes are slow
  # right now (slow?/1: many nodes starting at once on few cores), rather than start a
  # second handshake for the pair. On a quiet machine the turn is taken at once.
  @max_waits 10
  @busy_waits 3
  @late_window 1_000

  # A peer whose connection dropped may be on its way out: a node that stops its
  # topology sends its goodbye and may disconnect at once, and a heartbeat it sent just
  # before can be handled here after the nodedown, before the goodbye. A connect at
  # that heartbeat would tie the two nodes again against the leaving node's will, so
  # one made on a heartbeat of the same incarnation waits until this long after the
  # drop (the goodbye, handled meanwhile, cancels it). A restart (a new incarnation)
  # is connected at once.
  @drop_grace 50

  @doc "How long after a peer's drop a heartbeat of the same incarnation connects (ms)."
  @spec drop_grace_ms() :: pos_integer()
  def drop_grace_ms, do: @drop_grace

  @doc """
  How long the side that leads waits before it connects to `node`, just heard (`kind`):
  0, or what is left of the grace after the peer's connection dropped
  (`drop_grace_ms/0`) for a heartbeat of the same incarnation.
  """
  @spec lead_wait(Connector.t(), node(), :discovered | :heard) :: non_neg_integer()
  def lead_wait(%Connector{dropped: dropped} = c, node, :heard) do
    case {dropped, c.world.now.()} do
      {%{^node => at}, now} when is_integer(at) and is_integer(now) ->
        max(at + @drop_grace - now, 0)

      _ ->
        0
    end
  end

  def lead_wait(_c, _node, :discovered), do: 0

  @doc "The first wait of the side that does not lead (ms)."
  @spec defer_ms() :: pos_integer()
  def defer_ms, do: @defer_ms

  @doc """
  What is left of the first wait of the side that does not lead, for a report that the
  native side held back `held` ms (it holds back such a discovery for up to this
  wait: `native_gossip_core::outbox::HOLD`); at least 1 ms, so that the turn still
  comes through `turn/2`.
  """
  @spec defer_wait(non_neg_integer()) :: pos_integer()
  def defer_wait(held) when is_integer(held), do: max(@defer_ms - held, 1)

  @doc "How many times a turn waits longer, at most."
  @spec max_waits() :: pos_integer()
  def max_waits, do: @max_waits

  @doc """
  Handshakes are slow here: a peer that leads came late, recently; one of this node's
  attempts has run longer than the first wait; or, for the first few waits (a leader
  that did not hear this node must not cost it a second), a handshake a peer started
  is under way.
  """
  @spec slow?(Connector.t(), non_neg_integer()) :: boolean()
  def slow?(%Connector{attempting: attempting, status: peers} = c, waits) do
    now = c.world.now.()
    theirs = &(is_map_key(peers, &1) and not is_map_key(attempting, &1))

    (c.late_at != nil and now - c.late_at < @late_window) or
      Enum.any?(attempting, fn {_node, t} -> t < now - @defer_ms end) or
      (waits < @busy_waits and Enum.any?(c.world.handshakes.(), theirs))
  end

  @doc """
  A peer this side deferred to connected after this side's turn for it had come (and
  not by this side's attempt): handshakes are slow here (slow?/2).
  """
  @spec note_late(Connector.t(), node()) :: Connector.t()
  def note_late(%Connector{peers: peers, attempting: attempting} = c, node) do
    case peers do
      %{^node => %{deferred: true, retry_at: at}}
      when at != nil and not is_map_key(attempting, node) ->
        now = c.world.now.()
        if now >= at, do: %{c | late_at: now}, else: c

      _ ->
        c
    end
  end

  @doc "The peer, if this side has deferred to it and its first turn has not come yet."
  @spec waiting(Connector.t(), node()) :: {:waiting, Connector.peer()} | false
  def waiting(%Connector{peers: peers} = c, node) do
    case peers do
      %{^node => %{deferred: true, failures: 0, retry_at: at} = peer} when at != nil ->
        if c.world.now.() < at, do: {:waiting, peer}, else: false

      _ ->
        false
    end
  end
end
