defmodule NativeGossip.LifecycleTest do
  # Topologies in the test runner itself: start, stop, errors, resources.
  use ExUnit.Case, async: false

  import NativeGossip.TestNet

  # Native threads of NativeGossip, by the name the driver gives them.
  defp gossip_threads do
    for task <- File.ls!("/proc/self/task"),
        File.read("/proc/self/task/#{task}/comm") == {:ok, "native_gossip\n"},
        reduce: 0,
        do: (n -> n + 1)
  end

  defp fds, do: length(File.ls!("/proc/self/fd"))

  # Topologies of earlier tests stop when their test process exits, asynchronously.
  defp quiet!,
    do: wait_until(fn -> gossip_threads() == 0 end, 5_000, "earlier topologies to stop")

  # Binding the port without SO_REUSEADDR succeeds only if no socket holds it.
  defp port_free?(port) do
    case :gen_udp.open(port, reuseaddr: false) do
      {:ok, s} ->
        :gen_udp.close(s)
        true

      {:error, :eaddrinuse} ->
        false
    end
  end

  test "starting and stopping a topology 100 times leaves no thread, fd or socket behind" do
    port = unique_port()
    quiet!()
    # Warm up once: the first start loads the NIF and may open VM-wide descriptors.
    {:ok, pid} = NativeGossip.start_link(name: :cycle, port: port, secret: "s")
    :ok = GenServer.stop(pid)
    fds0 = fds()

    for _ <- 1..100 do
      {:ok, pid} = NativeGossip.start_link(name: :cycle, port: port, secret: "s")
      # The thread names itself once it runs, a moment after start_link returns.
      wait_until(fn -> gossip_threads() == 1 end)
      refute port_free?(port)
      :ok = GenServer.stop(pid)
      # stop returns after the native thread has closed the socket and exited (the
      # thread's /proc entry may take a moment longer to go under some kernels).
      assert port_free?(port)
      wait_until(fn -> gossip_threads() == 0 end, 1_000, "the native thread to go")
    end

    # A leak would be 3 descriptors per cycle (socket and wake-up pair): 300 here.
    # Other descriptors of the VM may only have gone away meanwhile.
    assert fds() <= fds0
  end

  test "a topology started twice: the second start says where the first came from" do
    port = unique_port()
    opts = [port: port, secret: "a-long-enough-secret"]
    # The first from config :native_gossip, :topologies (the application's child spec).
    [spec] = NativeGossip.Application.config_children(twice: opts)
    {:ok, first} = Supervisor.start_child(NativeGossip.Supervisor, spec)

    on_exit(fn ->
      Supervisor.terminate_child(NativeGossip.Supervisor, spec.id)
      Supervisor.delete_child(NativeGossip.Supervisor, spec.id)
    end)

    # The second from a user's supervision tree.
    Process.flag(:trap_exit, true)

    log =
      ExUnit.CaptureLog.capture_log(fn ->
        assert {:error, {:shutdown, {:failed_to_start_child, _, {:already_started, ^first}}}} =
                 Supervisor.start_link([{NativeGossip, [name: :twice] ++ opts}],
                   strategy: :one_for_one,
                   name: MyApp.Supervisor
                 )
      end)

    assert log =~
             "NativeGossip topology :twice is already running (#{inspect(first)}, " <>
               "started from config :native_gossip, :topologies); this start, from " <>
               "MyApp.Supervisor, is refused"

    # And one of libcluster's.
    state = %Cluster.Strategy.State{topology: :twice, config: opts}

    log =
      ExUnit.CaptureLog.capture_log(fn ->
        assert {:error, {:already_started, ^first}} = NativeGossip.Strategy.start_link([state])
      end)

    assert log =~ "this start, from libcluster's topology :twice (NativeGossip.Strategy)"
  end

  test "a secret shorter than 16 bytes is warned about at start" do
    # The start warnings come half a second after the start: waited for.
    start = fn secret ->
      ExUnit.CaptureLog.capture_log(fn ->
        {:ok, pid} = NativeGossip.start_link(name: :short, port: unique_port(), secret: secret)
        wait_until(fn -> :sys.get_state(pid).warned end, 10_000)
        :ok = GenServer.stop(pid)
      end)
    end

    assert start.("fifteen bytes!!") =~ "shorter than 16 bytes"
    refute start.("sixteen bytes!!!") =~ "shorter than 16 bytes"
    assert start.(["a-long-enough-secret", "old"]) =~ "shorter than 16 bytes"
  end

  test "a topology whose owner is killed stops its thread and frees the port" do
    port = unique_port()
    quiet!()
    Process.flag(:trap_exit, true)
    {:ok, pid} = NativeGossip.start_link(name: :killed, port: port)
    wait_until(fn -> gossip_threads() == 1 end)
    Process.exit(pid, :kill)

    wait_until(
      fn -> gossip_threads() == 0 and port_free?(port) end,
      5_000,
      "the native thread to exit"
    )
  end

  test "a port held by a program without SO_REUSEADDR gives :port_in_use" do
    port = unique_port()
    {:ok, holder} = :gen_udp.open(port, reuseaddr: false)
    Process.flag(:trap_exit, true)

    assert {:error, {:port_in_use, message}} = NativeGossip.start_link(name: :busy, port: port)
    assert message =~ "UDP port #{port}"
    assert message =~ "SO_REUSEADDR"
    :gen_udp.close(holder)
    assert {:ok, _pid} = NativeGossip.start_link(name: :busy, port: port)
  end

  test "an interface address this host does not have gives :interface_unavailable" do
    Process.flag(:trap_exit, true)

    assert {:error, {:interface_unavailable, message}} =
             NativeGossip.start_link(name: :noif, port: unique_port(), multicast_if: "192.0.2.77")

    assert message =~ "192.0.2.77"
    # And what the host has, as README says (#24: it did not, for an address).
    assert message =~ "(it has: lo 127.0.0.1"
  end

  test "two topologies of one node may share the port; a name is taken once" do
    port = unique_port()
    assert {:ok, a} = NativeGossip.start_link(name: :one, port: port)
    assert {:ok, _} = NativeGossip.start_link(name: :two, port: port)

    # Both receive what arrives on the shared port (not only the last one bound).
    socket = NativeGossip.HeartbeatPacket.sender()

    NativeGossip.HeartbeatPacket.send(
      socket,
      port,
      NativeGossip.HeartbeatPacket.build("x@10.0.0.9")
    )

    for t <- [:one, :two] do
      wait_until(fn -> match?([%{node: :"x@10.0.0.9"}], NativeGossip.members(t)) end)
    end

    assert {:error, {:already_started, ^a}} = NativeGossip.start_link(name: :one, port: port)
  end

  test "await_members: a caller that goes away while waiting leaves no waiter behind" do
    {:ok, pid} = NativeGossip.start_link(name: :waiting, port: unique_port())
    caller = spawn(fn -> NativeGossip.await_members(:waiting, 3, :infinity) end)
    wait_until(fn -> length(:sys.get_state(pid).waiters) == 1 end)
    Process.exit(caller, :kill)
    wait_until(fn -> :sys.get_state(pid).waiters == [] end)
    # A finite wait still answers.
    assert NativeGossip.await_members(:waiting, 1, 50) == {:error, {:timeout, 0}}
    assert NativeGossip.await_members(:waiting, 0, 50) == :ok
    assert :sys.get_state(pid).waiters == []
  end

  test "stats, announce and members of a running topology; clear errors for unknown names" do
    {:ok, _} =
      NativeGossip.start_link(name: :solo, port: unique_port(), heartbeat_interval: 60_000)

    # Its own heartbeats come back through multicast loopback and are counted as such,
    # apart from the drops (issue #24: they grew `dropped` on every healthy node).
    wait_until(fn -> NativeGossip.stats(:solo).looped_back >= 1 end)
    refute Map.has_key?(NativeGossip.stats(:solo).dropped, :own_packet)
    # The joining burst first: its eight heartbeats (0 to 1280 ms, docs/PROTOCOL.md
    # "Timing"), then none for a minute, so that the one heartbeat counted next is the
    # announce's (one of the burst's in between would stand in for it, or count twice).
    wait_until(fn -> NativeGossip.stats(:solo).sent == 8 end)
    assert :ok = NativeGossip.announce(:solo)
    wait_until(fn -> NativeGossip.stats(:solo).sent == 9 end)
    Process.sleep(50)
    assert NativeGossip.stats(:solo).sent == 9
    assert NativeGossip.members(:solo) == []

    stats = NativeGossip.stats(:solo)

    assert stats.received ==
             stats.accepted + stats.looped_back + Enum.sum(Map.values(stats.dropped))

    assert is_integer(stats.incarnation)

    for fun <- [:members, :stats, :announce] do
      assert_raise ArgumentError, ~r/no NativeGossip topology named :nope/, fn ->
        apply(NativeGossip, fun, [:nope])
      end
    end
  end

  test "child_spec/1 lets several topologies share a supervisor" do
    children = [
      {NativeGossip, name: :sup_a, port: unique_port()},
      {NativeGossip, name: :sup_b, port: unique_port()}
    ]

    {:ok, sup} = Supervisor.start_link(children, strategy: :one_for_one)

    assert [{{NativeGossip, :sup_b}, _, :worker, _}, {{NativeGossip, :sup_a}, _, :worker, _}] =
             Supervisor.which_children(sup)
  end
end
