defmodule NativeGossip.MultihostHostileTest do
  # Hostile traffic from another test host, sent by native-gossip-probe, against a
  # node with NativeGossip; and faults of the host itself.
  use ExUnit.Case, async: false

  import NativeGossip.TestNet
  alias NativeGossip.{EventRecorder, TestRig}

  @moduletag :multihost
  @moduletag timeout: 180_000

  defp start_node(rig, i, topology) do
    {peer, node} = TestRig.start_node!(rig, i)
    {_t0, recorder} = :peer.call(peer, EventRecorder, :start_topology, [topology])
    %{peer: peer, node: node, recorder: recorder}
  end

  defp call(n, m, f, a), do: :peer.call(n.peer, m, f, a, 30_000)
  defp stats(n), do: call(n, NativeGossip, :stats, [:lan])
  defp server(n), do: call(n, NativeGossip.Topology, :server!, [:lan])

  defp restart_topology(n), do: TestRig.restart_topology(n.peer, :lan)
  defp warm_up(n), do: TestRig.warm_up(n.peer, :lan, n.recorder)

  defp connected_since?(n, node, t) do
    call(n, EventRecorder, :events, [n.recorder])
    |> Enum.any?(fn {e, nd, at} -> e == :connected and nd == node and at > t end)
  end

  # kind => the drop reason every datagram of it must get at a node with a secret
  # (nil: spread over several reasons, e.g. random bytes or flipped bits).
  @kinds [
    {"random", nil},
    {"truncated", nil},
    {"oversized", :too_long},
    {"bad-mac", :bad_signature},
    {"names", :missing_signature},
    # From another host than the one the captured heartbeat lists (#23).
    {"replay", :foreign_source},
    {"bitflip", nil}
  ]

  test "with a secret: every kind of hostile traffic is dropped and counted, nothing crashes, no atom is made" do
    rig = TestRig.start_in_test!(3)
    topology = [name: :lan, secret: "s", log_interval: 3_600_000]
    victim = start_node(rig, 1, topology)
    legit = start_node(rig, 3, topology)
    wait_until(fn -> call(victim, Node, :list, []) == [legit.node] end)

    server = server(victim)
    warm_up(victim)
    atoms = call(victim, :erlang, :system_info, [:atom_count])
    memory = call(victim, :erlang, :memory, [:total])

    for {kind, reason} <- @kinds do
      before = stats(victim)

      sent =
        TestRig.probe!(
          rig,
          2,
          ~w(send --kind #{kind} --rate 2000 --duration 1 --secret s) ++
            ~w(--capture-name #{legit.node} --capture-timeout 5)
        )

      assert sent > 1_000

      # Until the drops account for every datagram sent (counting all received would
      # let the legitimate node's heartbeats stand in for the last hostile ones).
      wait_until(
        fn -> dropped_since(stats(victim), before, reason) >= sent end,
        5_000,
        "#{kind} to arrive"
      )

      after_ = stats(victim)
      delta = Map.new(after_.dropped, fn {r, n} -> {r, n - before.dropped[r]} end)

      if reason,
        do: assert(delta[reason] == sent, "#{kind}: #{inspect(delta)}, sent #{sent}"),
        else:
          assert(
            Enum.sum(Map.values(delta)) >= sent,
            "#{kind}: #{inspect(delta)}"
          )

      # Only the legitimate node is known.
      assert [%{node: node}] = call(victim, NativeGossip, :members, [:lan])
      assert node == legit.node
    end

    # No process of the library crashed or restarted, no atom was made, memory bounded.
    assert server(victim) == server
    assert call(victim, :erlang, :system_info, [:atom_count]) == atoms
    assert call(victim, :erlang, :memory, [:total]) - memory < 10_000_000

    # And under a flood, a legitimate node (re)joining is connected.
    flood =
      Task.async(fn ->
        TestRig.probe!(rig, 2, ~w(send --kind bad-mac --rate 20000 --duration 3))
      end)

    Process.sleep(500)
    t = System.system_time(:microsecond)
    restart_topology(legit)
    wait_until(fn -> connected_since?(victim, legit.node, t) end, 3_000, "the new incarnation")
    Task.await(flood, 30_000)
  end

  test "without a secret: made-up names become peers at a bounded rate; a legitimate node still joins" do
    rig = TestRig.start_in_test!(3)
    topology = [name: :lan, log_interval: 3_600_000, heartbeat_interval: 500]
    victim = start_node(rig, 1, topology)
    legit = start_node(rig, 3, topology)
    wait_until(fn -> call(victim, Node, :list, []) == [legit.node] end)
    warm_up(victim)
    # A first flood: the first short host name learned also costs a fixed number of
    # atoms once (the VM's resolver switches to its own host table). From then on, only
    # admitted names may make atoms.
    TestRig.probe!(rig, 2, ~w(send --kind names --rate 5000 --duration 1))
    Process.sleep(200)
    atoms = call(victim, :erlang, :system_info, [:atom_count])
    before = stats(victim)
    known = length(call(victim, NativeGossip, :members, [:lan]))

    flood =
      Task.async(fn -> TestRig.probe!(rig, 2, ~w(send --kind names --rate 5000 --duration 3)) end)

    Process.sleep(500)
    t = System.system_time(:microsecond)
    restart_topology(legit)
    # The legitimate node is not held back by the flood's exhausted allowance.
    wait_until(fn -> connected_since?(victim, legit.node, t) end, 3_000, "the legitimate node")
    sent = Task.await(flood, 30_000)

    after_ = stats(victim)
    admitted = length(call(victim, NativeGossip, :members, [:lan])) - known
    # Default :new_peer_rate 5/s with bursts of 10 (partly spent by the first flood).
    assert admitted <= 10 + 5 * 4
    # Every refused name is counted (at 5000/s a few datagrams may overflow the socket's
    # receive buffer before they are read: allow 1 % of them not to arrive at all).
    assert after_.dropped.rate_limited - before.dropped.rate_limited >= 0.99 * sent - admitted
    # One atom per admitted name, none for the thousands refused.
    assert call(victim, :erlang, :system_info, [:atom_count]) - atoms <= admitted
  end

  test "an interface removed at run time: the topology goes on, reports it, and does not spin" do
    rig = TestRig.start_in_test!(2)
    topology = [name: :lan, secret: "i", heartbeat_interval: 200]
    [a, b] = for i <- 1..2, do: start_node(rig, i, topology)
    wait_until(fn -> call(a, Node, :list, []) == [b.node] end)
    server = server(b)
    os_pid = call(b, :os, :getpid, [])

    TestRig.remove_link(rig, 2)
    # The membership check notices within its 5 s period.
    wait_until(fn -> stats(b).joined == false end, 8_000, "the topology to notice")

    cpu = fn -> NativeGossip.BenchNetwork.cpu_ticks(os_pid) end
    ticks = cpu.()
    Process.sleep(3_000)
    # Clock ticks are 1/100 s: under 0.3 s of CPU in 3 s, so no core is spinning.
    assert cpu.() - ticks < 30
    assert server(b) == server
    # The native thread goes on too (it has not stopped on the socket errors).
    native = call(b, NativeGossip.Topology, :native!, [:lan])
    assert call(b, NativeGossip.Native, :running, [native])
  end

  defp dropped_since(now, before, nil),
    do: Enum.sum(Map.values(now.dropped)) - Enum.sum(Map.values(before.dropped))

  defp dropped_since(now, before, reason),
    do: Map.get(now.dropped, reason, 0) - Map.get(before.dropped, reason, 0)
end
