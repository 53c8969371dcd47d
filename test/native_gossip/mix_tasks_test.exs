defmodule NativeGossip.MixTasksTest do
  # mix native_gossip.listen and mix native_gossip.doctor, run in this VM against real
  # datagrams on the private namespace's loopback.
  use ExUnit.Case, async: false

  import NativeGossip.TestNet
  alias NativeGossip.{HeartbeatPacket, TestPeers}

  setup do
    Mix.shell(Mix.Shell.Process)
    on_exit(fn -> Mix.shell(Mix.Shell.IO) end)
    :ok
  end

  defp lines do
    receive do
      {:mix_shell, :info, [line]} -> [line | lines()]
    after
      0 -> []
    end
  end

  test "listen prints each datagram's sender and verdict" do
    port = unique_port()

    # Mix.Shell.Process sends the task's output to the test process (its caller).
    listener =
      Task.async(fn ->
        Mix.Tasks.NativeGossip.Listen.run(
          ~w(--port #{port} --secret right --count 4 --seconds 10)
        )
      end)

    # It prints its header once its socket is open and in the group: then send one of
    # each kind.
    assert_receive {:mix_shell, :info, ["listening on " <> _ = header]}, 5_000
    socket = HeartbeatPacket.sender()
    send_one = &HeartbeatPacket.send(socket, port, &1)
    send_one.(HeartbeatPacket.build("good@10.0.0.1", secret: "right", joining: true, sequence: 7))
    send_one.(HeartbeatPacket.build("forged@10.0.0.1", secret: "wrong"))
    send_one.(HeartbeatPacket.build("plain@10.0.0.1"))
    send_one.(String.duplicate("junk", 12))
    Task.await(listener, 15_000)

    out = lines()
    assert header =~ "listening on 239.255.45.92:#{port} with 1 secret(s)"
    assert [good, forged, plain, junk] = out
    assert good =~ ~r/^\d\d:\d\d:\d\d\.\d{3} 127\.0\.0\.1:\d+ accepted good@10\.0\.0\.1 /
    assert good =~ "sequence=7 [joining,signed]"
    assert forged =~ "dropped bad_signature"
    assert plain =~ "dropped missing_signature"
    assert junk =~ "dropped bad_magic"
  end

  test "listen shows labels and tags, and with --cluster what another label's nodes would drop" do
    port = unique_port()

    listener =
      Task.async(fn ->
        Mix.Tasks.NativeGossip.Listen.run(
          ~w(--port #{port} --secret right --cluster blue --count 3 --seconds 10)
        )
      end)

    assert_receive {:mix_shell, :info, ["listening on " <> _]}, 5_000
    socket = HeartbeatPacket.sender()
    send_one = &HeartbeatPacket.send(socket, port, &1)
    tags = [{"role", "web"}, {"zone", "eu-1"}]
    send_one.(HeartbeatPacket.build("b@10.0.0.1", secret: "right", cluster: "blue", tags: tags))
    send_one.(HeartbeatPacket.build("g@10.0.0.2", secret: "right", cluster: "green"))
    send_one.(HeartbeatPacket.build("u@10.0.0.3", secret: "right"))
    Task.await(listener, 15_000)

    assert [blue, green, unlabelled] = lines()
    assert blue =~ ~s|accepted b@10.0.0.1 |
    assert blue =~ ~s|cluster="blue" tags=%{"role" => "web", "zone" => "eu-1"}|
    assert green =~ ~s|dropped other_cluster (g@10.0.0.2, label "green")|
    assert unlabelled =~ ~s|dropped other_cluster (u@10.0.0.3, label "")|
  end

  defp doctor(args) do
    result =
      try do
        Mix.Tasks.NativeGossip.Doctor.run(args)
      rescue
        e in Mix.Error -> {:raised, e.message}
      end

    {result, Enum.join(lines(), "\n")}
  end

  test "doctor: a healthy peer, and one with another cookie" do
    port = unique_port()
    {good, good_node} = TestPeers.start!(:doc_good)
    on_exit(fn -> TestPeers.stop(good) end)
    {bad, bad_node} = TestPeers.start!(:doc_bad, [~c"-setcookie", ~c"another-cookie"])
    on_exit(fn -> TestPeers.stop(bad) end)

    # The two refuse each other's connections: keep their logs about it quiet.
    for peer <- [good, bad], do: :ok = :peer.call(peer, Logger, :configure, [[level: :critical]])

    for peer <- [good, bad],
        do:
          {:ok, _} =
            TestPeers.start_topology(peer, name: :lan, port: port, heartbeat_interval: 200)

    {result, out} = doctor(~w(--port #{port} --seconds 2))

    assert out =~ "ok      this VM is distributed as #{node()}"
    assert out =~ "ok      epmd is running"
    assert out =~ "ok      can bind UDP port #{port}"
    assert out =~ "ok      heard 2 node(s)"
    assert out =~ "heard #{good_node} from 127.0.0.1 and connected to it"
    assert out =~ "PROBLEM #{bad_node} is reachable"
    assert out =~ "cookie mismatch"
    assert {:raised, message} = result
    assert message =~ "found 1 problem(s)", out
  end

  test "doctor: another secret, a port held without SO_REUSEADDR, silence" do
    port = unique_port()
    {peer, _} = TestPeers.start!(:doc_secret)
    on_exit(fn -> TestPeers.stop(peer) end)

    {:ok, _} =
      TestPeers.start_topology(peer,
        name: :lan,
        port: port,
        secret: "theirs",
        heartbeat_interval: 200
      )

    {_, out} = doctor(~w(--port #{port} --secret ours --seconds 1))
    assert out =~ ~r/PROBLEM \d+ datagram\(s\) would be dropped: bad_signature/
    assert out =~ "set the same :secret everywhere"

    held = unique_port()
    {:ok, socket} = :gen_udp.open(held, reuseaddr: false)
    on_exit(fn -> :gen_udp.close(socket) end)
    {result, out} = doctor(~w(--port #{held} --seconds 1))
    assert out =~ "PROBLEM UDP port #{held} is held by a program that did not set SO_REUSEADDR"
    assert {:raised, _} = result

    {_, out} = doctor(~w(--port #{unique_port()} --seconds 1))
    assert out =~ "PROBLEM heard no datagram"
    assert out =~ ":seeds"

    {_, out} = doctor(~w(--port #{unique_port()} --if nosuch0 --seconds 1))
    assert out =~ "PROBLEM no interface named nosuch0 on this host"
    {_, out} = doctor(~w(--port #{unique_port()} --interface nosuch1 --seconds 1))
    assert out =~ "PROBLEM no interface named nosuch1 on this host"
    assert out =~ "set :multicast_if to one of: lo"
  end

  test "doctor --broadcast: hears and connects a broadcast topology" do
    port = unique_port()
    {peer, node} = TestPeers.start!(:doc_bcast)
    on_exit(fn -> TestPeers.stop(peer) end)

    {:ok, _} =
      TestPeers.start_topology(peer,
        name: :lan,
        port: port,
        broadcast: "127.255.255.255",
        heartbeat_interval: 200
      )

    # --group is the broadcast address with --broadcast (255.255.255.255 without: this
    # namespace has no route to it, which the doctor's send check reports).
    {result, out} = doctor(~w(--port #{port} --broadcast --group 127.255.255.255 --seconds 1))
    assert out =~ "ok      can bind UDP port #{port} and receive broadcasts"
    assert out =~ "listening on broadcasts:#{port}"
    assert out =~ "ok      heard #{node} from 127.0.0.1 and connected to it"
    assert out =~ "ok      sent a heartbeat to 127.255.255.255:#{port} and heard it back"
    assert result == :ok, out

    {result, out} = doctor(~w(--port #{port} --broadcast --seconds 1))
    assert out =~ "PROBLEM cannot send to 255.255.255.255:#{port}: network is unreachable"
    assert out =~ "ip route get 255.255.255.255"
    assert result != :ok
  end

  # Issue #24: with a libcluster node and a compat node running (the documented
  # migration), the doctor reported "PROBLEM ... bad_magic" and exited 1, and listen
  # showed every libcluster packet as dropped bad_magic.
  describe "the migration: a libcluster node beside a compat: :libcluster node" do
    setup do
      port = unique_port()
      secret = "migration-secret-0123456789"
      {old, old_node} = TestPeers.start!(:doc_old)
      {new, new_node} = TestPeers.start!(:doc_new)
      on_exit(fn -> Enum.each([old, new], &TestPeers.stop/1) end)

      {:ok, _} =
        TestPeers.call(old, NativeGossip.LegacyGossip, :start, [[port: port, secret: secret]])

      {:ok, _} =
        TestPeers.start_topology(new,
          name: :lan,
          port: port,
          secret: secret,
          compat: :libcluster,
          heartbeat_interval: 200
        )

      %{port: port, secret: secret, old: old_node, new: new_node}
    end

    test "doctor --compat libcluster passes; without it, libcluster_format is the problem", c do
      {result, out} =
        doctor(~w(--port #{c.port} --group 233.252.1.32 --secret #{c.secret} --seconds 2))

      assert out =~ ~r/PROBLEM \d+ datagram\(s\) would be dropped: libcluster_format/
      assert out =~ "compat: :libcluster"
      refute out =~ "bad_magic"
      assert {:raised, _} = result

      {result, out} =
        doctor(
          ~w(--port #{c.port} --group 233.252.1.32 --secret #{c.secret} --compat libcluster --seconds 2)
        )

      assert out =~ "ok      heard 1 node(s), and 1 in libcluster's format (compat)"
      assert out =~ "ok      heard #{c.new} from 127.0.0.1 and connected to it"
      assert out =~ "ok      heard #{c.old} from 127.0.0.1 and connected to it"
      assert out =~ "ok      sent a heartbeat to 233.252.1.32:#{c.port} and heard it back"
      refute out =~ "PROBLEM"
      assert result == :ok, out
    end

    test "the doctor reads a libcluster topology: its strategy's config, compat included", c do
      topologies = [
        gossip_example: [
          strategy: NativeGossip.Strategy,
          config: [port: c.port, secret: c.secret, compat: :libcluster, if_addr: "0.0.0.0"]
        ],
        old_gossip: [
          strategy: Cluster.Strategy.Gossip,
          config: [port: c.port, secret: c.secret, multicast_ttl: 1]
        ]
      ]

      Application.put_env(:libcluster, :topologies, topologies)
      on_exit(fn -> Application.delete_env(:libcluster, :topologies) end)

      for topology <- ~w(gossip_example old_gossip) do
        {result, out} = doctor(~w(--topology #{topology} --seconds 2))
        assert out =~ "listening on 233.252.1.32:#{c.port}"
        assert out =~ "ok      heard #{c.old} from 127.0.0.1 and connected to it"
        assert result == :ok, out
      end

      {{:raised, message}, _} = doctor(~w(--topology nope --seconds 1))

      assert message =~
               "no topology nope in config :native_gossip, :topologies, nor in config :libcluster"
    end

    test "listen --compat libcluster shows libcluster heartbeats as such", c do
      run = fn args ->
        Task.async(fn -> Mix.Tasks.NativeGossip.Listen.run(args) end) |> Task.await(15_000)
        lines()
      end

      base = ~w(--port #{c.port} --group 233.252.1.32 --secret #{c.secret} --seconds 1)
      out = run.(base ++ ~w(--compat libcluster))
      assert Enum.any?(out, &(&1 =~ "accepted #{c.old} (libcluster format)"))
      # The compat node's own libcluster copies, and its native heartbeats.
      assert Enum.any?(out, &(&1 =~ "accepted #{c.new} (libcluster format)"))
      assert Enum.any?(out, &(&1 =~ ~r/accepted #{c.new} incarnation=\d+/))

      out = run.(base)
      assert Enum.any?(out, &(&1 =~ "dropped libcluster_format"))
      refute Enum.any?(out, &(&1 =~ "bad_magic"))
    end
  end
end
