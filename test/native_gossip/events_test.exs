defmodule NativeGossip.EventsTest do
  # NativeGossip.subscribe/1: events as a real peer comes, connects, leaves and dies.
  use ExUnit.Case, async: false

  import NativeGossip.TestNet
  alias NativeGossip.TestPeers

  test "discovered, connected, left, then disconnected when the node goes away" do
    port = unique_port()
    {:ok, _} = NativeGossip.start_link(name: :ev, port: port, heartbeat_interval: 100)
    :ok = NativeGossip.subscribe(:ev)

    {peer, node} = TestPeers.start!(:ev_peer)
    on_exit(fn -> TestPeers.stop(peer) end)
    {:ok, _} = TestPeers.start_topology(peer, name: :ev, port: port, heartbeat_interval: 100)

    assert_receive {:native_gossip, :ev, :discovered, ^node}, 5_000
    assert_receive {:native_gossip, :ev, :connected, ^node}, 5_000

    # A later subscriber is told what is already known.
    test_pid = self()

    late =
      spawn_link(fn ->
        :ok = NativeGossip.subscribe(:ev)
        send(test_pid, {:late, Process.info(self(), :messages)})
        Process.sleep(:infinity)
      end)

    assert_receive {:late, {:messages, replayed}}, 1_000
    assert {:native_gossip, :ev, :discovered, node} in replayed
    assert {:native_gossip, :ev, :connected, node} in replayed
    Process.unlink(late)
    Process.exit(late, :kill)

    :ok =
      TestPeers.call(peer, Supervisor, :terminate_child, [
        NativeGossip.Supervisor,
        {NativeGossip, :ev}
      ])

    assert_receive {:native_gossip, :ev, :left, ^node}, 1_000

    # A subscriber that comes after the goodbye is not told the node was discovered:
    # it left (it is still connected, and so not :disconnected yet).
    assert [%{node: ^node, state: :left}] = NativeGossip.members(:ev)

    spawn_link(fn ->
      :ok = NativeGossip.subscribe(:ev)
      send(test_pid, {:after_left, Process.info(self(), :messages)})
    end)

    assert_receive {:after_left, {:messages, []}}, 1_000

    TestPeers.stop(peer)
    assert_receive {:native_gossip, :ev, :disconnected, ^node}, 5_000
    # Once per change: no repeats.
    refute_receive {:native_gossip, :ev, _, ^node}, 300
  end

  test "a peer whose topology restarts while still connected is reported again and kept connected" do
    port = unique_port()
    {:ok, _} = NativeGossip.start_link(name: :re, port: port, heartbeat_interval: 100)
    {peer, node} = TestPeers.start!(:re_peer)
    on_exit(fn -> TestPeers.stop(peer) end)
    {:ok, _} = TestPeers.start_topology(peer, name: :re, port: port, heartbeat_interval: 100)
    wait_until(fn -> match?([%{connected?: true}], NativeGossip.members(:re)) end)
    [%{incarnation: first}] = NativeGossip.members(:re)
    :ok = NativeGossip.subscribe(:re)
    assert_receive {:native_gossip, :re, :connected, ^node}

    # Restart only the topology: the distribution connection stays up.
    id = {NativeGossip, :re}
    :ok = TestPeers.call(peer, Supervisor, :terminate_child, [NativeGossip.Supervisor, id])
    assert_receive {:native_gossip, :re, :left, ^node}, 1_000
    {:ok, _} = TestPeers.call(peer, Supervisor, :restart_child, [NativeGossip.Supervisor, id])

    assert_receive {:native_gossip, :re, :discovered, ^node}, 1_000
    assert_receive {:native_gossip, :re, :connected, ^node}, 1_000
    assert node in Node.list()

    # The native table agrees: the new incarnation is marked connected.
    assert [%{incarnation: second, connected?: true, state: :alive}] =
             wait_until(fn ->
               case NativeGossip.members(:re) do
                 [%{connected?: true, incarnation: i}] = ms when i != first -> ms
                 _ -> nil
               end
             end)

    assert second > first
  end

  test "with a secret, a newcomer is announced with its connection, once, also when it restarts" do
    # With a secret the newcomer connects first (docs/PROTOCOL.md, "Connecting"): this
    # running node's native side holds its discovery back until the connection comes
    # (native_gossip_core::outbox), and must still announce :discovered before
    # :connected, each once, also for a new incarnation of a peer it knew.
    port = unique_port()
    opts = [name: :evn, port: port, heartbeat_interval: 200, secret: "newcomer-secret-0123"]
    {:ok, _} = NativeGossip.start_link(opts)
    :ok = NativeGossip.subscribe(:evn)
    # Past this node's own start: the peer below is a newcomer to a running node.
    Process.sleep(400)

    {peer, node} = TestPeers.start!(:evn_new)
    on_exit(fn -> TestPeers.stop(peer) end)
    {:ok, _} = TestPeers.start_topology(peer, opts)
    assert_receive {:native_gossip, :evn, first, ^node}, 5_000
    assert first == :discovered
    assert_receive {:native_gossip, :evn, :connected, ^node}, 5_000
    refute_receive {:native_gossip, :evn, _, ^node}, 300

    # Stopped and disconnected: this node keeps knowing it (left, disconnected) ...
    id = {NativeGossip, :evn}
    :ok = TestPeers.call(peer, Supervisor, :terminate_child, [NativeGossip.Supervisor, id])
    assert_receive {:native_gossip, :evn, :left, ^node}, 1_000
    Process.sleep(300)
    true = :erlang.disconnect_node(node)
    assert_receive {:native_gossip, :evn, :disconnected, ^node}, 1_000

    # ... and its new incarnation, which connects first again, is discovered, then
    # connected: not connected, discovered and connected again.
    {:ok, _} = TestPeers.call(peer, Supervisor, :restart_child, [NativeGossip.Supervisor, id])
    assert_receive {:native_gossip, :evn, again, ^node}, 5_000
    assert again == :discovered
    assert_receive {:native_gossip, :evn, :connected, ^node}, 5_000
    refute_receive {:native_gossip, :evn, _, ^node}, 300
  end

  test "with a secret, a newcomer that cannot connect is announced, then connected at this node's turn" do
    port = unique_port()
    opts = [name: :evr, port: port, heartbeat_interval: 200, secret: "newcomer-secret-0123"]
    {:ok, _} = NativeGossip.start_link(opts)
    :ok = NativeGossip.subscribe(:evr)
    Process.sleep(400)

    {peer, node} = TestPeers.start!(:evr_new)
    on_exit(fn -> TestPeers.stop(peer) end)
    :ok = TestPeers.call(peer, NativeGossip.RecordingConnect, :reset, [])
    refusing = Keyword.put(opts, :connect, {NativeGossip.RecordingConnect, :connect, [:refuse]})
    {:ok, _} = TestPeers.start_topology(peer, refusing)

    # Its discovery waited here (it leads), its own connect was refused, and this
    # node's turn connected the pair.
    assert_receive {:native_gossip, :evr, first, ^node}, 5_000
    assert first == :discovered
    assert_receive {:native_gossip, :evr, :connected, ^node}, 5_000
    assert TestPeers.call(peer, NativeGossip.RecordingConnect, :starts, [node()]) != []
    refute_receive {:native_gossip, :evr, _, ^node}, 300
  end

  test "a peer whose connection drops is reconnected by its next heartbeat" do
    port = unique_port()
    {:ok, _} = NativeGossip.start_link(name: :recon, port: port, heartbeat_interval: 100)
    :ok = NativeGossip.subscribe(:recon)
    {peer, node} = TestPeers.start!(:recon_peer)
    on_exit(fn -> TestPeers.stop(peer) end)

    # The peer never connects by itself: only the runner's topology reconnects it.
    {:ok, _} =
      TestPeers.start_topology(peer,
        name: :recon,
        port: port,
        heartbeat_interval: 100,
        connect: {NativeGossip.RecordingConnect, :connect, [:refuse]}
      )

    assert_receive {:native_gossip, :recon, :connected, ^node}, 5_000
    # Let global's handshake settle, or its messages reconnect the nodes by themselves.
    Process.sleep(300)
    true = :erlang.disconnect_node(node)
    assert_receive {:native_gossip, :recon, :disconnected, ^node}, 1_000
    assert_receive {:native_gossip, :recon, :connected, ^node}, 5_000
    assert node in Node.list()
  end

  test "unsubscribe stops the events" do
    port = unique_port()
    {:ok, _} = NativeGossip.start_link(name: :unsub, port: port, heartbeat_interval: 50)
    :ok = NativeGossip.subscribe(:unsub)
    :ok = NativeGossip.unsubscribe(:unsub)

    {peer, node} = TestPeers.start!(:unsub_peer)
    on_exit(fn -> TestPeers.stop(peer) end)
    {:ok, _} = TestPeers.start_topology(peer, name: :unsub, port: port)

    # The peer was discovered and connected (events that would have been sent) ...
    wait_until(fn -> match?([%{node: ^node, connected?: true}], NativeGossip.members(:unsub)) end)
    # ... and none reached us.
    refute_received {:native_gossip, :unsub, _, _}
  end
end
