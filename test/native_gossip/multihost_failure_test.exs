defmodule NativeGossip.MultihostFailureTest do
  # Failure detection across test hosts (issue #26): a node that vanishes is gone from
  # the whole cluster in seconds, and no fault that leaves the distribution connection
  # working ever disconnects anyone. Times are measured in bench/failover.exs; these
  # tests check behaviour, with bounds wide enough for a busy machine.
  use ExUnit.Case, async: false

  import NativeGossip.TestNet
  import NativeGossip.BenchNetwork, only: [start_nodes: 3]
  alias NativeGossip.{EventRecorder, TestRig}

  @moduletag :multihost
  @moduletag timeout: 300_000

  # heartbeat_interval 500 ms: lost after 1.5 s.
  @interval 500
  @lost_after 3 * @interval

  defp topology(more \\ []),
    do: [name: :lan, secret: "failure", heartbeat_interval: @interval] ++ more

  defp events(n), do: :peer.call(n.peer, EventRecorder, :events, [n.recorder])
  defp events(n, event, node), do: for({^event, ^node, at} <- events(n), do: at)

  defp wait_event(n, event, node, timeout) do
    wait_until(
      fn -> if (at = events(n, event, node)) != [], do: at end,
      timeout,
      "#{n.node}: #{event} #{node}"
    )
  end

  defp now_us, do: System.system_time(:microsecond)

  # Connected, and each node has heard each other one: a node can be connected by a
  # peer before it has heard that peer's heartbeat (an answer lost), and a peer never
  # heard is never reported lost (the BEAM's tick is then all there is).
  defp wait_for_cluster(ns) do
    TestRig.wait_for_mesh(ns)

    for n <- ns do
      others = Enum.sort(for m <- ns, m != n, do: m.node)

      wait_until(
        fn ->
          heard = for m <- :peer.call(n.peer, NativeGossip, :members, [:lan]), do: m.node
          Enum.sort(heard) == others
        end,
        5_000,
        "#{n.node} to hear every other node"
      )
    end
  end

  defp wait_heard(n, node) do
    wait_until(
      fn -> Enum.any?(:peer.call(n.peer, NativeGossip, :members, [:lan]), &(&1.node == node)) end,
      5_000,
      "#{n.node} to hear #{node}"
    )
  end

  test "a host cut off without a reset: :nodedown on both others within lost_after + 1 s; back, it rejoins" do
    rig = TestRig.start_in_test!(3)
    [a, b, c] = ns = start_nodes(rig, 1..3, topology())
    wait_for_cluster(ns)
    # A :pg group member on c, seen from a: gone with c's :nodedown, as for a crash.
    for n <- ns, do: {:ok, _} = :peer.call(n.peer, :pg, :start, [:ng_failure])
    service = :peer.call(c.peer, :erlang, :spawn, [:timer, :sleep, [:infinity]])
    :ok = :peer.call(c.peer, :pg, :join, [:ng_failure, :service, service])
    members = fn -> :peer.call(a.peer, :pg, :get_members, [:ng_failure, :service]) end
    wait_until(fn -> members.() == [service] end)

    :ok = :peer.call(a.peer, EventRecorder, :record_dead_evidence, [a.recorder])
    b_node = b.node
    cut = now_us()
    TestRig.link(rig, 3, :down)

    for n <- [a, b] do
      [down | _] = wait_event(n, :nodedown, c.node, 15_000)
      took = div(down - cut, 1000)
      assert took <= @lost_after + 1_000, "#{n.node}: :nodedown #{took} ms after the cut"
      assert [_ | _] = events(n, :suspect, c.node)
      assert [_ | _] = events(n, :dead, c.node)
      assert c.node not in TestRig.nodes(n)
    end

    wait_until(fn -> members.() == [] end)

    # The evidence, in telemetry: no answer from c directly, nor through b (which may
    # have dropped c already, and then says it has no connection to probe it over).
    assert [%{direct: direct, indirect: %{^b_node => via_b}}] =
             for({:dead_evidence, x, e} <- events(a), x == c.node, do: e)

    assert direct in [:timeout, :failed]
    assert via_b in [:timeout, :failed, :not_connected]

    # members/1 says what happened.
    assert %{state: :dead} =
             Enum.find(:peer.call(a.peer, NativeGossip, :members, [:lan]), &(&1.node == c.node))

    # The link back: heard again, discovered and connected within two intervals.
    TestRig.link(rig, 3, :up)
    back = now_us()
    TestRig.wait_for_mesh(ns, 10_000)
    [up | _] = events(a, :nodeup, c.node) |> Enum.filter(&(&1 > back))
    assert div(up - back, 1000) <= 2 * 1_500 + 1_000, "rejoined #{div(up - back, 1000)} ms after"

    # (Connected may come before a has heard c again: it may be :lost until then.)
    wait_until(fn ->
      row = Enum.find(:peer.call(a.peer, NativeGossip, :members, [:lan]), &(&1.node == c.node))
      match?(%{state: :alive}, row)
    end)
  end

  test "a partition of {a, b} from {c}: each side drops the other, and the mesh is whole after the heal" do
    rig = TestRig.start_in_test!(3)
    [a, b, c] = ns = start_nodes(rig, 1..3, topology())
    wait_for_cluster(ns)

    TestRig.link(rig, 3, :down)
    for n <- [a, b], do: wait_event(n, :nodedown, c.node, 15_000)
    # c, alone, drops both (its probes through each other fail too).
    wait_event(c, :nodedown, a.node, 15_000)
    wait_event(c, :nodedown, b.node, 15_000)
    assert [_ | _] = events(c, :dead, a.node)
    assert TestRig.nodes(c) == []
    # a and b stay connected to each other.
    assert b.node in TestRig.nodes(a)
    assert events(a, :nodedown, b.node) == []

    TestRig.link(rig, 3, :up)
    TestRig.wait_for_mesh(ns, 15_000)
  end

  test "a frozen VM (SIGSTOP) is declared dead and disconnected; resumed, it is connected again" do
    rig = TestRig.start_in_test!(3)
    [a, b, c] = ns = start_nodes(rig, 1..3, topology())
    wait_for_cluster(ns)
    pid = :peer.call(c.peer, :os, :getpid, [])

    System.cmd("kill", ["-STOP", to_string(pid)])

    try do
      for n <- [a, b], do: wait_event(n, :dead, c.node, 15_000)
      for n <- [a, b], do: wait_until(fn -> c.node not in TestRig.nodes(n) end)
    after
      System.cmd("kill", ["-CONT", to_string(pid)])
    end

    # Its heartbeats again: discovered and connected, as after a restart.
    TestRig.wait_for_mesh(ns, 15_000)
  end

  test "-connect_all false with :connect_if: probed only through members connected to the peer" do
    rig = TestRig.start_in_test!(4)
    connect_if = {NativeGossip.TestRoles, :connect?, []}
    role = fn r -> topology(tags: %{role: r}, connect_if: put_elem(connect_if, 2, [r])) end
    [c1, c2] = start_nodes(rig, 1..2, role.("coordinator"))
    [w1, w2] = start_nodes(rig, 3..4, role.("worker"))
    coordinators = Enum.sort([c1.node, c2.node])
    for w <- [w1, w2], do: wait_until(fn -> TestRig.nodes(w) == coordinators end)
    everyone = Enum.sort([c1.node, c2.node, w1.node, w2.node])
    for c <- [c1, c2], do: wait_until(fn -> TestRig.nodes(c) == everyone -- [c.node] end)

    for {n, m} <- [{w1, c1}, {c1, w1}, {c2, c1}], do: wait_heard(n, m.node)

    # c1's heartbeats stop reaching w1 (its connection works): w1 probes c1 directly
    # and through c2, the only other member w1 is connected to.
    TestRig.drop_from(rig, 3, 1)
    wait_event(w1, :suspect, c1.node, 10_000)
    wait_until(fn -> prober(c2).probed >= 1 end, 5_000, "c2 to probe c1 for w1")
    Process.sleep(2 * @lost_after)
    assert events(w1, :dead, c1.node) == []
    assert c1.node in TestRig.nodes(w1)
    # Silent, but its probes are answered: not lost, shown alive.
    assert events(w1, :lost, c1.node) == []
    assert %{state: :alive, connected?: true} = member(w1, c1.node)
    discovered = events(w1, :discovered, c1.node)
    connected = events(w1, :connected, c1.node)
    healed = System.system_time(:millisecond)
    TestRig.loss(rig, 3, 0)
    # Heard again: no news (it was never lost).
    wait_until(fn -> member(w1, c1.node).last_seen > healed end, 5_000, "w1 to hear c1")
    assert events(w1, :discovered, c1.node) == discovered
    assert events(w1, :connected, c1.node) == connected

    # w1's heartbeats stop reaching c1: c1 asks c2 and w2; w2 is not connected to w1,
    # so it does not probe it (that would connect two workers): it says so.
    TestRig.drop_from(rig, 1, 3)
    wait_event(c1, :suspect, w1.node, 10_000)
    wait_until(fn -> prober(w2).not_connected >= 1 end, 5_000, "w2 to decline")
    Process.sleep(2 * @lost_after)
    assert events(c1, :dead, w1.node) == []
    # No worker is connected to another, by probing or otherwise.
    assert TestRig.nodes(w2) == coordinators
    assert TestRig.nodes(w1) == coordinators
  end

  defp member(n, node),
    do: Enum.find(:peer.call(n.peer, NativeGossip, :members, [:lan]), &(&1.node == node))

  defp prober(n), do: :peer.call(n.peer, :sys, :get_state, [NativeGossip.Prober])

  test "the fault matrix: no fault that leaves the connections working disconnects anyone or reports it lost" do
    rig = TestRig.start_in_test!(3)
    ns = start_nodes(rig, 1..3, topology())
    wait_for_cluster(ns)

    for {name, make, undo} <- NativeGossip.FaultMatrix.faults(rig, ns) do
      make.()
      Process.sleep(30_000)
      undo.()

      for n <- ns do
        assert [] == for({:nodedown, x, _} <- events(n), do: x), "#{name}: #{n.node} disconnected"
        # Nor is any peer reported lost: silence is only a reason to probe a connected
        # peer, and every probe answered.
        assert [] == for({:lost, x, _} <- events(n), do: x), "#{name}: #{n.node} reported lost"
      end
    end

    # The faults were real: every node was suspected by someone, and probed.
    assert Enum.any?(ns, fn n -> Enum.any?(events(n), &match?({:suspect, _, _}, &1)) end)
    TestRig.wait_for_mesh(ns)
  end
end
