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

  # This node runs a topology with a secret, subscribed, past its own start; then a
  # newcomer starts one (`extra` added to its options). With a secret the newcomer
  # connects first (docs/PROTOCOL.md, "Connecting"), so this running node's native side
  # holds its discovery back (native_gossip_core::outbox).
  defp running_then_newcomer(name, newcomer, extra \\ []) do
    opts = [name: name, port: unique_port(), heartbeat_interval: 200, secret: "newcomer-0123"]
    {:ok, _} = NativeGossip.start_link(opts)
    :ok = NativeGossip.subscribe(name)
    Process.sleep(400)

    {peer, node} = TestPeers.start!(newcomer)
    on_exit(fn -> TestPeers.stop(peer) end)
    :ok = TestPeers.call(peer, NativeGossip.RecordingConnect, :reset, [])
    {:ok, _} = TestPeers.start_topology(peer, opts ++ extra)
    {peer, node}
  end

  # :discovered, then :connected, each once.
  defp assert_discovered_then_connected(name, node) do
    assert_receive {:native_gossip, ^name, first, ^node}, 5_000
    assert first == :discovered
    assert_receive {:native_gossip, ^name, :connected, ^node}, 5_000
    refute_receive {:native_gossip, ^name, _, ^node}, 300
  end

  test "with a secret, a newcomer is announced with its connection, once, also when it restarts" do
    {peer, node} = running_then_newcomer(:evn, :evn_new)
    assert_discovered_then_connected(:evn, node)

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
    assert_discovered_then_connected(:evn, node)
  end

  test "with a secret, a newcomer that cannot connect is announced, then connected at this node's turn" do
    refuse = [connect: {NativeGossip.RecordingConnect, :connect, [:refuse]}]
    {peer, node} = running_then_newcomer(:evr, :evr_new, refuse)

    # Its discovery was held here (it leads), its own connect was refused, and this
    # node's turn connected the pair.
    assert_discovered_then_connected(:evr, node)
    assert TestPeers.call(peer, NativeGossip.RecordingConnect, :starts, [node()]) != []
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
