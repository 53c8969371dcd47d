defmodule NativeGossip.MultihostCompatTest do
  # A rolling migration across test hosts: one node still runs libcluster's Gossip (a
  # reference implementation of its format, NativeGossip.LegacyGossip), two run
  # NativeGossip with compat: :libcluster. Nobody is split off, in both of the old
  # format's modes, and the upgraded nodes know each other by the native format.
  use ExUnit.Case, async: false

  import NativeGossip.TestNet
  alias NativeGossip.{LegacyGossip, TestRig}

  @moduletag :multihost
  @moduletag timeout: 120_000

  defp nodes(peer), do: peer |> :peer.call(Node, :list, []) |> Enum.sort()

  for {mode, secret} <- [plaintext: nil, encrypted: "migration secret"] do
    test "a libcluster node and two upgraded nodes form one cluster (#{mode})" do
      secret = unquote(secret)
      rig = TestRig.start_in_test!(3)

      {old, old_node} = TestRig.start_node!(rig, 1)
      {:ok, _} = :peer.call(old, LegacyGossip, :start, [[secret: secret]])

      new =
        for i <- [2, 3] do
          {peer, node} = TestRig.start_node!(rig, i)
          opts = [name: :lan, compat: :libcluster, heartbeat_interval: 300]
          opts = if secret, do: Keyword.put(opts, :secret, secret), else: opts

          {:ok, _} =
            :peer.call(peer, Supervisor, :start_child, [
              NativeGossip.Supervisor,
              {NativeGossip, opts}
            ])

          {peer, node}
        end

      all = Enum.sort([old_node | Enum.map(new, &elem(&1, 1))])

      wait_until(
        fn ->
          Enum.all?([{old, old_node} | new], fn {p, n} -> nodes(p) == all -- [n] end)
        end,
        15_000,
        "one cluster of #{inspect(all)}"
      )

      # The old node heard both upgraded nodes in its own format.
      assert Enum.sort(:peer.call(old, LegacyGossip, :heard, [])) ==
               Enum.map(new, &elem(&1, 1)) |> Enum.sort()

      # Upgraded nodes: each other by native heartbeats (an incarnation), the old node
      # by its format (incarnation 0).
      for {peer, node} <- new do
        members =
          wait_until(
            fn ->
              ms = :peer.call(peer, NativeGossip, :members, [:lan])
              length(ms) == 2 && ms
            end,
            5_000,
            "#{node} to hear both others: #{inspect(:peer.call(peer, NativeGossip, :stats, [:lan]))}"
          )

        by_node = Map.new(members, &{&1.node, &1})
        assert by_node[old_node].incarnation == 0
        [other] = Enum.map(new, &elem(&1, 1)) -- [node]
        assert by_node[other].incarnation > 0
      end
    end
  end

  # Issue #23: without a secret, goodbyes of names never heard went into the names
  # remembered as native (whose libcluster heartbeats are dropped) past the rate limit
  # and the name cap, so a forger could keep a libcluster node out until a restart.
  test "forged goodbyes of made-up names do not keep a libcluster node of such a name out" do
    rig = TestRig.start_in_test!(3)
    {new, _new_node} = TestRig.start_node!(rig, 2)

    {:ok, _} =
      :peer.call(new, Supervisor, :start_child, [
        NativeGossip.Supervisor,
        {NativeGossip, [name: :lan, compat: :libcluster, heartbeat_interval: 300]}
      ])

    # 5000 goodbyes from host 3, lib0@198.51.100.1 to lib4999@198.51.100.1.
    args =
      ~w(send --kind goodbyes --name lib@198.51.100.1 --peers 5000 --group 233.252.1.32) ++
        ~w(--rate 5000 --duration 1)

    assert TestRig.probe!(rig, 3, args) > 4000

    # Then lib42@198.51.100.1, a libcluster node, starts: it is heard and connected.
    {old, old_node} = TestRig.start_node!(rig, 1, name: "lib42")
    {:ok, _} = :peer.call(old, LegacyGossip, :start, [[]])
    wait_until(fn -> nodes(new) == [old_node] end, 10_000, "the libcluster node connected")
    assert :peer.call(new, NativeGossip, :stats, [:lan]).dropped.legacy_native_name == 0
  end
end
