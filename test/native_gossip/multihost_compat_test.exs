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
end
