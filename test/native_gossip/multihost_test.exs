defmodule NativeGossip.MultihostTest do
  # The library across test hosts: network namespaces on a bridge, one real BEAM node
  # per host (NativeGossip.TestRig). Times are measured in bench/network.exs and
  # recorded in docs/BENCHMARKS.md; these tests check behaviour.
  use ExUnit.Case, async: false

  import NativeGossip.TestNet
  alias NativeGossip.{EventRecorder, HeartbeatPacket, TestRig}

  @moduletag :multihost
  @moduletag timeout: 120_000

  # Starts a node with a recording topology on each of `hosts`.
  defp start_nodes(rig, hosts, topology, node_opts \\ []) do
    for i <- hosts do
      {peer, node} = TestRig.start_node!(rig, i, node_opts)
      {_t0, recorder} = :peer.call(peer, EventRecorder, :start_topology, [topology])
      %{i: i, peer: peer, node: node, recorder: recorder}
    end
  end

  defp nodes(n), do: TestRig.nodes(n)
  defp wait_for_mesh(ns, timeout \\ 10_000), do: TestRig.wait_for_mesh(ns, timeout)

  defp events(n, event, node) do
    for {^event, ^node, at} <- :peer.call(n.peer, EventRecorder, :events, [n.recorder]), do: at
  end

  defp wait_event(n, event, node, timeout) do
    wait_until(
      fn -> events(n, event, node) != [] end,
      timeout,
      "#{n.node} to see #{event} #{node}"
    )
  end

  # Also run on the portable socket paths (make elixir-portable).
  @tag :portable
  test "five hosts, nodes named n@<address>: full mesh" do
    rig = TestRig.start_in_test!(5)
    ns = start_nodes(rig, 1..5, name: :lan, secret: "five")
    wait_for_mesh(ns)

    for n <- ns do
      # A node can be connected (by a peer that heard it) before it has heard that
      # peer: a lost answer is made up by the peer's next heartbeat (1.5 s).
      members =
        wait_until(fn ->
          ms = :peer.call(n.peer, NativeGossip, :members, [:lan])
          length(ms) == 4 && ms
        end)

      # Each peer is known by the address of its own host.
      for m <- members, do: assert("n@" <> to_string(:inet.ntoa(m.address)) == to_string(m.node))
    end
  end

  # Also run on the portable socket paths (make elixir-portable).
  @tag :portable
  test "three hosts, --sname, no DNS: host names are learned from authenticated heartbeats" do
    rig = TestRig.start_in_test!(3)
    [n1, _, n3] = ns = start_nodes(rig, 1..3, [name: :lan, secret: "s"], names: :short)
    assert Enum.map(ns, & &1.node) == [:n@host1, :n@host2, :n@host3]
    wait_for_mesh(ns)

    assert {:ok, {:hostent, ~c"host2", _, :inet, 4, [{198, 51, 100, 2}]}} =
             :peer.call(n1.peer, :inet, :gethostbyname, [~c"host2"])

    # Forged heartbeats for a name on a made-up host, sent from host 3: unsigned, and
    # signed with another secret. Neither may teach an address.
    unsigned = HeartbeatPacket.build("evil@host9")
    bad_mac = HeartbeatPacket.build("evil@host9", secret: "guess", sequence: 2)
    :ok = :peer.call(n3.peer, HeartbeatPacket, :send_all, [45_892, [unsigned, bad_mac]])

    wait_until(fn ->
      d = :peer.call(n1.peer, NativeGossip, :stats, [:lan]).dropped
      d.missing_signature >= 1 and d.bad_signature >= 1
    end)

    assert {:error, _} = :peer.call(n1.peer, :inet, :gethostbyname, [~c"host9"])
    assert length(:peer.call(n1.peer, NativeGossip, :members, [:lan])) == 2
  end

  test "with resolve_short_names: false, short names on other hosts do not resolve" do
    rig = TestRig.start_in_test!(2)

    [n1, n2] =
      start_nodes(rig, 1..2, [name: :lan, resolve_short_names: false, heartbeat_interval: 100],
        names: :short
      )

    # They hear each other ...
    wait_until(fn -> length(:peer.call(n1.peer, NativeGossip, :members, [:lan])) == 1 end)
    wait_until(fn -> length(:peer.call(n2.peer, NativeGossip, :members, [:lan])) == 1 end)
    # ... for several heartbeats, and still cannot connect: nothing resolves host2.
    Process.sleep(1_000)
    assert nodes(n1) == []
    assert {:error, _} = :peer.call(n1.peer, :inet, :gethostbyname, [~c"host2"])
  end

  test "30 % loss of gossip on every host: a new node still joins a running cluster" do
    rig = TestRig.start_in_test!(4)
    for i <- 1..4, do: TestRig.loss(rig, i, 30)
    old = start_nodes(rig, 1..3, name: :lan, secret: "lossy")
    wait_for_mesh(old)

    [new] = start_nodes(rig, [4], name: :lan, secret: "lossy")
    wait_for_mesh([new | old])
    # The loss was real.
    assert Enum.sum(for i <- 1..4, do: TestRig.dropped(rig, i)) > 0
  end

  test "without failure detection, a host cut off for 10 s is reported lost, not disconnected, then heard again" do
    rig = TestRig.start_in_test!(3)
    # Failure detection off: only the native side's report (multihost_failure_test.exs
    # has the same cut with detection on).
    topology = [name: :lan, secret: "p", heartbeat_interval: 500, failure_detection: false]
    [a, b, c] = ns = start_nodes(rig, 1..3, topology)
    wait_for_mesh(ns)

    TestRig.link(rig, 3, :down)
    # Well before distribution's own tick (about a minute) would notice.
    wait_event(a, :lost, c.node, 10_000)
    wait_event(b, :lost, c.node, 10_000)
    assert c.node in nodes(a)
    Process.sleep(10_000 - 1_500)
    TestRig.link(rig, 3, :up)

    # Heard again: discovered, and connected, with no action from anyone.
    wait_event(a, :discovered, c.node, 5_000)
    wait_until(fn -> length(events(a, :connected, c.node)) >= 2 end, 5_000, "a reconnected to c")
    wait_for_mesh(ns)

    assert [%{state: :alive}, %{state: :alive}] =
             :peer.call(a.peer, NativeGossip, :members, [:lan])
  end

  test "a node whose interface comes up 5 s after it started joins without a restart" do
    rig = TestRig.start_in_test!(3, down: [3])
    old = start_nodes(rig, 1..2, name: :lan, secret: "late")
    wait_for_mesh(old)

    [late] = start_nodes(rig, [3], name: :lan, secret: "late")
    Process.sleep(5_000)
    assert nodes(late) == []
    TestRig.link(rig, 3, :up)

    wait_for_mesh([late | old])
    # (The others may connect to it before it has counted their answers.)
    wait_until(fn -> :peer.call(late.peer, NativeGossip, :stats, [:lan]).accepted > 0 end)
  end

  test "a node that stops cleanly is reported left and not reconnected; back, it is connected again" do
    rig = TestRig.start_in_test!(3)
    [a, b, c] = ns = start_nodes(rig, 1..3, name: :lan, secret: "l", heartbeat_interval: 300)
    wait_for_mesh(ns)
    id = {NativeGossip, :lan}

    :ok = :peer.call(c.peer, Supervisor, :terminate_child, [NativeGossip.Supervisor, id])
    wait_event(a, :left, c.node, 1_000)
    wait_event(b, :left, c.node, 1_000)

    # Its VM is still up; drop the connection: nobody reconnects to a node that left.
    :ok = :peer.call(c.peer, Enum, :each, [[a.node, b.node], &:erlang.disconnect_node/1])
    wait_until(fn -> nodes(c) == [] end)
    Process.sleep(1_000)
    assert nodes(c) == []
    assert c.node not in nodes(a)

    # Back with a new incarnation: connected again.
    {:ok, _} = :peer.call(c.peer, Supervisor, :restart_child, [NativeGossip.Supervisor, id])
    wait_for_mesh(ns)
    assert length(events(a, :discovered, c.node)) >= 2
  end

  test "a host whose link was down for 6 s and stops right after it is back: its goodbye is accepted" do
    rig = TestRig.start_in_test!(3)
    [a, b, c] = ns = start_nodes(rig, 1..3, name: :lan, secret: "flap", heartbeat_interval: 300)
    wait_for_mesh(ns)

    # While the link is down the host has no address but loopback, and its heartbeats
    # list what it has. Back, its goodbye must list its address again: with a secret,
    # a heartbeat that lists none of its source's addresses is dropped (foreign_source).
    TestRig.link(rig, 3, :down)
    Process.sleep(6_000)
    TestRig.link(rig, 3, :up)
    stop = System.system_time(:microsecond)
    id = {NativeGossip, :lan}
    :ok = :peer.call(c.peer, Supervisor, :terminate_child, [NativeGossip.Supervisor, id])

    for n <- [a, b] do
      wait_until(
        fn -> Enum.any?(events(n, :left, c.node), &(&1 > stop)) end,
        5_000,
        "#{n.node} to hear #{c.node} leave"
      )
    end
  end

  test "a node killed with kill -9: disconnected at once, lost, then forgotten; the rest unaffected" do
    rig = TestRig.start_in_test!(3)

    topology = [
      name: :lan,
      secret: "k",
      heartbeat_interval: 200,
      lost_after: 600,
      forget_after: 2_000
    ]

    [a, b, c] = ns = start_nodes(rig, 1..3, topology)
    wait_for_mesh(ns)

    TestRig.kill(c.peer)
    wait_event(a, :disconnected, c.node, 2_000)
    wait_event(a, :lost, c.node, 2_000)
    [lost_at] = events(a, :lost, c.node)
    [down_at] = events(a, :disconnected, c.node)
    # Distribution notices the dead node first; heartbeats only after lost_after.
    assert down_at < lost_at

    wait_until(fn -> :peer.call(a.peer, NativeGossip, :members, [:lan]) |> length() == 1 end)
    assert [%{node: node}] = :peer.call(a.peer, NativeGossip, :members, [:lan])
    assert node == b.node
    assert nodes(a) == [b.node]
    assert nodes(b) == [a.node]
  end
end
