defmodule NativeGossip.TelemetryTest do
  # Telemetry events, received through the stand-in :telemetry module of the test build
  # (test/support/telemetry_stub.ex), from a real topology and real datagrams.
  use ExUnit.Case, async: false

  import NativeGossip.TestNet
  alias NativeGossip.{HeartbeatPacket, TestPeers}

  setup do
    Process.register(self(), :native_gossip_telemetry_test)
    :ok
  end

  test "peer events, once per change" do
    port = unique_port()
    {:ok, _} = NativeGossip.start_link(name: :tel, port: port, heartbeat_interval: 100)
    {peer, node} = TestPeers.start!(:tel_peer)
    on_exit(fn -> TestPeers.stop(peer) end)
    {:ok, _} = TestPeers.start_topology(peer, name: :tel, port: port, heartbeat_interval: 100)

    for event <- [:discovered, :connected] do
      assert_receive {:telemetry, [:native_gossip, :peer, ^event], %{system_time: t},
                      %{topology: :tel, node: ^node}},
                     5_000

      assert is_integer(t)
    end

    :ok =
      TestPeers.call(peer, Supervisor, :terminate_child, [
        NativeGossip.Supervisor,
        {NativeGossip, :tel}
      ])

    assert_receive {:telemetry, [:native_gossip, :peer, :left], _, %{node: ^node}}, 2_000
    refute_receive {:telemetry, [:native_gossip, :peer, _], _, %{node: ^node}}, 300
  end

  test "dropped datagrams: one event per interval with counts by reason" do
    port = unique_port()
    {:ok, _} = NativeGossip.start_link(name: :teld, port: port, log_interval: 300)
    socket = HeartbeatPacket.sender()

    # 40 datagrams of two kinds within one interval.
    for _ <- 1..30, do: HeartbeatPacket.send(socket, port, String.duplicate("junk", 12))
    for _ <- 1..10, do: HeartbeatPacket.send(socket, port, "x")

    assert_receive {:telemetry, [:native_gossip, :packets, :dropped], m,
                    %{topology: :teld, interval: 300}},
                   2_000

    # Whatever the interval boundary split, the first event counts some of them, by
    # reason, and its total adds up; the rest come in at most one more event.
    assert m.total == Enum.sum(Map.values(Map.delete(m, :total)))
    assert Map.keys(m) -- [:total, :bad_magic, :too_short] == []

    rest =
      receive do
        {:telemetry, [:native_gossip, :packets, :dropped], m2, _} -> m2
      after
        700 -> %{total: 0}
      end

    assert m.total + rest.total == 40
    assert Map.get(m, :bad_magic, 0) + Map.get(rest, :bad_magic, 0) == 30
    refute_receive {:telemetry, [:native_gossip, :packets, :dropped], _, _}, 700
  end
end
