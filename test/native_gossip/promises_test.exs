defmodule NativeGossip.PromisesTest do
  # What the README and the option docs promise, each checked where it would show if
  # it broke: the start warnings, options that reach the socket or the native side
  # (:multicast_ttl, :max_peers, :new_peer_rate), :list_nodes, :ignore when the node
  # is not distributed, NATIVE_GOSSIP_BROADCAST, members' :port. Real sockets on the
  # private namespace's loopback; real peer nodes where one is needed.
  use ExUnit.Case, async: false

  import ExUnit.CaptureLog
  import NativeGossip.TestNet
  alias NativeGossip.{HeartbeatPacket, TestPeers}

  @group {239, 255, 45, 92}
  @secret "promises-secret-0123456789"

  defp start!(opts), do: start_supervised!({NativeGossip, opts})

  # Names as this VM's own are written, so that they are connectable (and fail fast:
  # nothing listens at 127.0.0.2..).
  defp name(i), do: "p#{i}@127.0.0.#{rem(i, 200) + 2}"

  # The start warnings come half a second after the start (out of a cold VM's join,
  # issue #24): waited for on the server's state.
  defp start_warnings(opts) do
    capture_log(fn ->
      start!(opts)
      server = NativeGossip.Topology.server!(opts[:name])
      wait_until(fn -> :sys.get_state(server).warned end, 10_000)
    end)
  end

  test "a topology without a :secret warns after its start, naming its group and port" do
    port = unique_port()

    log =
      capture_log(fn ->
        start!(name: :nosecret, port: port)
        Process.sleep(100)
      end)

    refute log =~ "has no :secret"
    stop_supervised!({NativeGossip, :nosecret})

    log = start_warnings(name: :later, port: port)
    assert log =~ "NativeGossip topology :later has no :secret"
    assert log =~ "239.255.45.92:#{port}"

    refute start_warnings(name: :secret, port: port, secret: @secret) =~ "has no :secret"
  end

  test "compat: :libcluster warns at start that libcluster's format has no MAC" do
    log = start_warnings(name: :compat, port: unique_port(), secret: @secret, compat: :libcluster)

    assert log =~ "NativeGossip topology :compat also speaks libcluster's Gossip format"
    assert log =~ "no MAC and no replay protection"
  end

  test ":multicast_ttl is the TTL of the heartbeats sent (default 1)" do
    for {opts, ttl} <- [{[], 1}, {[multicast_ttl: 7], 7}] do
      port = unique_port()

      {:ok, socket} =
        :gen_udp.open(port, [
          :binary,
          active: true,
          reuseaddr: true,
          recvttl: true,
          ip: @group,
          add_membership: {@group, {0, 0, 0, 0}}
        ])

      start!([name: :ttl, port: port, secret: @secret] ++ opts)
      assert_receive {:udp, ^socket, _, _, [ttl: ^ttl], "NGSP" <> _}, 2_000
      :ok = stop_supervised({NativeGossip, :ttl})
      :gen_udp.close(socket)
    end
  end

  test ":max_peers bounds the peer table (the oldest peer never connected makes room)" do
    port = unique_port()
    start!(name: :maxp, port: port, secret: @secret, max_peers: 2)
    socket = HeartbeatPacket.sender()

    for i <- 1..5,
        do: HeartbeatPacket.send(socket, port, HeartbeatPacket.build(name(i), secret: @secret))

    wait_until(fn -> NativeGossip.stats(:maxp).peers == 2 end)
    Process.sleep(200)
    assert length(NativeGossip.members(:maxp)) == 2
    # The last two heard are kept.
    assert NativeGossip.members(:maxp) |> Enum.map(&Atom.to_string(&1.node)) == [name(4), name(5)]
  end

  test ":new_peer_rate (without a secret) admits a burst of twice the rate from one address, then the rate" do
    port = unique_port()
    start!(name: :rate, port: port, new_peer_rate: 2, log_interval: 3_600_000)
    socket = HeartbeatPacket.sender()
    for i <- 1..10, do: HeartbeatPacket.send(socket, port, HeartbeatPacket.build(name(i)))

    wait_until(fn -> NativeGossip.stats(:rate).dropped.rate_limited == 6 end)
    assert NativeGossip.stats(:rate).peers == 4

    # About a second later the rate has refilled two (three if this machine was slow to
    # come back: never all four, as the default rate would admit).
    Process.sleep(1_050)
    for i <- 11..14, do: HeartbeatPacket.send(socket, port, HeartbeatPacket.build(name(i)))
    wait_until(fn -> NativeGossip.stats(:rate).dropped.rate_limited in [7, 8] end)
    Process.sleep(100)
    assert %{peers: peers, dropped: %{rate_limited: limited}} = NativeGossip.stats(:rate)
    assert {peers, limited} in [{6, 8}, {7, 7}]
  end

  test "members' :address and :port are where the peer's heartbeats come from" do
    port = unique_port()
    start!(name: :mport, port: port, secret: @secret)
    socket = HeartbeatPacket.sender()
    {:ok, from} = :inet.port(socket)
    HeartbeatPacket.send(socket, port, HeartbeatPacket.build(name(1), secret: @secret))
    wait_until(fn -> NativeGossip.members(:mport) != [] end)
    assert [%{address: {127, 0, 0, 1}, port: ^from}] = NativeGossip.members(:mport)
  end

  test "a custom :list_nodes decides who counts as connected: a node it lists is never connected to" do
    port = unique_port()
    {a, a_node} = TestPeers.start!(:ln_a)
    {b, b_node} = TestPeers.start!(:ln_b)
    on_exit(fn -> Enum.each([a, b], &TestPeers.stop/1) end)

    # Each lists the other as connected: neither connects.
    for {peer, other} <- [{a, b_node}, {b, a_node}] do
      :ok = TestPeers.call(peer, :persistent_term, :put, [:ng_listed, [other]])

      {:ok, _} =
        TestPeers.start_topology(peer,
          name: :ln,
          port: port,
          secret: @secret,
          heartbeat_interval: 100,
          list_nodes: {:persistent_term, :get, [:ng_listed]}
        )
    end

    wait_until(fn -> TestPeers.call(a, NativeGossip, :members, [:ln]) != [] end)
    Process.sleep(1_000)
    assert [%{node: ^b_node, connected?: true}] = TestPeers.call(a, NativeGossip, :members, [:ln])
    assert TestPeers.nodes(a) == []

    # With the default (the VM's connected nodes) they connect.
    for {peer, other} <- [{a, b_node}, {b, a_node}] do
      :ok =
        TestPeers.call(peer, Supervisor, :terminate_child, [
          NativeGossip.Supervisor,
          {NativeGossip, :ln}
        ])

      :ok =
        TestPeers.call(peer, Supervisor, :delete_child, [
          NativeGossip.Supervisor,
          {NativeGossip, :ln}
        ])

      {:ok, _} =
        TestPeers.start_topology(peer,
          name: :ln,
          port: port,
          secret: @secret,
          heartbeat_interval: 100
        )

      _ = other
    end

    TestPeers.wait_for_mesh([{a, a_node}, {b, b_node}])
  end

  test "in a VM that is not distributed, start_link returns :ignore and says why" do
    paths = Enum.flat_map(:code.get_path(), &[~c"-pa", &1])
    {:ok, peer, :nonode@nohost} = :peer.start_link(%{connection: :standard_io, args: paths})
    on_exit(fn -> TestPeers.stop(peer) end)
    {:ok, _} = :peer.call(peer, Application, :ensure_all_started, [:native_gossip])
    # ExUnit's log capture, there.
    {:ok, _} = :peer.call(peer, Application, :ensure_all_started, [:ex_unit])

    # The warning goes to the peer's logger: capture it there.
    assert {:ignore, log} =
             :peer.call(peer, TestPeers, :start_link_logged, [[name: :nd, port: unique_port()]])

    assert log =~ "NativeGossip topology :nd not started: this node is not distributed"
    assert :peer.call(peer, Registry, :lookup, [NativeGossip.Registry, :nd]) == []
  end

  test "NATIVE_GOSSIP_BROADCAST: true, false, an address, or an error naming the variable" do
    on_exit(fn -> System.delete_env("NATIVE_GOSSIP_BROADCAST") end)

    for {value, expected} <- [{"true", true}, {"false", false}, {"10.0.0.255", "10.0.0.255"}] do
      System.put_env("NATIVE_GOSSIP_BROADCAST", value)
      opts = NativeGossip.options_from_env()
      assert opts[:broadcast] == expected
    end

    # What a topology makes of it: heartbeats to the broadcast address.
    System.put_env("NATIVE_GOSSIP_BROADCAST", "true")

    assert {:ok, %{broadcast: true, multicast_addr: {255, 255, 255, 255}}} =
             NativeGossip.Options.validate([name: :b] ++ NativeGossip.options_from_env())

    System.put_env("NATIVE_GOSSIP_BROADCAST", "yes please")
    error = assert_raise ArgumentError, fn -> NativeGossip.options_from_env() end
    assert error.message =~ "NATIVE_GOSSIP_BROADCAST"
  end
end
