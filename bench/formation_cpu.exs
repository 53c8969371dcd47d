# Where a 32-node formation's time goes (a diagnostic beside bench/formation.exs, not
# part of `make bench`): 32 nodes on eight test hosts, three rounds of each way, every
# node starting at once. For NativeGossip: the connect attempts its connectors started
# (against the number of pairs), the datagrams received, the answers sent and the
# joining-burst heartbeats left out (every peer had heard the node), in all; for both ways: the
# CPU time of the 32 VMs (from /proc/<pid>/stat) from the start to the full mesh, and
# how many times their threads were put on a CPU (each wake-up is one; schedstat).
#
#   MIX_ENV=test test/support/private_net.sh mix run --no-start bench/formation_cpu.exs
#
# REDUCTIONS=1 adds the reductions by process; SAMPLE=1 samples what four nodes'
# topology servers do (every 10 ms for a second from the start): busy, and in what.

alias NativeGossip.{TestNet, TestRig}

n = String.to_integer(System.get_env("N", "32"))
rig = TestRig.start!(8)

try do
  nodes =
    for nd <- NativeGossip.BenchNetwork.spread_nodes(rig, n, "f", 8),
        do: Map.put(nd, :os, :peer.call(nd.peer, :os, :getpid, []))

  names = Enum.map(nodes, & &1.node)
  id = {NativeGossip, :lan}
  topology = [name: :lan, secret: "formation-benchmark-secret-0123"]
  cpu = fn -> nodes |> Enum.map(&NativeGossip.BenchNetwork.cpu_ticks(&1.os)) |> Enum.sum() end
  threads = fn -> Enum.map(nodes, &NativeGossip.BenchNetwork.thread_ticks(&1.os)) end

  sum_by_class = fn before, later, by ->
    Enum.zip_with(before, later, by)
    |> Enum.reduce(%{}, &Map.merge(&1, &2, fn _, a, b -> a + b end))
    |> Enum.sort()
  end

  split = fn before, later ->
    sum_by_class.(before, later, &NativeGossip.BenchNetwork.ticks_by_class/2)
    |> Enum.map_join(", ", fn {class, t} -> "#{class} #{Float.round(t / 1.0e9, 2)} s" end)
  end

  # How many times the VMs' threads were put on a CPU: each wake-up is one.
  runs = fn before, later ->
    sum_by_class.(before, later, &NativeGossip.BenchNetwork.runs_by_class/2)
    |> Enum.map_join(", ", fn {class, r} -> "#{class} #{r}" end)
  end

  call = fn nd, m, f, a -> :peer.call(nd.peer, m, f, a) end

  mesh = fn ->
    TestNet.wait_until(
      fn -> Enum.all?(nodes, &(length(call.(&1, Node, :list, [])) == n - 1)) end,
      30_000
    )
  end

  # NativeGossip's own counts, read before its topologies stop.
  counts = fn ->
    Process.sleep(1_500)

    started =
      for nd <- nodes,
          do:
            call.(nd, :sys, :get_state, [call.(nd, NativeGossip.Topology, :server!, [:lan])]).connector.started

    stats = for nd <- nodes, do: call.(nd, NativeGossip, :stats, [:lan])
    sum = fn key -> stats |> Enum.map(&Map.fetch!(&1, key)) |> Enum.sum() end

    ", #{Enum.sum(started)} connect attempts for #{div(n * (n - 1), 2)} pairs, " <>
      "#{sum.(:received)} datagrams received, #{sum.(:answers)} answers sent, " <>
      "#{sum.(:burst_skipped)} burst heartbeats left out"
  end

  ways = [
    {"NativeGossip",
     fn nd ->
       call.(nd, Supervisor, :start_child, [NativeGossip.Supervisor, {NativeGossip, topology}])
     end, counts,
     fn nd ->
       :ok = call.(nd, Supervisor, :terminate_child, [NativeGossip.Supervisor, id])
       :ok = call.(nd, Supervisor, :delete_child, [NativeGossip.Supervisor, id])
     end},
    {"direct connects",
     fn nd ->
       mine = NativeGossip.BenchNetwork.led_by(nd.node, names)
       call.(nd, NativeGossip.BenchNetwork, :connect_all, [mine])
     end, fn -> "" end, fn _ -> :ok end}
  ]

  for round <- 1..3, {label, start, extra, stop} <- ways do
    r0 = Enum.map(nodes, &call.(&1, NativeGossip.BenchNetwork, :reductions, []))
    c0 = cpu.()
    th0 = threads.()
    t0 = System.monotonic_time(:millisecond)

    # SAMPLE=1: what the topology servers of four nodes do, every 10 ms for a second
    # from their start (NativeGossip only).
    sampling =
      if System.get_env("SAMPLE") && label == "NativeGossip",
        do:
          for(
            k <- Enum.uniq([0, 8, 19, n - 1]),
            nd = Enum.at(nodes, k),
            nd != nil,
            do:
              Task.async(fn -> call.(nd, NativeGossip.BenchNetwork, :sample, [:lan, 10, 100]) end)
          ),
        else: []

    nodes |> Enum.map(&Task.async(fn -> start.(&1) end)) |> Enum.each(&Task.await(&1, 30_000))
    started = System.monotonic_time(:millisecond) - t0
    mesh.()
    t = System.monotonic_time(:millisecond) - t0
    c1 = cpu.()
    th1 = threads.()
    r1 = Enum.map(nodes, &call.(&1, NativeGossip.BenchNetwork, :reductions, []))

    reds =
      Enum.zip_with(r0, r1, &NativeGossip.BenchNetwork.reductions_by_label/2)
      |> Enum.reduce(%{}, &Map.merge(&1, &2, fn _, a, b -> a + b end))
      |> Enum.sort_by(&(-elem(&1, 1)))
      |> Enum.take(12)

    IO.puts(
      "round #{round}, #{label}: every start call returned after ~#{started} ms, full mesh after ~#{t} ms (from the controller), CPU of the #{n} VMs #{(c1 - c0) / 100} s (#{split.(th0, th1)}; runs on a CPU: #{runs.(th0, th1)})#{extra.()}"
    )

    if System.get_env("REDUCTIONS"), do: IO.inspect(reds, label: "  reductions (top 12)")

    if sampling != [] do
      samples = Enum.flat_map(sampling, &Task.await(&1, 30_000))
      busy = Enum.reject(samples, &(&1 == :idle))

      IO.puts(
        "  topology servers sampled: busy in #{length(busy)} of #{length(samples)} samples; " <>
          "where (function, and the NativeGossip function it serves): " <>
          inspect(busy |> Enum.frequencies() |> Enum.sort_by(&(-elem(&1, 1))) |> Enum.take(6))
      )
    end

    Enum.each(nodes, stop)

    NativeGossip.BenchNetwork.apart(nodes)
    Process.sleep(3_000)
  end
after
  TestRig.stop(rig)
end
