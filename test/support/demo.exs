# `make demo`: three BEAM nodes find each other by multicast and form a full mesh.
#
# Runs inside the private network namespace made by test/support/private_net.sh (the
# Makefile puts it there), so nothing leaves this machine. Each node is a separate OS
# process started with :peer; it starts a NativeGossip topology and records, from its
# own start, when it heard and when it connected each peer (NativeGossip.DemoRecorder). Exits 0 once every node is
# connected to every other, or 1 with the reason after 10 s.

defmodule Demo do
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

    IO.puts("""
    NativeGossip demo: #{length(@names)} BEAM nodes, one OS process each, in a private network
    namespace (multicast on loopback). They start #{@stagger_ms} ms apart, with no list of
    peers: each finds the others from their heartbeats.
    """)

    t0 = System.monotonic_time(:millisecond)

    nodes =
      for {name, i} <- Enum.with_index(@names) do
        wait_until_ms(t0 + i * @stagger_ms)
        {peer, node} = start_node(name)
        started = System.monotonic_time(:millisecond) - t0

        {:ok, recorder} =
          :peer.call(peer, NativeGossip.DemoRecorder, :start, [[name: :demo, secret: "demo"]])

        IO.puts("  started #{node} at +#{started} ms")
        {peer, node, recorder}
      end

    all = Enum.map(nodes, &elem(&1, 1))
    result = wait_for_mesh(nodes, all, t0 + @deadline_ms)
    print_report(nodes, all)

    case result do
      :ok ->
        IO.puts("\nFull mesh: every node is connected to the #{length(all) - 1} others.")
        System.halt(0)

      {:error, missing} ->
        IO.puts(:stderr, "\nNo full mesh within #{@deadline_ms} ms. Missing connections:")
        for {from, to} <- missing, do: IO.puts(:stderr, "  #{from} -> #{to}")
        System.halt(1)
    end
  end

  defp start_node(name) do
    paths = Enum.flat_map(:code.get_path(), &[~c"-pa", &1])

    {:ok, peer, node} =
      :peer.start(%{
        name: name,
        host: ~c"127.0.0.1",
        longnames: true,
        connection: :standard_io,
        args: [~c"-connect_all", ~c"false" | paths]
      })

    {:ok, _} = :peer.call(peer, Application, :ensure_all_started, [:native_gossip])
    :ok = :peer.call(peer, Logger, :configure, [[level: :error]])
    {peer, node}
  end

  # Full mesh: every node's recorder has seen a :connected event for every other node,
  # and distribution agrees (Node.list).
  defp wait_for_mesh(nodes, all, deadline) do
    missing =
      for {peer, node, recorder} <- nodes,
          {seen, list} = :peer.call(peer, NativeGossip.DemoRecorder, :report, [recorder]),
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

  defp print_report(nodes, all) do
    IO.puts("\nEach node, from its own start (ms):")

    for {peer, node, recorder} <- nodes do
      {seen, _} = :peer.call(peer, NativeGossip.DemoRecorder, :report, [recorder])
      IO.puts("  #{node}")

      for other <- all -- [node] do
        heard = format(seen[{other, :discovered}])
        connected = format(seen[{other, :connected}])
        IO.puts("    #{other}: heard at #{heard}, connected at #{connected}")
      end
    end
  end

  defp format(nil), do: "-"
  defp format(ms), do: :erlang.float_to_binary(ms, decimals: 1)

  defp wait_until_ms(t) do
    delay = t - System.monotonic_time(:millisecond)
    if delay > 0, do: Process.sleep(delay)
  end
end

Demo.run()
