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
    on_exit(fn -> catch_exit(TestPeers.stop(peer)) end)
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

    TestPeers.stop(peer)
    assert_receive {:native_gossip, :ev, :disconnected, ^node}, 5_000
    # Once per change: no repeats.
    refute_receive {:native_gossip, :ev, _, ^node}, 300
  end

  test "unsubscribe stops the events" do
    port = unique_port()
    {:ok, _} = NativeGossip.start_link(name: :unsub, port: port, heartbeat_interval: 50)
    :ok = NativeGossip.subscribe(:unsub)
    :ok = NativeGossip.unsubscribe(:unsub)

    {peer, node} = TestPeers.start!(:unsub_peer)
    on_exit(fn -> catch_exit(TestPeers.stop(peer)) end)
    {:ok, _} = TestPeers.start_topology(peer, name: :unsub, port: port)

    # The peer was discovered and connected (events that would have been sent) ...
    wait_until(fn -> match?([%{node: ^node, connected?: true}], NativeGossip.members(:unsub)) end)
    # ... and none reached us.
    refute_received {:native_gossip, :unsub, _, _}
  end
end
