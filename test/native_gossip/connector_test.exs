defmodule NativeGossip.ConnectorTest do
  # The connection-attempt bookkeeping alone, with functions standing in for connects.
  use ExUnit.Case, async: true

  alias NativeGossip.Connector

  defp run(c, node, result) do
    c = Connector.maybe_attempt(c, node, fn -> result end)
    assert_receive {:DOWN, ref, :process, _, reason}
    Connector.finished(c, ref, reason)
  end

  test "a peer connected once is attempted again at once after it drops" do
    {:n@h, :connected, c} = run(%Connector{}, :n@h, true)
    {:n@h, :connected, _c} = run(c, :n@h, :ok)
  end

  test "failures back off exponentially and success resets the backoff" do
    {:n@h, {:failed, false, 1}, c} = run(%Connector{}, :n@h, false)
    # Backing off: no new attempt is started.
    assert Connector.maybe_attempt(c, :n@h, fn -> flunk("attempted while backing off") end) == c
    assert (c.peers[:n@h].retry_at - System.monotonic_time(:millisecond)) in 1..100

    Process.sleep(110)
    {:n@h, {:failed, false, 2}, c} = run(c, :n@h, false)
    assert (c.peers[:n@h].retry_at - System.monotonic_time(:millisecond)) in 101..200

    Process.sleep(210)
    {:n@h, :connected, c} = run(c, :n@h, true)
    assert c.peers[:n@h] == %{failures: 0, retry_at: nil, deferred: false}
  end

  test "one attempt per node at a time" do
    parent = self()

    c =
      Connector.maybe_attempt(%Connector{}, :n@h, fn ->
        send(parent, :go)
        Process.sleep(:infinity)
      end)

    assert_receive :go
    assert Connector.maybe_attempt(c, :n@h, fn -> flunk("second attempt") end) == c
    assert Connector.in_flight(c) == 1
  end

  test "a connect function that raises counts as a failure" do
    c = Connector.maybe_attempt(%Connector{}, :m@h, fn -> raise "boom" end)
    assert_receive {:DOWN, ref, :process, _, reason}

    assert {:m@h, {:failed, {:crashed, {:error, %RuntimeError{message: "boom"}}}, 1}, _} =
             Connector.finished(c, ref, reason)
  end

  test "a deferred attempt waits, is announced once, then starts" do
    c = Connector.maybe_attempt(%Connector{}, :n@h, fn -> flunk("attempted at once") end, 30)
    assert Connector.in_flight(c) == 0
    # Heard again meanwhile: still waiting, and no second timer.
    assert Connector.maybe_attempt(c, :n@h, fn -> flunk("attempted early") end, 30) == c
    assert_receive {:native_gossip_deferred, :n@h}, 1_000
    refute_received {:native_gossip_deferred, :n@h}

    c = Connector.maybe_attempt(c, :n@h, fn -> true end, 30)
    assert Connector.in_flight(c) == 1
    assert_receive {:DOWN, ref, :process, _, reason}
    assert {:n@h, :connected, c} = Connector.finished(c, ref, reason)

    # Connected, then dropped: the next attempt defers again.
    c = Connector.maybe_attempt(c, :n@h, fn -> flunk("attempted at once") end, 30)
    assert Connector.in_flight(c) == 0
    assert_receive {:native_gossip_deferred, :n@h}, 1_000
  end

  test "a peer connected by the other side is not attempted after the deferral" do
    c = Connector.maybe_attempt(%Connector{}, :n@h, fn -> flunk("attempted") end, 10_000)
    c = Connector.connected(c, :n@h)
    assert c.peers[:n@h].deferred == false
    assert c.peers[:n@h].retry_at == nil
    assert Connector.connected(c, :other@h) == c
  end

  test "at most max_attempts connect at once; the rest wait their turn, each once" do
    parent = self()
    max = Connector.max_attempts()
    nodes = for i <- 1..(max + 20), do: :"n#{i}@h"

    hang = fn node ->
      fn ->
        send(parent, {:attempt, node, self()})
        receive do: (:go -> true)
      end
    end

    c = Enum.reduce(nodes, %Connector{}, &Connector.maybe_attempt(&2, &1, hang.(&1)))
    # Heard again while queued or attempted: nothing more.
    c = Enum.reduce(nodes, c, &Connector.maybe_attempt(&2, &1, hang.(&1)))
    assert Connector.in_flight(c) == max
    first = for _ <- 1..max, do: assert_receive({:attempt, _, _})
    refute_receive {:attempt, _, _}, 50
    # A queued peer forgotten meanwhile is not attempted.
    c = Connector.forget(c, :"n#{max + 1}@h")

    # Each finished attempt lets the next queued one start, in the order they came.
    {attempted, c} =
      Enum.reduce(1..(max + 19), {first, c}, fn _, {[{:attempt, node, pid} | rest], c} ->
        ref = c.attempting[node]
        send(pid, :go)
        assert_receive {:DOWN, ^ref, :process, _, reason}
        {^node, :connected, c} = Connector.finished(c, ref, reason)
        assert Connector.in_flight(c) <= max

        receive do
          {:attempt, _, _} = next -> {rest ++ [next], c}
        after
          50 -> {rest, c}
        end
      end)

    assert attempted == []
    assert Connector.in_flight(c) == 0
    assert c.queued == %{}
  end

  test "this side's turn waits longer while its own connects are slow, at most ten times" do
    parent = self()
    # One attempt of this node has run for longer than the tie-break wait.
    c = Connector.maybe_attempt(%Connector{}, :busy@h, fn -> receive(do: (:go -> true)) end)
    [ref] = Map.keys(c.started_at)
    c = %{c | started_at: %{ref => System.monotonic_time(:millisecond) - 1_000}}
    # A peer named in this VM's style (so that a connect is possible at all).
    peer = :"peer@#{NativeGossip.NodeName.host(node())}"
    c = %{c | status: %{peer => :disconnected}}

    c =
      Enum.reduce(1..10, c, fn i, c ->
        {[], c} = Connector.deferred(c, peer)
        assert c.waits[peer] == i
        assert Connector.in_flight(c) == 1
        assert_receive {:native_gossip_deferred, ^peer}, 1_000
        c
      end)

    # The eleventh time it connects after all.
    {[], c} =
      Connector.deferred(%{c | connect: fn node -> send(parent, {:connect, node}) end}, peer)

    assert_receive {:connect, ^peer}
    assert c.waits == %{}
    assert Connector.in_flight(c) == 2
  end

  test "a monitor that is not an attempt is unknown" do
    assert Connector.finished(%Connector{}, make_ref(), :normal) == :unknown
  end
end
