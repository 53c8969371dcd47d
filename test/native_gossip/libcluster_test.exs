defmodule NativeGossip.LibclusterTest do
  # Against the real libcluster (LIBCLUSTER_PATH=<a checkout of libcluster 3.x>, see
  # mix.exs; hex cannot be reached from CI, so these run only where a checkout is
  # given): its Cluster.Supervisor starts NativeGossip.Strategy from a libcluster Gossip
  # user's config with only `strategy:` changed, and its own Gossip strategy forms one
  # cluster with a compat: :libcluster node. Issue #24.
  use ExUnit.Case, async: false

  import NativeGossip.TestNet
  alias NativeGossip.TestPeers

  @moduletag :libcluster

  # libcluster's Cluster.Supervisor on `peer`, with `topologies`, under the peer's
  # NativeGossip.Supervisor (so that it outlives the :peer.call).
  defp start_cluster_supervisor(peer, topologies) do
    spec = %{
      id: :cluster_supervisor,
      start: {Cluster.Supervisor, :start_link, [[topologies, [name: :cluster_sup]]]}
    }

    TestPeers.call(peer, Supervisor, :start_child, [NativeGossip.Supervisor, spec])
  end

  test "Cluster.Supervisor runs libcluster's Gossip example with NativeGossip.Strategy" do
    port = unique_port()
    peers = for name <- [:lcr_a, :lcr_b], do: TestPeers.start!(name)
    on_exit(fn -> Enum.each(peers, fn {p, _} -> TestPeers.stop(p) end) end)

    # libcluster's documented example, with only strategy: changed (and a key only
    # libcluster's docs of another strategy have: ignored with a warning, not fatal).
    topologies = [
      gossip_example: [
        strategy: NativeGossip.Strategy,
        config: [
          port: port,
          if_addr: "0.0.0.0",
          multicast_if: "127.0.0.1",
          multicast_addr: "233.252.1.32",
          multicast_ttl: 1,
          secret: "somepassword",
          polling_interval: 5_000
        ]
      ]
    ]

    for {peer, _} <- peers, do: {:ok, _} = start_cluster_supervisor(peer, topologies)

    [{a, a_node}, {b, b_node}] = peers
    wait_until(fn -> TestPeers.nodes(a) == [b_node] and TestPeers.nodes(b) == [a_node] end)
    assert [%{node: ^b_node}] = TestPeers.call(a, NativeGossip, :members, [:gossip_example])
  end

  test "libcluster's own Gossip strategy and a compat: :libcluster node form one cluster" do
    port = unique_port()
    {old, old_node} = TestPeers.start!(:lcr_old)
    {new, new_node} = TestPeers.start!(:lcr_new)
    on_exit(fn -> Enum.each([old, new], &TestPeers.stop/1) end)
    config = [port: port, multicast_if: "127.0.0.1", secret: "migration-secret"]

    {:ok, _} =
      start_cluster_supervisor(old, app: [strategy: Cluster.Strategy.Gossip, config: config])

    {:ok, _} =
      start_cluster_supervisor(new,
        app: [strategy: NativeGossip.Strategy, config: [compat: :libcluster] ++ config]
      )

    wait_until(
      fn -> TestPeers.nodes(old) == [new_node] and TestPeers.nodes(new) == [old_node] end,
      15_000
    )

    assert [%{node: ^old_node, incarnation: 0}] =
             TestPeers.call(new, NativeGossip, :members, [:app])
  end
end
