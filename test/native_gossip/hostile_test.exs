defmodule NativeGossip.HostileTest do
  # Faults and hostile input in the test runner itself (one namespace). Attacks from
  # other hosts are in multihost_hostile_test.exs.
  use ExUnit.Case, async: false

  import ExUnit.CaptureLog
  import NativeGossip.TestNet
  alias NativeGossip.{HeartbeatPacket, Native, Topology}

  test "a panic on the native thread stops that topology only; its supervisor restarts it" do
    start_supervised!({NativeGossip, name: :panicky, port: unique_port()})
    pid = Topology.server!(:panicky)
    ref = Process.monitor(pid)

    log =
      capture_log(fn ->
        :ok = Native.panic_for_test(Topology.native!(:panicky), :thread)
        assert_receive {:DOWN, ^ref, :process, ^pid, {:native_fault, message}}, 2_000
        assert message =~ "panicked"
        # Restarted with a fresh native thread that works: a new server (the registry
        # drops the old one's entry a moment after it died) whose native side runs.
        wait_until(fn ->
          case Registry.lookup(NativeGossip.Registry, :panicky) do
            [{new, {native, _, _}}] when new != pid and native != nil ->
              Native.stats(native).sent > 0

            _ ->
              false
          end
        end)
      end)

    assert log =~ "native thread panicked"
    assert Topology.server!(:panicky) != pid
  end

  test "a panic inside a NIF call raises in the caller only" do
    {:ok, pid} = NativeGossip.start_link(name: :nifpanic, port: unique_port())
    native = Topology.native!(:nifpanic)

    assert_raise ErlangError, fn -> Native.panic_for_test(native, :nif) end
    assert Process.alive?(pid)
    assert Native.running(native)
  end

  test "dropped datagrams are logged once per reason per interval, with their count" do
    port = unique_port()
    {:ok, _} = NativeGossip.start_link(name: :noisy, port: port, secret: "s", log_interval: 300)
    socket = HeartbeatPacket.sender()

    log =
      capture_log([format: "$metadata$message\n", metadata: [:native_gossip]], fn ->
        for i <- 1..50, do: HeartbeatPacket.send(socket, port, "junk #{i}")

        for i <- 1..20,
            do: HeartbeatPacket.send(socket, port, HeartbeatPacket.build("x@h", sequence: i))

        wait_until(fn -> NativeGossip.stats(:noisy).received >= 70 end)
        Process.sleep(700)
      end)

    lines = for line <- String.split(log, "\n"), line =~ "dropped", do: line

    counts = fn reason ->
      for line <- lines,
          line =~ "#{reason} (",
          do: line |> String.split("dropped ") |> Enum.at(1) |> Integer.parse() |> elem(0)
    end

    # Never a line per packet: one per reason per interval (the bursts above might
    # straddle two intervals), and the counts add up.
    assert Enum.sum(counts.(:too_short)) == 50
    assert length(counts.(:too_short)) in 1..2
    assert Enum.sum(counts.(:missing_signature)) == 20
    assert length(counts.(:missing_signature)) in 1..2
    assert Enum.all?(lines, &(&1 =~ "native_gossip=noisy"))
    refute log =~ "own_packet"
  end
end
