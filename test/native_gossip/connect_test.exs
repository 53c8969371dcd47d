defmodule NativeGossip.ConnectTest do
  # Connecting never blocks the topology server: peers that hang or fail are retried
  # with backoff in separate processes while good peers get connected.
  use ExUnit.Case, async: false

  import NativeGossip.TestNet
  alias NativeGossip.{HeartbeatPacket, RecordingConnect, TestPeers}

  # A host that drops connection attempts: an address on a veth whose other end
  # answers nothing, so TCP connects to it hang until ARP gives up (seconds).
  defp black_hole! do
    cmd = fn args -> {_, 0} = System.cmd("ip", args, stderr_to_stdout: true) end
    System.cmd("ip", ["link", "del", "ngbh0"], stderr_to_stdout: true)
    cmd.(~w(link add ngbh0 type veth peer name ngbh1))
    cmd.(~w(addr add 198.51.100.254/24 dev ngbh0))
    cmd.(~w(link set ngbh0 up))
    cmd.(~w(link set ngbh1 up))
    on_exit(fn -> System.cmd("ip", ["link", "del", "ngbh0"], stderr_to_stdout: true) end)
  end

  defp beat(socket, port, name, seq),
    do: HeartbeatPacket.send(socket, port, HeartbeatPacket.build(name, sequence: seq))

  test "a peer that hangs on connect does not delay connecting a good one" do
    black_hole!()
    port = unique_port()
    RecordingConnect.reset()

    {:ok, _} =
      NativeGossip.start_link(
        name: :bh,
        port: port,
        heartbeat_interval: 100,
        connect: {RecordingConnect, :connect, [:connect]}
      )

    # A real node that runs no topology: only the runner's topology can connect it.
    {peer, good} = TestPeers.start!(:bh_good)
    on_exit(fn -> TestPeers.stop(peer) end)
    ghost = :"ghost@198.51.100.77"

    # The ghost's heartbeat first (its connect hangs for seconds), then the good one's.
    socket = HeartbeatPacket.sender()
    beat(socket, port, Atom.to_string(ghost), 1)
    wait_until(fn -> RecordingConnect.starts(ghost) != [] end)
    beat(socket, port, Atom.to_string(good), 1)

    good_done = wait_until(fn -> RecordingConnect.done_at(good) end, 10_000, "the good connect")
    assert good in Node.list()
    # The good node was connected while the ghost's attempt was still hanging.
    ghost_done = RecordingConnect.done_at(ghost)
    assert ghost_done == nil or good_done < ghost_done
  end

  test "the real world reads a handshake under way from net_kernel's table" do
    # NativeGossip.Connector.World reads net_kernel's private record of a connection (its
    # state) instead of asking net_kernel: this checks that record on the OTP at hand.
    black_hole!()
    ghost = :"ghost2@198.51.100.77"
    world = NativeGossip.Connector.World.new(%{list_nodes: {:erlang, :nodes, [:connected]}})
    refute world.pending?.(ghost)
    refute ghost in world.handshakes.()

    spawn(fn -> :net_kernel.connect_node(ghost) end)
    wait_until(fn -> world.pending?.(ghost) end, 2_000, "the handshake to be pending")
    assert ghost in world.handshakes.()
    # An unrelated up connection is no handshake.
    {peer, good} = TestPeers.start!(:world_good)
    on_exit(fn -> TestPeers.stop(peer) end)
    assert Node.connect(good)
    refute good in world.handshakes.()
  end

  # A topology whose connects are all refused, and 75 heartbeats over 1.5 s from `name`.
  defp refused_for_1500_ms(topology, name) do
    port = unique_port()
    RecordingConnect.reset()

    {:ok, _} =
      NativeGossip.start_link(
        name: topology,
        port: port,
        heartbeat_interval: 100,
        connect: {RecordingConnect, :connect, [:refuse]}
      )

    socket = HeartbeatPacket.sender()

    for seq <- 1..75 do
      beat(socket, port, name, seq)
      Process.sleep(20)
    end
  end

  test "a failing peer is retried with backoff while it keeps sending heartbeats" do
    refused_for_1500_ms(:retry, "refuser@127.0.0.1")

    attempts = RecordingConnect.starts(:"refuser@127.0.0.1")
    gaps = attempts |> Enum.chunk_every(2, 1, :discard) |> Enum.map(fn [x, y] -> y - x end)
    # Retried (more than once), but not per heartbeat, and each gap longer than the last.
    assert length(attempts) in 3..8, "attempts at #{inspect(attempts)}"
    assert gaps == Enum.sort(gaps), "gaps #{inspect(gaps)} do not grow"

    # When it stops sending, it is not retried any more.
    count = length(attempts)
    Process.sleep(1_000)
    assert length(RecordingConnect.starts(:"refuser@127.0.0.1")) == count
  end

  test "the backoff holds the native reports too: a failing peer costs few messages" do
    # Reported at every heard gap (50 ms), 75 heartbeats in 1.5 s would be about 30
    # messages into the BEAM; held by the connector's backoff, it is one per attempt.
    refused_for_1500_ms(:held, "held@127.0.0.1")

    attempts = length(RecordingConnect.starts(:"held@127.0.0.1"))
    events = NativeGossip.stats(:held).events
    assert attempts in 3..8
    assert events <= attempts + 2, "#{events} events for #{attempts} attempts"
  end

  def raise_boom(_node), do: raise("boom")

  test "a connect function that raises is a failure with a warning, not a crash" do
    port = unique_port()

    log =
      ExUnit.CaptureLog.capture_log(fn ->
        {:ok, server} =
          NativeGossip.start_link(
            name: :raiser,
            port: port,
            heartbeat_interval: 100,
            connect: {__MODULE__, :raise_boom, []}
          )

        beat(HeartbeatPacket.sender(), port, "boom@127.0.0.1", 1)

        wait_until(fn ->
          c = :sys.get_state(server).connector
          c.peers[:"boom@127.0.0.1"][:failures] == 1 and NativeGossip.Connector.in_flight(c) == 0
        end)

        assert Process.alive?(server)
      end)

    assert log =~ "could not connect to boom@127.0.0.1"
    assert log =~ "boom"
  end

  test "an unresolvable name fails fast and does not stop discovery" do
    port = unique_port()
    {:ok, server} = NativeGossip.start_link(name: :unres, port: port, heartbeat_interval: 100)
    socket = HeartbeatPacket.sender()
    beat(socket, port, "ghost@no-such-host.invalid", 1)
    beat(socket, port, "other@no-such-host.invalid", 1)

    wait_until(fn -> length(NativeGossip.members(:unres)) == 2 end)
    # Both attempts were made and have already failed (none hangs in flight).
    wait_until(
      fn ->
        c = :sys.get_state(server).connector

        NativeGossip.Connector.in_flight(c) == 0 and map_size(c.peers) == 2 and
          Enum.all?(Map.values(c.peers), &(&1.failures >= 1))
      end,
      1_000,
      "both connects to fail"
    )

    assert Enum.all?(NativeGossip.members(:unres), &(not &1.connected?))
  end
end
