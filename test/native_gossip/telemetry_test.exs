defmodule NativeGossip.TelemetryTest do
  # Telemetry events, received through the telemetry library (a handler attached with
  # :telemetry.attach_many/4), from a real topology and real datagrams. Without the
  # library nothing is sent and nothing fails: package_test.exs runs an application
  # that does not have it.
  use ExUnit.Case, async: false

  import NativeGossip.TestNet
  alias NativeGossip.{HeartbeatPacket, TestPeers}

  setup do
    id = NativeGossip.TestTelemetry.forward(self())
    on_exit(fn -> NativeGossip.TestTelemetry.detach(id) end)
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

  # Issue #24: with broadcast and no route to the broadcast address, stats showed
  # send_errors growing and nothing was logged.
  test "heartbeats that cannot be sent: one warning per interval with the OS error, and an event" do
    # This namespace has loopback only: no route to 255.255.255.255.
    log =
      ExUnit.CaptureLog.capture_log(fn ->
        {:ok, _} =
          NativeGossip.start_link(
            name: :unsent,
            port: unique_port(),
            broadcast: true,
            heartbeat_interval: 100,
            log_interval: 300
          )

        assert_receive {:telemetry, [:native_gossip, :packets, :send_failed], %{count: n},
                        %{topology: :unsent, interval: 300, error: error}},
                       3_000

        assert n >= 1
        assert error =~ "to 255.255.255.255:"
        assert error =~ "unreachable"
        Process.sleep(50)
      end)

    stats = NativeGossip.stats(:unsent)
    assert stats.sent == 0 and stats.send_errors >= 1
    assert stats.last_send_error =~ "unreachable"
    assert log =~ ~r/topology :unsent could not send \d+ heartbeat\(s\) in the last 300 ms/
    assert log =~ "Network is unreachable"
    assert log =~ "ip route get"
  end

  # Issue #24: a node switched to NativeGossip next to running libcluster nodes
  # (without compat) heard them as "another program".
  test "libcluster heartbeats without compat: named, with what to do, said once" do
    port = unique_port()

    log =
      ExUnit.CaptureLog.capture_log(fn ->
        {:ok, _} = NativeGossip.start_link(name: :switched, port: port, log_interval: 200)
        socket = HeartbeatPacket.sender()
        packet = NativeGossip.LegacyGossip.packet(:old@host, nil)

        for _ <- 1..3 do
          HeartbeatPacket.send(socket, port, packet)

          assert_receive {:telemetry, [:native_gossip, :packets, :dropped],
                          %{libcluster_format: 1}, %{topology: :switched}},
                         2_000
        end
      end)

    assert [_] = Regex.scan(~r/libcluster_format/, log)
    assert log =~ "compat: :libcluster"
    assert log =~ "MIGRATING.md"
    refute log =~ "another program"
  end
end
