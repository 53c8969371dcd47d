# Where one topology server's time goes in a 32-node formation (a diagnostic beside
# bench/formation_cpu.exs, not part of `make bench`): 32 nodes on eight test hosts
# start together, three rounds; in rounds 2 and 3 (warm) node K (default 20) runs
# `:eprof` on its NativeGossip supervisor and every process started under it (the
# topology server and its connect attempts). Prints the functions that took the most
# time. eprof's times are wall-clock between call and return, so a process that loses
# its core inside a call is charged for the wait: what found `Native.set_connected/4`
# at 1.5 ms a call (a wake-up of the native thread, see docs/BENCHMARKS.md).
#
#   MIX_ENV=test test/support/private_net.sh mix run --no-start bench/formation_profile.exs

alias NativeGossip.{TestNet, TestRig}

n = String.to_integer(System.get_env("N", "32"))
k = String.to_integer(System.get_env("K", "20"))
rig = TestRig.start!(8)

try do
  nodes = NativeGossip.BenchNetwork.spread_nodes(rig, n, "f", 8)

  topology = [name: :lan, secret: "formation-benchmark-secret-0123"]
  id = {NativeGossip, :lan}
  call = fn nd, m, f, a -> :peer.call(nd.peer, m, f, a, 30_000) end
  watched = Enum.at(nodes, k - 1)
  log = Path.join(System.tmp_dir!(), "native_gossip_eprof_#{System.os_time()}.txt")

  for round <- 1..3 do
    if round > 1 do
      sup = call.(watched, Process, :whereis, [NativeGossip.Supervisor])
      {:ok, _} = call.(watched, :eprof, :start, [])

      :profiling =
        call.(watched, :eprof, :start_profiling, [[sup], {:_, :_, :_}, [set_on_spawn: true]])
    end

    nodes
    |> Enum.map(fn nd ->
      Task.async(fn ->
        call.(nd, Supervisor, :start_child, [NativeGossip.Supervisor, {NativeGossip, topology}])
      end)
    end)
    |> Enum.each(&Task.await(&1, 30_000))

    TestNet.wait_until(
      fn -> Enum.all?(nodes, &(length(call.(&1, Node, :list, [])) == n - 1)) end,
      30_000
    )

    if round > 1 do
      call.(watched, :eprof, :stop_profiling, [])
      call.(watched, :eprof, :log, [String.to_charlist(log)])
      call.(watched, :eprof, :analyze, [:total, [sort: :time]])
      call.(watched, :eprof, :stop, [])
      lines = log |> File.read!() |> String.split("\n", trim: true)
      File.rm(log)
      IO.puts("round #{round}, node #{watched.node}: the 12 functions that took the most time")
      lines |> Enum.take(-14) |> Enum.each(&IO.puts/1)
    end

    for nd <- nodes do
      :ok = call.(nd, Supervisor, :terminate_child, [NativeGossip.Supervisor, id])
      :ok = call.(nd, Supervisor, :delete_child, [NativeGossip.Supervisor, id])
    end

    NativeGossip.BenchNetwork.apart(nodes)
    Process.sleep(2_000)
  end
after
  TestRig.stop(rig)
end
