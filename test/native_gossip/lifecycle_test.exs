defmodule NativeGossip.LifecycleTest do
  # Topologies in the test runner itself: start, stop, errors, resources.
  use ExUnit.Case, async: false

  import NativeGossip.TestNet

  defp threads, do: length(File.ls!("/proc/self/task"))
  defp fds, do: length(File.ls!("/proc/self/fd"))

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
    # Warm up once: the first start loads the NIF and may start lazily created VM threads.
    {:ok, pid} = NativeGossip.start_link(name: :cycle, port: port, secret: "s")
    GenServer.stop(pid)
    {threads0, fds0} = {threads(), fds()}

    for _ <- 1..100 do
      {:ok, pid} = NativeGossip.start_link(name: :cycle, port: port, secret: "s")
      assert threads() == threads0 + 1
      refute port_free?(port)
      :ok = GenServer.stop(pid)
      # stop returns after the native thread has exited and closed the socket.
      assert port_free?(port)
    end

    assert threads() == threads0
    assert fds() == fds0
  end

  test "a topology whose owner is killed stops its thread and frees the port" do
    port = unique_port()
    threads0 = threads()

    Process.flag(:trap_exit, true)
    {:ok, pid} = NativeGossip.start_link(name: :killed, port: port)

    assert threads() == threads0 + 1
    Process.exit(pid, :kill)

    wait_until(
      fn -> threads() == threads0 and port_free?(port) end,
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
  end

  test "two topologies of one node may share the port; a name is taken once" do
    port = unique_port()
    assert {:ok, a} = NativeGossip.start_link(name: :one, port: port)
    assert {:ok, _} = NativeGossip.start_link(name: :two, port: port)

    assert {:error, {:already_started, ^a}} = NativeGossip.start_link(name: :one, port: port)
  end

  test "stats, announce and members of a running topology; clear errors for unknown names" do
    {:ok, _} =
      NativeGossip.start_link(name: :solo, port: unique_port(), heartbeat_interval: 60_000)

    # Its own heartbeats come back through multicast loopback and are counted as such.
    wait_until(fn -> NativeGossip.stats(:solo).dropped.own_packet >= 1 end)
    sent = NativeGossip.stats(:solo).sent
    assert :ok = NativeGossip.announce(:solo)
    wait_until(fn -> NativeGossip.stats(:solo).sent == sent + 1 end)
    assert NativeGossip.members(:solo) == []

    stats = NativeGossip.stats(:solo)
    assert stats.received == stats.accepted + Enum.sum(Map.values(stats.dropped))
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
