defmodule NativeGossip.RotationTest do
  # Rolling a new secret through a running cluster, node by node.
  use ExUnit.Case, async: false

  import NativeGossip.TestNet
  alias NativeGossip.TestPeers

  @interval 100

  setup do
    port = unique_port()
    peers = for name <- [:rot_a, :rot_b, :rot_c], do: TestPeers.start!(name)
    on_exit(fn -> Enum.each(peers, fn {p, _} -> TestPeers.stop(p) end) end)
    for {p, _} <- peers, do: {:ok, _} = TestPeers.start_topology(p, opts(port, ["old"]))
    TestPeers.wait_for_mesh(peers)
    {:ok, peers: peers, port: port}
  end

  defp opts(port, secrets),
    do: [name: :lan, port: port, secret: secrets, heartbeat_interval: @interval]

  defp reconfigure({peer, _}, port, secrets) do
    id = {NativeGossip, :lan}
    :ok = TestPeers.call(peer, Supervisor, :terminate_child, [NativeGossip.Supervisor, id])
    :ok = TestPeers.call(peer, Supervisor, :delete_child, [NativeGossip.Supervisor, id])
    {:ok, _} = TestPeers.start_topology(peer, opts(port, secrets))
  end

  defp stats({peer, _}), do: TestPeers.call(peer, NativeGossip, :stats, [:lan])

  # Every node hears every other: each table holds the other two, alive, heard within
  # the last two intervals.
  defp all_hear_each_other?(peers) do
    now = System.system_time(:millisecond)

    Enum.all?(peers, fn {peer, node} ->
      members = TestPeers.call(peer, NativeGossip, :members, [:lan])

      Enum.sort(Enum.map(members, & &1.node)) ==
        Enum.sort(Enum.map(peers, &elem(&1, 1)) -- [node]) and
        Enum.all?(members, &(&1.state == :alive and now - &1.last_seen < 2 * @interval + 100))
    end)
  end

  test "old -> [old, new] -> [new, old] -> new, one node at a time: no split", %{
    peers: peers,
    port: port
  } do
    for secrets <- [["old", "new"], ["new", "old"], ["new"]], node <- peers do
      reconfigure(node, port, secrets)

      wait_until(
        fn -> all_hear_each_other?(peers) end,
        3_000,
        "#{inspect(secrets)} on #{elem(node, 1)}"
      )

      # A few more intervals: nobody ever rejected anybody.
      Process.sleep(3 * @interval)
      assert Enum.all?(peers, &(stats(&1).dropped.bad_signature == 0))
      assert all_hear_each_other?(peers)
    end
  end

  test "switching one node straight to the new secret splits it off (the check above can fail)",
       %{peers: [a, b, c], port: port} do
    reconfigure(c, port, ["new"])

    wait_until(fn -> stats(a).dropped.bad_signature > 0 and stats(c).dropped.bad_signature > 0 end)

    refute all_hear_each_other?([a, b, c])
  end
end
