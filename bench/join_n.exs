# Join into a running cluster of N = 1, 4, 16 nodes: time from the moment a new node
# starts its discovery until distribution reports it connected to all N. Eight test
# hosts; the running nodes spread over hosts 1-7 (only the N of the cluster run any
# discovery), the joining node on host 8; every VM
# with `-connect_all false`. Three ways, interleaved trial by trial, in one run:
#
# - NativeGossip: the new node starts a topology (the running nodes run one too);
# - the Elixir baseline (NativeGossip.BaselineGossip, libcluster Gossip's approach);
# - bare connects: the new node calls Node.connect/1 to all N at once (the floor: what
#   the connections alone cost, with no discovery).
#
# Run with `make bench` (root; inside a private network namespace).

alias NativeGossip.{BaselineGossip, BenchNetwork, EventRecorder, TestNet, TestRig}

sizes = System.get_env("SIZES", "1,4,16") |> String.split(",") |> Enum.map(&String.to_integer/1)
trials = String.to_integer(System.get_env("TRIALS", "10"))
rig = TestRig.start!(8)

try do
  topology = [name: :lan, secret: "join-benchmark-secret-0123"]
  id = {NativeGossip, :lan}

  {running, j, _} = BenchNetwork.join_rig(rig, Enum.max(sizes))

  # Until the joiner's recorder has a nodeup for every one of `targets`.
  connected_at = fn rec, targets ->
    TestNet.wait_until(
      fn ->
        ups =
          for {:nodeup, n, at} <- :peer.call(j, EventRecorder, :events, [rec]),
              n in targets,
              do: {n, at}

        ups = Enum.uniq_by(ups, &elem(&1, 0))
        length(ups) == length(targets) && ups |> Enum.map(&elem(&1, 1)) |> Enum.max()
      end,
      30_000,
      "the joiner to be connected"
    )
  end

  # Apart again; the running nodes stay connected among themselves only if they were
  # (they are not: each trial measures the joiner alone).
  apart = fn -> BenchNetwork.join_apart(j) end

  ways = [
    {"NativeGossip",
     fn _targets ->
       :peer.call(j, EventRecorder, :start_topology, [topology])
     end,
     fn ->
       :ok = :peer.call(j, Supervisor, :terminate_child, [NativeGossip.Supervisor, id])
       :ok = :peer.call(j, Supervisor, :delete_child, [NativeGossip.Supervisor, id])
     end},
    {"Elixir baseline",
     fn _targets ->
       rec = :peer.call(j, EventRecorder, :start_nodes_only, [])
       t0 = System.system_time(:microsecond)
       {:ok, _} = :peer.call(j, BaselineGossip, :start, [])
       {t0, rec}
     end, fn -> :peer.call(j, BaselineGossip, :stop, []) end},
    {"bare connects (floor)",
     fn targets ->
       rec = :peer.call(j, EventRecorder, :start_nodes_only, [])
       t0 = System.system_time(:microsecond)
       :ok = :peer.call(j, BenchNetwork, :connect_all, [targets])
       {t0, rec}
     end, fn -> :ok end}
  ]

  # DIAG=1: after each trial, the CPU of the joiner and of the N running VMs (by
  # thread) and the NativeGossip datagrams they received, since just before the start
  # (the trial's connects and whatever ran until the joiner was connected to all N).
  all_os = fn n ->
    Enum.map([%{peer: j} | Enum.take(running, n)], &:peer.call(&1.peer, :os, :getpid, []))
  end

  received = fn n ->
    for p <- [j | Enum.map(Enum.take(running, n), & &1.peer)] do
      try do
        :peer.call(p, NativeGossip, :stats, [:lan]).received
      catch
        _, _ -> 0
      end
    end
    |> Enum.sum()
  end

  diag =
    System.get_env("DIAG") &&
      fn n -> {Enum.map(all_os.(n), &BenchNetwork.thread_ticks/1), received.(n)} end

  diag_diff = fn {th1, r1}, {th0, r0} ->
    split =
      Enum.zip_with(th0, th1, &BenchNetwork.ticks_by_class/2)
      |> Enum.reduce(%{}, &Map.merge(&1, &2, fn _, a, b -> a + b end))
      |> Enum.sort()
      |> Enum.map_join(", ", fn {class, t} -> "#{class} #{Float.round(t / 1.0e6, 1)} ms" end)

    "CPU #{split}; #{r1 - r0} datagrams received (the joiner's count is reset by its restart)"
  end

  # The cluster is the first N running nodes: only they run discovery.
  enlist = fn nodes ->
    for %{peer: peer} <- nodes,
        do: :ok = NativeGossip.BenchNetwork.start_strategies(peer, topology)
  end

  enlist.([hd(running)])

  # Warm-up of each way.
  targets1 = [hd(running).node]

  for {_, start, stop} <- ways,
      do:
        (
          {_t0, rec} = start.(targets1)
          _ = connected_at.(rec, targets1)
          stop.()
          :ok = :peer.call(j, EventRecorder, :stop, [rec])
          apart.()
        )

  results =
    for n <- sizes do
      # Sizes ascend: start discovery on the nodes this size adds, and let them settle.
      enlist.(
        running
        |> Enum.take(n)
        |> Enum.drop(1)
        |> Enum.reject(&Process.get({:on, &1.node}))
      )

      for r <- Enum.take(running, n), do: Process.put({:on, r.node}, true)
      Process.sleep(2_000)
      targets = running |> Enum.take(n) |> Enum.map(& &1.node)

      samples =
        for _ <- 1..trials, {label, start, stop} <- ways do
          diag0 = diag && diag.(n)
          {t0, rec} = start.(targets)
          ms = (connected_at.(rec, targets) - t0) / 1000

          if diag,
            do:
              IO.puts(
                "  N=#{n} #{label}: #{:erlang.float_to_binary(ms, decimals: 1)} ms, #{diag.(n) |> diag_diff.(diag0)}"
              )

          stop.()
          :ok = :peer.call(j, EventRecorder, :stop, [rec])
          apart.()
          {label, ms}
        end

      {n, Enum.group_by(samples, &elem(&1, 0), &elem(&1, 1))}
    end

  f = fn v -> :erlang.float_to_binary(v / 1, decimals: 2) end

  cell = fn xs ->
    s = BenchNetwork.stats(xs)
    "#{f.(s.median)} [#{f.(s.p10)}-#{f.(s.p90)}]"
  end

  IO.puts("""
  Join into a running cluster: start until connected to all N (ms; median [p10-p90] of #{trials})

  | running nodes N | #{Enum.map_join(ways, " | ", &elem(&1, 0))} |
  |---|#{Enum.map_join(ways, "", fn _ -> "---|" end)}
  #{Enum.map_join(results, "\n", fn {n, by} -> "| #{n} | " <> Enum.map_join(ways, " | ", fn {label, _, _} -> cell.(by[label]) end) <> " |" end)}

  Target, median within 3 ms of the bare connects (issue #28):
  #{Enum.map_join(results, "\n", fn {n, by} ->
    d = BenchNetwork.stats(by["NativeGossip"]).median - BenchNetwork.stats(by["bare connects (floor)"]).median
    "- N = #{n}: #{if d >= 0, do: "+", else: ""}#{f.(d)} ms, " <> if(d <= 3, do: "**met**", else: "**missed**")
  end)}
  """)
after
  TestRig.stop(rig)
end
