defmodule NativeGossip.MultihostAttacksTest do
  # Attacks that hurt a node over time rather than in a burst (issue #14), each sent by
  # native-gossip-probe from another test host at a node with NativeGossip, with a
  # legitimate node on a third host.
  use ExUnit.Case, async: false

  import NativeGossip.TestNet
  alias NativeGossip.{EventRecorder, TestRig}

  @moduletag :multihost
  @moduletag timeout: 180_000

  @interval 500

  defp start_node(rig, i, topology, opts) do
    {peer, node} = TestRig.start_node!(rig, i, opts)
    {_t0, recorder} = :peer.call(peer, EventRecorder, :start_topology, [topology])
    %{peer: peer, node: node, recorder: recorder}
  end

  defp call(n, m, f, a), do: :peer.call(n.peer, m, f, a, 30_000)
  defp stats(n), do: call(n, NativeGossip, :stats, [:lan])
  defp members(n), do: call(n, NativeGossip, :members, [:lan])
  defp member(n, node), do: Enum.find(members(n), &(&1.node == node))
  defp events(n), do: call(n, EventRecorder, :events, [n.recorder])

  defp restart_topology(n), do: TestRig.restart_topology(n.peer, :lan)
  defp warm_up(n), do: TestRig.warm_up(n.peer, :lan, n.recorder)

  defp connected_since?(n, node, t) do
    Enum.any?(events(n), fn {e, nd, at} -> e == :connected and nd == node and at > t end)
  end

  defp pair(rig, topology, opts \\ []) do
    victim = start_node(rig, 1, topology, opts)
    legit = start_node(rig, 3, topology, opts)
    wait_until(fn -> call(victim, Node, :list, []) == [legit.node] end, 10_000, "a pair")
    {victim, legit}
  end

  test "no secret: forged goodbyes of a live peer from another host do not make it leave" do
    rig = TestRig.start_in_test!(3)

    {victim, legit} =
      pair(rig, name: :lan, heartbeat_interval: @interval, log_interval: 3_600_000)

    name = Atom.to_string(legit.node)
    # The victim's incarnation and sequence numbers up to 2^64 - 1, from host 2.
    sent =
      TestRig.probe!(
        rig,
        2,
        ~w(send --kind leave --capture-name #{name} --rate 1000 --duration 1)
      )

    assert sent > 500
    # Before: :left, and every genuine heartbeat after it dropped as a replay until the
    # peer was forgotten (a minute). Now: a goodbye counts only from the address the
    # peer's heartbeats come from.
    Process.sleep(2 * @interval)
    assert member(victim, legit.node).state == :alive
    # The peer is connected, so its address is pinned (#23): nothing in its name from
    # elsewhere counts, goodbyes included (foreign_goodbye is for a peer not pinned).
    dropped = stats(victim).dropped
    assert dropped.unproven_source + dropped.foreign_goodbye >= 0.99 * sent
    assert for({:left, n, _} <- events(victim), n == legit.node, do: n) == []
  end

  test "no secret: a flood of incarnations of one name costs a bounded number of events and the server answers" do
    rig = TestRig.start_in_test!(3)

    {victim, _legit} =
      pair(rig, name: :lan, heartbeat_interval: @interval, log_interval: 3_600_000)

    server = call(victim, NativeGossip.Topology, :server!, [:lan])
    events_before = stats(victim).events

    flood =
      Task.async(fn ->
        TestRig.probe!(
          rig,
          2,
          ~w(send --kind incarnations --name ghost@host9 --rate 5000 --duration 3)
        )
      end)

    # While it lasts: the server's mailbox stays small, and subscribe answers at once.
    samples =
      for _ <- 1..20 do
        Process.sleep(100)
        :ok = call(victim, NativeGossip, :subscribe, [:lan])
        {:message_queue_len, q} = call(victim, Process, :info, [server, :message_queue_len])
        q
      end

    sent = Task.await(flood, 30_000)
    assert sent > 10_000
    Process.sleep(2 * @interval)
    # Before: one event (a message, a log line, a telemetry event) per packet.
    events = stats(victim).events - events_before
    assert events <= 3 + 3_000 / @interval + 2, "#{events} events from #{sent} packets"
    assert Enum.max(samples) < 50, "mailbox samples #{inspect(samples)}"
  end

  test "no secret: a made-up name of a peer's short host does not move that host's address" do
    rig = TestRig.start_in_test!(3)
    {victim, legit} = pair(rig, [name: :lan, heartbeat_interval: @interval], names: :short)
    host3 = Enum.at(rig.hosts, 2).address
    resolves = fn -> call(victim, :inet_hosts, :gethostbyname, [~c"host3"]) end
    assert {:ok, {:hostent, _, _, :inet, 4, [^host3]}} = resolves.()
    # x@host3 from host 2, for several provisional windows.
    TestRig.probe!(rig, 2, ~w(send --kind claim --name x@host3 --rate 100 --duration 5))
    # Before: host3 pointed at host 2 from the first forged heartbeat on.
    assert {:ok, {:hostent, _, _, :inet, 4, [^host3]}} = resolves.()
    assert call(victim, Node, :list, []) == [legit.node]
    # The forged name goes when forgotten (here: never heard again; the claim was never
    # the host's, so nothing of it is left in the host table either way).
  end

  test "with a secret: a heartbeat captured and replayed after its node was forgotten is stale" do
    rig = TestRig.start_in_test!(3)

    topology = [
      name: :lan,
      secret: "replay-test-secret",
      heartbeat_interval: @interval,
      lost_after: 1_500,
      forget_after: 3_000,
      log_interval: 3_600_000
    ]

    {victim, legit} = pair(rig, topology)
    name = Atom.to_string(legit.node)

    replay =
      Task.async(fn ->
        TestRig.probe!(
          rig,
          2,
          ~w(send --kind replay --capture-name #{name} --secret replay-test-secret) ++
            ~w(--replay-after 6 --rate 200 --duration 1)
        )
      end)

    Process.sleep(1_000)
    TestRig.kill(legit.peer)
    wait_until(fn -> members(victim) == [] end, 6_000, "the killed node to be forgotten")
    t = System.system_time(:microsecond)
    sent = Task.await(replay, 30_000)
    assert sent > 100
    Process.sleep(200)
    # Before: the capture was accepted as a new peer, and the victim tried to connect.
    assert members(victim) == []
    assert stats(victim).dropped.stale >= sent * 0.99

    refute Enum.any?(events(victim), fn {e, n, at} ->
             e == :discovered and n == legit.node and at > t
           end)
  end

  test "no secret: a slow drip of names from many sources makes at most max_names atoms; a known node still joins" do
    rig = TestRig.start_in_test!(3)
    topology = [name: :lan, heartbeat_interval: @interval, max_peers: 50, log_interval: 3_600_000]
    {victim, legit} = pair(rig, topology)
    base = TestRig.add_addresses(rig, 2, 100, 64)
    # A first restart of the legitimate node, and the checks, before counting atoms.
    t = System.system_time(:microsecond)
    restart_topology(legit)
    wait_until(fn -> connected_since?(victim, legit.node, t) end, 3_000, "the restart")
    warm_up(victim)
    atoms = call(victim, :erlang, :system_info, [:atom_count])

    drip =
      Task.async(fn ->
        TestRig.probe!(
          rig,
          2,
          ~w(send --kind names --sources 64 --source-base #{base} --rate 100 --duration 8)
        )
      end)

    # The table fills with names that never connect; the name budget (2 x 50) runs out.
    wait_until(fn -> stats(victim).dropped.name_cap > 0 end, 10_000, "the name cap")
    at_cap = call(victim, :erlang, :system_info, [:atom_count])
    assert length(members(victim)) == 50
    t = System.system_time(:microsecond)
    restart_topology(legit)
    # The legitimate node (its name an atom already) takes a never-connected name's place.
    wait_until(fn -> connected_since?(victim, legit.node, t) end, 3_000, "the legitimate node")
    sent = Task.await(drip, 30_000)
    s = stats(victim)
    assert s.names_made <= 100
    # One atom per name admitted, at most :max_names (2 x :max_peers), however long the
    # drip lasts (a few more may come from code loaded for the first time meanwhile).
    atoms_now = call(victim, :erlang, :system_info, [:atom_count])
    assert atoms_now - atoms <= s.names_made + 10
    assert atoms_now - at_cap <= 5, "#{atoms_now - at_cap} atoms made after the cap"
    assert s.dropped.name_cap + s.dropped.rate_limited >= sent - 100 - 64 * 10
  end
end
