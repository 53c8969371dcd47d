# Soak: memory of a long-lived node under churn, for SOAK_SECONDS (default 600).
#
# A watcher node (`--sname`, topology with default options and a secret) runs on host
# 1. On hosts 2, 3 and 4, nodes come and go as pods do: each new node has a new host
# name (`n@pod<k>`, so the watcher must learn a new short host name for every one),
# joins, stays a few seconds, then stops cleanly, except every third, killed with -9
# (no goodbye: lost, then forgotten after :forget_after, 60 s). Every 30 s: the
# watcher's BEAM memory (total, and without atoms), its topology server's own memory,
# its peer table, the short host names it maps, and its atom count.
#
# What should be flat: everything but atoms (node names are atoms, never freed: one per
# distinct node, which is the VM's rule, not ours) once the first forget_after has
# passed. Run with `make bench` (root; inside a private network namespace).

alias NativeGossip.{TestNet, TestRig}

seconds = String.to_integer(System.get_env("SOAK_SECONDS", "600"))
rig = TestRig.start!(4)

defmodule Bench.Soak do
  # One churning host: starts a node with a new host name, waits until the watcher is
  # connected to it, keeps it a moment, stops it (cleanly, or -9 every third); again
  # until `deadline`. Returns how many nodes it ran.
  def churn(rig, i, watcher, deadline, topology, count \\ 0) do
    if System.monotonic_time(:millisecond) >= deadline do
      count
    else
      {peer, node} = TestRig.start_node!(rig, i, names: :short, hostname: "pod#{i}x#{count}")

      {:ok, _} =
        :peer.call(peer, Supervisor, :start_child, [
          NativeGossip.Supervisor,
          {NativeGossip, topology}
        ])

      TestNet.wait_until(
        fn -> node in :peer.call(watcher, Node, :list, []) end,
        20_000,
        "the watcher to connect to #{node}"
      )

      Process.sleep(2_000)

      if rem(count, 3) == 2 do
        TestRig.kill(peer)
      else
        :peer.stop(peer)
      end

      churn(rig, i, watcher, deadline, topology, count + 1)
    end
  end

  def sample(watcher, server, t0) do
    call = fn m, f, a -> :peer.call(watcher, m, f, a) end
    total = call.(:erlang, :memory, [:total])
    atom = call.(:erlang, :memory, [:atom])
    {:memory, server_memory} = call.(Process, :info, [server, :memory])
    state = call.(:sys, :get_state, [server])

    %{
      at: div(System.monotonic_time(:millisecond) - t0, 1000),
      total: total,
      without_atoms: total - atom,
      server: server_memory,
      peers: call.(NativeGossip, :stats, [:lan]).peers,
      hosts: NativeGossip.ShortNames.size(state.hosts),
      atoms: call.(:erlang, :system_info, [:atom_count])
    }
  end
end

try do
  topology = [name: :lan, secret: "soak-benchmark-secret", log_interval: 3_600_000]
  {watcher, _} = TestRig.start_node!(rig, 1, names: :short, name: "watcher")

  {:ok, _} =
    :peer.call(watcher, Supervisor, :start_child, [
      NativeGossip.Supervisor,
      {NativeGossip, topology}
    ])

  server = :peer.call(watcher, NativeGossip.Topology, :server!, [:lan])
  # Warm up: code loaded and the first short name learned before the first sample.
  :peer.call(watcher, :erlang, :garbage_collect, [])
  t0 = System.monotonic_time(:millisecond)
  deadline = t0 + seconds * 1000

  churners =
    for i <- 2..4, do: Task.async(fn -> Bench.Soak.churn(rig, i, watcher, deadline, topology) end)

  samples =
    Stream.repeatedly(fn ->
      Process.sleep(30_000)
      # What a long-lived VM would have done by itself meanwhile.
      :peer.call(watcher, :erlang, :garbage_collect, [server])
      Bench.Soak.sample(watcher, server, t0)
    end)
    |> Enum.take_while(fn s -> s.at < seconds end)

  nodes = churners |> Enum.map(&Task.await(&1, 120_000)) |> Enum.sum()
  # The last ones are forgotten too: after forget_after, nothing of them is left.
  Process.sleep(65_000)
  :peer.call(watcher, :erlang, :garbage_collect, [server])
  last = Bench.Soak.sample(watcher, server, t0)
  samples = samples ++ [last]

  mb = fn bytes -> :erlang.float_to_binary(bytes / 1_000_000, decimals: 2) end
  kb = fn bytes -> :erlang.float_to_binary(bytes / 1_000, decimals: 1) end

  rows =
    for s <- samples do
      "| #{s.at} | #{mb.(s.total)} | #{mb.(s.without_atoms)} | #{kb.(s.server)} | #{s.peers} | #{s.hosts} | #{s.atoms} |"
    end

  # Growth while the churn goes on, in steady state (after the first forget_after, nodes
  # are forgotten as fast as they come): from the mean of its first three samples to the
  # mean of its last three (a single sample of the server's memory moves by a map's
  # growth step). The final sample, after everything is forgotten, is checked apart.
  churning = Enum.filter(samples -- [last], &(&1.at >= 90))
  mean = fn ss, key -> Enum.sum(Enum.map(ss, &Map.fetch!(&1, key))) / length(ss) end
  {first3, last3} = {Enum.take(churning, 3), Enum.take(churning, -3)}
  steady = hd(churning)
  growth = mean.(last3, :without_atoms) - mean.(first3, :without_atoms)
  server_growth = mean.(last3, :server) - mean.(first3, :server)

  IO.puts("""
  Churn for #{seconds} s: #{nodes} nodes (`--sname`, each with a new host name) on 3 hosts, watched by one node; every third killed with -9. Then 65 s for the last ones to be forgotten.

  | s | BEAM memory (MB) | without atoms (MB) | topology server (KB) | peers | short host names | atoms |
  |---|---|---|---|---|---|---|
  #{Enum.join(rows, "\n")}

  During the churn in steady state (mean of the samples at #{Enum.map_join(first3, ", ", & &1.at)} s against those at #{Enum.map_join(last3, ", ", & &1.at)} s): BEAM memory without atoms #{if growth >= 0, do: "+", else: ""}#{mb.(growth)} MB, topology server #{if server_growth >= 0, do: "+", else: ""}#{kb.(server_growth)} KB. From #{steady.at} s to the end: #{last.atoms - steady.atoms} atoms (one per new node name).

  Against the targets:
  #{NativeGossip.BenchNetwork.verdicts([{"BEAM memory without atoms, growth during the churn in steady state under 1 MB", growth / 1_000_000, 1}, {"topology server memory, growth during the churn in steady state under 50 KB", server_growth / 1_000, 50}, {"short host names mapped at the end, all forgotten (under 1)", last.hosts, 1}])}
  """)
after
  TestRig.stop(rig)
end
