defmodule NativeGossip.ClusterTest do
  # Real BEAM nodes in the private namespace, discovering each other by multicast.
  use ExUnit.Case, async: false

  import NativeGossip.TestNet
  alias NativeGossip.{RecordingConnect, TestPeers}

  setup do
    {:ok, port: unique_port()}
  end

  defp start_peers(names, opts) do
    peers = Enum.map(names, &TestPeers.start!/1)
    on_exit(fn -> Enum.each(peers, &safe_stop/1) end)
    for {peer, _} <- peers, do: {:ok, _} = TestPeers.start_topology(peer, opts)
    peers
  end

  defp safe_stop({peer, _}), do: TestPeers.stop(peer)

  test "two nodes find each other and connect", %{port: port} do
    peers = start_peers([:two_a, :two_b], name: :lan, port: port, secret: "s")
    TestPeers.wait_for_mesh(peers)

    [{a, _}, {_, b_node}] = peers

    assert [%{node: ^b_node, state: :alive, connected?: true, address: {127, 0, 0, 1}} = m] =
             wait_until(fn ->
               case TestPeers.call(a, NativeGossip, :members, [:lan]) do
                 [%{connected?: true}] = ms -> ms
                 _ -> nil
               end
             end)

    assert m.last_seen <= System.system_time(:millisecond)
    assert is_integer(m.incarnation)
  end

  test "three nodes reach a full mesh, each connection made by NativeGossip", %{port: port} do
    peers =
      start_peers([:three_a, :three_b, :three_c], name: :lan, port: port, heartbeat_interval: 200)

    TestPeers.wait_for_mesh(peers)

    # Connections can complete before a node has heard the others' answers (a node
    # that hears a newcomer connects to it at once): wait for the counters too.
    for {peer, _} <- peers do
      stats =
        wait_until(fn ->
          s = TestPeers.call(peer, NativeGossip, :stats, [:lan])
          s.peers == 2 and s.accepted >= 2 and s
        end)

      assert stats.received ==
               stats.accepted + stats.looped_back + Enum.sum(Map.values(stats.dropped))
    end
  end

  # Whether each of a pair called its connect function, once they are connected.
  defp who_connected(peers) do
    [{a, a_node}, {b, b_node}] = peers
    TestPeers.wait_for_mesh(peers)
    # Long enough for a deferred attempt (100 ms) to have run had it been made.
    Process.sleep(300)

    {TestPeers.call(a, RecordingConnect, :starts, [b_node]) != [],
     TestPeers.call(b, RecordingConnect, :starts, [a_node]) != []}
  after
    Enum.each(peers, &safe_stop/1)
  end

  defp recording_pair(names, port, interval \\ 200) do
    peers = Enum.map(names, &TestPeers.start!/1)
    on_exit(fn -> Enum.each(peers, &safe_stop/1) end)
    for {peer, _} <- peers, do: TestPeers.call(peer, RecordingConnect, :reset, [])

    opts = [
      name: :lan,
      port: port,
      heartbeat_interval: interval,
      connect: {RecordingConnect, :connect, [:connect]}
    ]

    {peers, opts}
  end

  test "without a secret, of a pair only one side connects: a running node towards a newcomer",
       %{port: port} do
    for round <- 1..3 do
      {[{a, _}, {b, _}] = peers, opts} =
        recording_pair([:"new_a#{round}", :"run_b#{round}"], port)

      # b has ended its joining burst (within one 200 ms interval) when a starts.
      {:ok, _} = TestPeers.start_topology(b, opts)
      Process.sleep(400)
      {:ok, _} = TestPeers.start_topology(a, opts)
      assert who_connected(peers) == {false, true}
    end
  end

  test "with a secret, of a pair only one side connects: a newcomer towards a running node",
       %{port: port} do
    # With a secret the running node's answer reaches the newcomer by unicast at once,
    # and the newcomer connects as it comes (docs/PROTOCOL.md, "Connecting").
    for round <- 1..3 do
      {[{a, _}, {b, _}] = peers, opts} =
        recording_pair([:"snew_a#{round}", :"srun_b#{round}"], port)

      opts = Keyword.put(opts, :secret, "pair-secret-#{round}")
      {:ok, _} = TestPeers.start_topology(b, opts)
      Process.sleep(400)
      {:ok, _} = TestPeers.start_topology(a, opts)
      assert who_connected(peers) == {true, false}
    end
  end

  test "of a pair only one side connects: among newcomers, the one the pair's coin picks",
       %{port: port} do
    # The coin (docs/PROTOCOL.md, "Connecting") falls to tie_a in rounds 1 to 3 and to
    # tie_b in round 4, whose name sorts last.
    for round <- 1..4 do
      # Both new (NEWCOMER: within one interval, 1.5 s, of their start).
      {[{a, a_node}, {b, b_node}] = peers, opts} =
        recording_pair([:"tie_a#{round}", :"tie_b#{round}"], port, 1_500)

      a_leads = NativeGossip.BenchNetwork.first_leads?(a_node, b_node)
      assert a_leads == round < 4
      {:ok, _} = TestPeers.start_topology(b, opts)
      {:ok, _} = TestPeers.start_topology(a, opts)
      assert who_connected(peers) == {a_leads, not a_leads}
    end
  end

  test "when the side that should connect does not, the other side does", %{port: port} do
    # a (fall_b) leads the pair (the pair's coin), and its connect function refuses.
    {[{a, a_node}, {b, b_node}] = peers, opts} = recording_pair([:fall_b, :fall_a], port)
    assert NativeGossip.BenchNetwork.first_leads?(a_node, b_node)

    {:ok, _} =
      TestPeers.start_topology(
        a,
        Keyword.put(opts, :connect, {RecordingConnect, :connect, [:refuse]})
      )

    {:ok, _} = TestPeers.start_topology(b, opts)
    assert who_connected(peers) == {true, true}
  end

  test "a node with another secret is never connected, and its packets are counted", %{port: port} do
    friends =
      start_peers([:sec_a, :sec_b],
        name: :lan,
        port: port,
        secret: "right",
        heartbeat_interval: 100
      )

    [stranger] =
      start_peers([:sec_c], name: :lan, port: port, secret: "wrong", heartbeat_interval: 100)

    [unsigned] = start_peers([:sec_d], name: :lan, port: port, heartbeat_interval: 100)
    TestPeers.wait_for_mesh(friends)

    [{a, _}, _] = friends
    {s, _} = stranger
    {u, _} = unsigned
    dropped = fn peer -> TestPeers.call(peer, NativeGossip, :stats, [:lan]).dropped end

    # The others' heartbeats do arrive (several intervals' worth) and are rejected, on
    # every side (each counts from its own start, the unsigned node's the latest).
    wait_until(fn ->
      d = dropped.(a)

      d.bad_signature >= 5 and d.missing_signature >= 5 and
        dropped.(s).bad_signature >= 5 and dropped.(u).unexpected_signature >= 5
    end)

    for {peer, _} <- friends, do: assert(length(TestPeers.nodes(peer)) == 1)
    assert TestPeers.nodes(s) == []
    assert TestPeers.nodes(u) == []
    assert TestPeers.call(a, NativeGossip, :members, [:lan]) |> length() == 1
  end

  test "a topology that stops cleanly is reported as left by its peers", %{port: port} do
    [{a, _}, {b, b_node}] = peers = start_peers([:leave_a, :leave_b], name: :lan, port: port)
    TestPeers.wait_for_mesh(peers)

    :ok =
      TestPeers.call(b, Supervisor, :terminate_child, [
        NativeGossip.Supervisor,
        {NativeGossip, :lan}
      ])

    assert [%{node: ^b_node, state: :left}] =
             wait_until(
               fn ->
                 case TestPeers.call(a, NativeGossip, :members, [:lan]) do
                   [%{state: :left}] = ms -> ms
                   _ -> nil
                 end
               end,
               1_000,
               "b to be reported as left"
             )
  end
end
