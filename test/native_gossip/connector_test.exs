defmodule NativeGossip.ConnectorTest do
  # The connector's decisions alone: a world of our own (a clock this test moves, the
  # nodes it says are connected or have a handshake pending), and the events and
  # effects it returns. No process is started and nothing is sent.
  use ExUnit.Case, async: true

  alias NativeGossip.Connector
  alias NativeGossip.Connector.Turns

  # A peer named in this VM's style (so that a connect is possible at all).
  defp peer(name), do: :"#{name}@#{NativeGossip.NodeName.host(node())}"

  # The world: the process dictionary holds the clock and the connected nodes.
  defp world(extra) do
    Process.put(:now, 0)
    Process.put(:connected, MapSet.new())
    Process.put(:pending, MapSet.new())

    Map.merge(
      %{
        connected?: &MapSet.member?(Process.get(:connected), &1),
        pending?: &MapSet.member?(Process.get(:pending), &1),
        handshakes: fn -> Process.get(:handshakes, []) end,
        allowed?: fn _node, _tags -> true end,
        longnames: :net_kernel.longnames() == true,
        now: fn -> Process.get(:now) end
      },
      extra
    )
  end

  defp new(extra \\ %{}), do: Connector.new(world(extra))
  defp advance(ms), do: Process.put(:now, Process.get(:now) + ms)

  defp attempts(effects), do: for({:attempt, n} <- effects, do: n)

  # Heard (leading) and its attempt ended with `result`.
  defp run(c, node, result) do
    {_, effects, c} = Connector.heard(c, node, :heard, true)
    assert attempts(effects) == [node]
    Connector.finished(c, node, {:native_gossip_connect, result})
  end

  test "a discovered peer this side leads is attempted at once, and announced once" do
    n = peer(:a)
    assert {[discovered: ^n], [{:attempt, ^n}], c} = Connector.heard(new(), n, :discovered, true)
    assert Connector.in_flight(c) == 1
    assert Connector.status(c) == %{n => :disconnected}

    assert {[connected: ^n], effects, c} =
             Connector.finished(c, n, {:native_gossip_connect, true})

    assert {:set_connected, n, true} in effects
    assert Connector.status(c) == %{n => :connected}
    # The nodeup that follows says nothing more.
    assert {[], [], ^c} = Connector.nodeup(c, n)
  end

  test "a peer that leaves while this side waits its turn is not connected at the turn" do
    # The peer leads (the pair's coin), this side waits its turn; the peer says goodbye
    # (a topology started and stopped at once) before the turn comes: its node may
    # still run, but it is no peer any more, and a connect would tie the two nodes
    # again where nothing of the topology asks for it.
    n = peer(:gone)
    {[discovered: ^n], [{:wake, ^n, defer}], c} = Connector.heard(new(), n, :discovered, false)
    {[left: ^n], [], c} = Connector.left(c, n)
    advance(defer)
    assert {[], [], _} = Connector.turn(c, n)
    # Forgotten (no goodbye heard, silent long enough): the same.
    {_, [{:wake, ^n, _}], c} = Connector.heard(new(), n, :discovered, false)
    {[], [], c} = Connector.forgotten(c, n)
    advance(defer)
    assert {[], [], _} = Connector.turn(c, n)
    # Heard again after it left: its new turn comes, and connects.
    {_, [{:wake, ^n, _}], c} = Connector.heard(new(), n, :discovered, false)
    {_, [], c} = Connector.left(c, n)
    {_, [{:wake, ^n, defer}], c} = Connector.heard(c, n, :discovered, false)
    advance(defer)
    assert {[], [{:attempt, ^n}], _} = Connector.turn(c, n)
  end

  test "a peer connected once is attempted again at once when heard after its drop's grace" do
    n = peer(:n)
    {[discovered: ^n], _, c} = Connector.heard(new(), n, :discovered, true)
    {[connected: ^n], _, c} = Connector.finished(c, n, {:native_gossip_connect, true})

    assert {[disconnected: ^n], [{:set_connected, ^n, false}], c} = Connector.nodedown(c, n)
    advance(Turns.drop_grace_ms())
    {[connected: ^n], _, _c} = run(c, n, :ok)
  end

  test "a heartbeat handled just after a peer's drop waits for its goodbye before a connect" do
    # A node that stops its topology (its goodbye sent) and disconnects at once: a
    # heartbeat it sent just before, handled here after the nodedown, must not tie it
    # again before its goodbye is handled.
    n = peer(:n)
    {[discovered: ^n], _, c} = Connector.heard(new(), n, :discovered, true)
    {[connected: ^n], _, c} = Connector.finished(c, n, {:native_gossip_connect, true})
    {[disconnected: ^n], _, c} = Connector.nodedown(c, n)
    advance(5)
    assert {[], [{:wake, ^n, wait}], waiting} = Connector.heard(c, n, :heard, true)
    assert wait == Turns.drop_grace_ms() - 5
    # Heard again meanwhile: still no attempt.
    assert {[], [], waiting} = Connector.heard(waiting, n, :heard, true)
    # Its goodbye comes: nothing at the end of the wait.
    {[left: ^n], [], gone} = Connector.left(waiting, n)
    advance(wait)
    assert {[], [], _} = Connector.turn(gone, n)
    # No goodbye (the connection dropped, the node runs on): connected at the end.
    assert {[], [{:attempt, ^n}], _} = Connector.turn(waiting, n)
    # A new incarnation (a restart) is no late heartbeat: attempted at once.
    assert {[discovered: ^n], [{:attempt, ^n}], _} = Connector.heard(c, n, :discovered, true)
  end

  test "failures back off exponentially and success resets the backoff" do
    n = peer(:n)
    {[], effects, c} = run(new(), n, false)
    assert {:report_after, n, 100} in effects
    assert [{:log, :warning, "NativeGossip: could not connect to " <> _}] = logs(effects)

    # Backing off: heard again, no new attempt.
    assert {[], [], ^c} = Connector.heard(c, n, :heard, true)
    assert c.peers[n].retry_at == 100

    advance(100)
    {[], effects, c} = run(c, n, false)
    assert {:report_after, n, 200} in effects
    # The second failure is a debug line, not another warning.
    assert [{:log, :debug, message}] = logs(effects)
    assert message.() =~ "failed 2 times"
    assert c.peers[n].retry_at == 300

    advance(200)
    {[connected: ^n], _, c} = run(c, n, true)
    assert c.peers[n] == %{failures: 0, retry_at: nil, deferred: false}
  end

  defp logs(effects), do: for({:log, _, _} = l <- effects, do: l)

  test "the backoff stops at 30 s" do
    n = peer(:n)

    c =
      Enum.reduce(1..12, new(), fn _, c ->
        {[], _, c} = run(c, n, false)
        advance(c.peers[n].retry_at - Process.get(:now))
        c
      end)

    {[], effects, _} = run(c, n, false)
    assert {:report_after, n, 30_000} in effects
  end

  test "one attempt per node at a time" do
    n = peer(:n)
    {_, [{:attempt, ^n}], c} = Connector.heard(new(), n, :discovered, true)
    assert {[], [], ^c} = Connector.heard(c, n, :heard, true)
    assert Connector.in_flight(c) == 1
  end

  test "a connect function that raised, or an attempt killed, counts as a failure" do
    n = peer(:m)
    {_, _, c} = Connector.heard(new(), n, :heard, true)
    crashed = {:crashed, {:error, %RuntimeError{message: "boom"}}}
    {[], effects, c} = Connector.finished(c, n, {:native_gossip_connect, crashed})
    assert [{:log, :warning, message}] = logs(effects)
    assert message =~ "boom"
    assert c.peers[n].failures == 1

    advance(100)
    {_, [{:attempt, ^n}], c} = Connector.heard(c, n, :heard, true)
    {[], _, c} = Connector.finished(c, n, :killed)
    assert c.peers[n].failures == 2
  end

  test "a deferred attempt waits, is announced once, then starts" do
    n = peer(:n)
    # This side does not lead: a wake, not an attempt.
    assert {_, [{:wake, ^n, 100}], c} = Connector.heard(new(), n, :discovered, false)
    assert Connector.in_flight(c) == 0

    advance(100)
    assert {[], [{:attempt, ^n}], c} = Connector.turn(c, n)
    {[connected: ^n], _, c} = Connector.finished(c, n, {:native_gossip_connect, true})

    # Connected, then dropped: the next attempt defers again.
    {_, _, c} = Connector.nodedown(c, n)
    assert {[], [{:wake, ^n, 100}], _} = Connector.heard(c, n, :heard, false)
  end

  test "the turn comes its wait after the peer was heard, however long the report was held" do
    # The native side holds back the discovery of a peer this side does not lead for
    # up to the first wait (native_gossip_core::outbox), and says for how long.
    n = peer(:n)

    assert {[discovered: ^n], [{:wake, ^n, 70}], _} =
             Connector.heard(new(), n, :discovered, false, %{}, 30)

    assert {_, [{:wake, ^n, 1}], c} = Connector.heard(new(), n, :discovered, false, %{}, 100)
    assert {_, [{:wake, ^n, 1}], _} = Connector.heard(new(), n, :discovered, false, %{}, 250)
    # Still a turn (turn/2: it may wait longer), not an attempt at once.
    assert Connector.in_flight(c) == 0
    # A peer this side leads is attempted at once, whatever the wait.
    assert {_, [{:attempt, ^n}], _} = Connector.heard(new(), n, :discovered, true, %{}, 40)
  end

  test "a peer heard again while this side waits its turn: the turn is now" do
    # The native side reports a peer this side defers to again within the wait only
    # when it asked again for what this side answered (a newcomer's burst going on:
    # the answer may be lost, and the newcomer, which leads, may never connect).
    n = peer(:n)
    {_, [{:wake, ^n, 100}], c} = Connector.heard(new(), n, :discovered, false)
    advance(20)
    # Its handshake is under way here: the turn waits for it.
    Process.put(:pending, MapSet.new([n]))
    assert {[], [{:wake, ^n, 100}], c} = Connector.heard(c, n, :heard, false)
    Process.put(:pending, MapSet.new())
    advance(20)
    assert {[], [{:attempt, ^n}], c} = Connector.heard(c, n, :heard, false)
    # Once: the attempt runs, and the wake that comes later finds it running.
    assert {[], [], c} = Connector.heard(c, n, :heard, false)
    advance(60)
    assert {[], [], _} = Connector.turn(c, n)
  end

  test "a peer connected by the other side is not attempted after the deferral" do
    n = peer(:n)
    {_, [{:wake, ^n, _}], c} = Connector.heard(new(), n, :discovered, false)
    # The other side's connect came up meanwhile.
    assert {[connected: ^n], [{:set_connected, ^n, true}], c} = Connector.nodeup(c, n)
    assert c.peers[n] == %{failures: 0, retry_at: nil, deferred: false}

    advance(100)
    assert {[], [], _} = Connector.turn(c, n)
  end

  test "a node already connected is marked connected, not attempted" do
    n = peer(:n)
    c = new()
    Process.put(:connected, MapSet.new([n]))

    assert {[discovered: ^n, connected: ^n], [{:set_connected, ^n, true}], _} =
             Connector.heard(c, n, :discovered, true)
  end

  test "at most max_attempts connect at once; the rest wait their turn, each once" do
    max = Connector.max_attempts()
    nodes = for i <- 1..(max + 20), do: peer(:"n#{i}")

    {started, c} =
      Enum.flat_map_reduce(nodes, new(), fn n, c ->
        {_, effects, c} = Connector.heard(c, n, :discovered, true)
        {attempts(effects), c}
      end)

    assert started == Enum.take(nodes, max)
    # Heard again while queued or attempted: nothing more.
    c =
      Enum.reduce(nodes, c, fn n, c ->
        {[], [], c} = Connector.heard(c, n, :heard, true)
        c
      end)

    assert Connector.in_flight(c) == max
    # A queued peer that left meanwhile is not attempted.
    gone = Enum.at(nodes, max)
    {[left: ^gone], [], c} = Connector.left(c, gone)

    # Each finished attempt lets the next queued one start, in the order they came.
    {finished, c} =
      Enum.reduce_while(1..(max + 20), {[], c}, fn _, {done, c} ->
        case Map.keys(c.attempting) do
          [] ->
            {:halt, {done, c}}

          _ ->
            n = Enum.find(nodes, &Map.has_key?(c.attempting, &1))
            {_, effects, c} = Connector.finished(c, n, {:native_gossip_connect, true})
            assert Connector.in_flight(c) <= max
            assert length(attempts(effects)) <= 1
            {:cont, {done ++ [n], c}}
        end
      end)

    assert finished == List.delete(nodes, gone)
    assert Connector.in_flight(c) == 0
    assert MapSet.size(c.queued) == 0
  end

  test "a node with no attempt of its own waits longer after a leading peer came late" do
    # Both peers lead (the coin fell to them, say): it never attempts anything
    # itself, so only the peers' lateness can tell it that handshakes are slow.
    [late, n] = [peer(:late), peer(:n)]
    {_, [{:wake, ^late, defer}], c} = Connector.heard(new(), late, :discovered, false)
    advance(defer)
    # Its handshake is under way at this side's turn: it waits.
    Process.put(:pending, MapSet.new([late]))
    {[], [{:wake, ^late, _}], c} = Connector.turn(c, late)
    Process.put(:pending, MapSet.new())
    # The leading peer's connection comes up only after this side's turn.
    advance(50)
    {[connected: ^late], _, c} = Connector.nodeup(c, late)
    {_, [{:wake, ^n, _}], c} = Connector.heard(c, n, :discovered, false)
    advance(defer)
    assert {[], [{:wake, ^n, _}], _} = Connector.turn(c, n)
    # A second later the evidence is old: the turn is taken.
    advance(1_000)
    assert {[], [{:attempt, ^n}], _} = Connector.turn(c, n)
    # Without the late peer, the same turn connects at once.
    {_, [{:wake, ^n, _}], c} = Connector.heard(new(), n, :discovered, false)
    advance(defer)
    assert {[], [{:attempt, ^n}], _} = Connector.turn(c, n)
  end

  test "this side's turn waits longer while its own connects are slow, at most ten times" do
    busy = peer(:busy)
    n = peer(:n)
    # One attempt of this node has run for longer than the tie-break wait.
    {_, [{:attempt, ^busy}], c} = Connector.heard(new(), busy, :discovered, true)
    {_, [{:wake, ^n, _}], c} = Connector.heard(c, n, :discovered, false)
    advance(1_000)

    c =
      Enum.reduce(1..10, c, fn i, c ->
        {[], [{:wake, ^n, 100}], c} = Connector.turn(c, n)
        assert c.waits[n] == i
        assert Connector.in_flight(c) == 1
        c
      end)

    # The eleventh time it connects after all.
    assert {[], [{:attempt, ^n}], c} = Connector.turn(c, n)
    assert c.waits == %{}
    assert Connector.in_flight(c) == 2
  end

  test "this side's turn waits while handshakes with other peers are under way here" do
    # Many nodes starting at once: this node leads no pair, none of its peers' connections
    # is up yet, and the leading side's handshake for this pair has not reached it; others
    # have. Connecting now would race the leader's handshake with a second one.
    [n, other, stranger] = [peer(:n), peer(:other), peer(:stranger)]
    {_, [{:wake, ^n, defer}], c} = Connector.heard(new(), n, :discovered, false)
    {_, [{:wake, ^other, _}], c} = Connector.heard(c, other, :discovered, false)
    advance(defer)
    # A handshake of some other code, with a node this topology does not know: no sign.
    Process.put(:handshakes, [stranger])
    assert {[], [{:attempt, ^n}], _} = Connector.turn(c, n)
    # A peer's handshake under way here: handshakes are slow.
    Process.put(:handshakes, [stranger, other])
    assert {[], [{:wake, ^n, 100}], c} = Connector.turn(c, n)
    # The storm over (or no other handshake at all), the turn is taken.
    Process.put(:handshakes, [])
    advance(100)
    assert {[], [{:attempt, ^n}], _} = Connector.turn(c, n)
    # A storm that goes on costs the pair three waits at most (its leader may not have
    # heard this node at all): then the turn is taken.
    {_, [{:wake, ^n, _}], c} = Connector.heard(new(), n, :discovered, false)
    {_, [{:wake, ^other, _}], c} = Connector.heard(c, other, :discovered, false)
    advance(defer)
    Process.put(:handshakes, [other])
    assert {[], [{:wake, ^n, 100}], c} = Connector.turn(c, n)

    c =
      Enum.reduce(2..3, c, fn _, c ->
        advance(100)
        assert {[], [{:wake, ^n, 100}], c} = Connector.turn(c, n)
        c
      end)

    advance(100)
    assert {[], [{:attempt, ^n}], _} = Connector.turn(c, n)
  end

  test "this node's own young attempts do not make its turn wait" do
    # Its own handshakes are in net_kernel's table too; they say handshakes are slow
    # only once they have run longer than the tie-break wait (the test above this one).
    [n, mine] = [peer(:n), peer(:mine)]
    {_, [{:attempt, ^mine}], c} = Connector.heard(new(), mine, :discovered, true)
    {_, [{:wake, ^n, defer}], c} = Connector.heard(c, n, :discovered, false)
    advance(defer)
    Process.put(:handshakes, [mine])
    assert {[], [{:attempt, ^n}], _} = Connector.turn(c, n)
  end

  test "this side's turn waits while the other side's handshake is pending" do
    n = peer(:n)
    {_, [{:wake, ^n, _}], c} = Connector.heard(new(), n, :discovered, false)
    Process.put(:pending, MapSet.new([n]))
    advance(100)
    assert {[], [{:wake, ^n, 100}], c} = Connector.turn(c, n)
    Process.put(:pending, MapSet.new())
    assert {[], [{:attempt, ^n}], _} = Connector.turn(c, n)
  end

  test ":connect_if says no: not attempted, reported again after the longest backoff" do
    n = peer(:n)
    c = new(%{allowed?: fn _node, tags -> tags == %{"role" => "web"} end})

    assert {[discovered: ^n], [{:report_after, ^n, 30_000}], c} =
             Connector.heard(c, n, :discovered, true, %{"role" => "db"})

    # Its tags change: considered again, and now allowed.
    assert {[tags_changed: ^n], [{:attempt, ^n}], _} =
             Connector.tags_changed(c, n, %{"role" => "web"})
  end

  test "a name no connect can reach is listed, and reported rarely" do
    # The other name style than this VM's: net_kernel would refuse to connect it.
    n = if :net_kernel.longnames(), do: :n@shorthost, else: :"n@long.example"
    refute NativeGossip.NodeName.connectable?(n)

    assert {[discovered: ^n], [{:report_after, ^n, 30_000}], c} =
             Connector.heard(new(), n, :discovered, true)

    assert Connector.status(c) == %{n => :disconnected}
  end
end
