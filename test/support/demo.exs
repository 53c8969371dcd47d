# `make demo`: three BEAM nodes find each other by multicast and form a full mesh.
#
# It runs inside the private network namespace made by test/support/private_net.sh
# (the Makefile puts it there), so nothing leaves this machine. When it can (as root)
# it makes three test hosts, network namespaces on a bridge with their own addresses
# and host names (NativeGossip.TestRig), and runs one node on each, started with
# `--sname` and no DNS: the nodes learn each other's addresses from their heartbeats.
# Otherwise the three nodes share the private namespace's loopback.
#
# Each node is a separate OS process started with :peer, with `-connect_all false`, so
# every connection is made by NativeGossip. Each node records, from its own start,
# when it heard and when it connected each peer. Exits 0 once every node is connected
# to every other, or 1 with the reason after 10 s.

defmodule Demo do
  alias NativeGossip.{EventRecorder, TestPeers, TestRig}

  @names [:a, :b, :c]
  @stagger_ms 300
  @deadline_ms 10_000

  def run do
    {:ok, ifs} = :inet.getifaddrs()

    if System.get_env("NATIVE_GOSSIP_NETNS") != "1" or
         Enum.any?(ifs, fn {name, _} -> name != ~c"lo" end) do
      IO.puts(:stderr, "demo: run it with `make demo` (it needs a private network namespace)")
      System.halt(2)
    end

    {rig, start_node, where} =
      if TestRig.available?() do
        rig = TestRig.start!(length(@names))

        {rig, fn name, i -> TestRig.start_node!(rig, i, name: name, names: :short) end,
         "on three test hosts (network namespaces on a bridge, 198.51.100.1-3, host names " <>
           "host1-3), started with --sname and no DNS"}
      else
        {nil, fn name, _i -> TestPeers.start!(name) end,
         "in one private network namespace (multicast on loopback); not root, so no test hosts"}
      end

    try do
      demo(start_node, where)
    after
      if rig, do: TestRig.stop(rig)
    end
  end

  defp demo(start_node, where) do
    IO.puts("""
    NativeGossip demo: #{length(@names)} BEAM nodes, one OS process each, #{where}.
    They start #{@stagger_ms} ms apart, with no list of peers: each finds the others
    from their heartbeats.
    """)

    t0 = System.monotonic_time(:millisecond)

    nodes =
      for {name, i} <- Enum.with_index(@names, 1) do
        wait_until_ms(t0 + (i - 1) * @stagger_ms)
        {peer, node} = start_node.(name, i)

        {started_us, recorder} =
          :peer.call(peer, EventRecorder, :start_topology, [[name: :demo, secret: "demo"]])

        IO.puts("  started #{node} at +#{System.monotonic_time(:millisecond) - t0} ms")
        {peer, node, started_us, recorder}
      end

    all = Enum.map(nodes, &elem(&1, 1))
    result = wait_for_mesh(nodes, all, t0 + @deadline_ms)
    print_report(nodes, all)

    case result do
      :ok ->
        IO.puts("\nFull mesh: every node is connected to the #{length(all) - 1} others.")

      {:error, missing} ->
        IO.puts(:stderr, "\nNo full mesh within #{@deadline_ms} ms. Missing connections:")
        for {from, to} <- missing, do: IO.puts(:stderr, "  #{from} -> #{to}")
        System.halt(1)
    end
  end

  # Full mesh: every node's recorder has seen a :connected event for every other node,
  # and distribution agrees (Node.list).
  defp wait_for_mesh(nodes, all, deadline) do
    missing =
      for {peer, node, _, recorder} <- nodes,
          seen = seen(peer, recorder),
          list = :peer.call(peer, Node, :list, []),
          other <- all -- [node],
          not Map.has_key?(seen, {other, :connected}) or other not in list,
          do: {node, other}

    cond do
      missing == [] ->
        :ok

      System.monotonic_time(:millisecond) > deadline ->
        {:error, missing}

      true ->
        Process.sleep(5)
        wait_for_mesh(nodes, all, deadline)
    end
  end

  # The first time (wall clock, µs) of each {node, event}.
  defp seen(peer, recorder) do
    peer
    |> :peer.call(EventRecorder, :events, [recorder])
    |> Enum.reduce(%{}, fn {event, node, at}, acc -> Map.put_new(acc, {node, event}, at) end)
  end

  defp print_report(nodes, all) do
    IO.puts("\nEach node, from its own start (ms):")

    for {peer, node, started_us, recorder} <- nodes do
      seen = seen(peer, recorder)
      IO.puts("  #{node}")

      for other <- all -- [node] do
        heard = since(seen[{other, :discovered}], started_us)
        connected = since(seen[{other, :connected}], started_us)
        IO.puts("    #{other}: heard at #{heard}, connected at #{connected}")
      end
    end
  end

  defp since(nil, _t0), do: "-"
  defp since(at, t0), do: :erlang.float_to_binary((at - t0) / 1000, decimals: 1)

  defp wait_until_ms(t) do
    delay = t - System.monotonic_time(:millisecond)
    if delay > 0, do: Process.sleep(delay)
  end
end

Demo.run()
