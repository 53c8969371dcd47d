defmodule NativeGossip.MultihostLibclusterTest do
  # A libcluster Gossip user's own config with only `strategy:` changed, started as
  # libcluster's Cluster.Supervisor starts a strategy (`start_link([%State{}])`), on
  # test hosts: each key with libcluster's meaning (README, "Every libcluster Gossip
  # key"). Issue #24.
  use ExUnit.Case, async: false

  alias NativeGossip.TestRig

  @moduletag :multihost
  @moduletag timeout: 120_000

  # Starts NativeGossip.Strategy on host `i` as Cluster.Supervisor would, with `config`.
  defp start_strategy(rig, i, config) do
    {peer, node} = TestRig.start_node!(rig, i)
    state = %Cluster.Strategy.State{topology: :gossip_example, config: config}
    spec = %{id: :gossip_example, start: {NativeGossip.Strategy, :start_link, [[state]]}}
    {:ok, _} = :peer.call(peer, Supervisor, :start_child, [NativeGossip.Supervisor, spec])
    %{i: i, peer: peer, node: node}
  end

  defp stats(n), do: :peer.call(n.peer, NativeGossip, :stats, [:gossip_example])

  test "libcluster's broadcast example, with a /24's directed broadcast, where no host routes multicast" do
    rig = TestRig.start_in_test!(2)

    for i <- 1..2, do: TestRig.without_multicast_route(rig, i)

    # libcluster's example with the subnet's broadcast address as multicast_addr.
    config = [
      port: 45_892,
      if_addr: "0.0.0.0",
      multicast_addr: "198.51.100.255",
      broadcast_only: true
    ]

    ns = for i <- 1..2, do: start_strategy(rig, i, config)
    TestRig.wait_for_mesh(ns)

    for n <- ns do
      # The mesh can be up before a side has heard the other (the other side heard it
      # and connected first): wait for a heartbeat accepted, not for the connection.
      NativeGossip.TestNet.wait_until(fn -> stats(n).accepted > 0 end)
      s = stats(n)
      assert s.send_errors == 0 and s.sent > 0, inspect(s)
    end
  end

  test "libcluster's Gossip example: if_addr 0.0.0.0, multicast_if, group, TTL and secret" do
    rig = TestRig.start_in_test!(2)

    ns =
      for i <- 1..2 do
        host = Enum.at(rig.hosts, i - 1)

        start_strategy(rig, i,
          port: 45_892,
          if_addr: "0.0.0.0",
          multicast_if: host.address |> :inet.ntoa() |> List.to_string(),
          multicast_addr: "233.252.1.32",
          multicast_ttl: 1,
          secret: "somepassword"
        )
      end

    TestRig.wait_for_mesh(ns)

    for n <- ns do
      # Heard from the other host's own address, on libcluster's group. The mesh can
      # be up before a side has heard the other (the other side connected first):
      # wait for the member, not for the connection.
      [other] = for h <- rig.hosts, h.index != n.i, do: h.address

      NativeGossip.TestNet.wait_until(fn ->
        match?(
          [%{address: ^other}],
          :peer.call(n.peer, NativeGossip, :members, [:gossip_example])
        )
      end)

      assert stats(n).send_errors == 0
    end
  end

  # With one interface per host this shows that such a config starts and meshes (before,
  # if_addr was only an alias); that it becomes :multicast_if is options_test.exs's.
  test "if_addr set to the host's own address: the hosts start and mesh" do
    rig = TestRig.start_in_test!(2)

    ns =
      for i <- 1..2 do
        host = Enum.at(rig.hosts, i - 1)
        start_strategy(rig, i, if_addr: host.address |> :inet.ntoa() |> List.to_string())
      end

    TestRig.wait_for_mesh(ns)
    assert Enum.all?(ns, &(stats(&1).send_errors == 0))
  end
end
