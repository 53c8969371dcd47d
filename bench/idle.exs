# Idle cost: what a node pays to stay in a quiet cluster. Four test hosts; hosts 1-3
# run peers with both NativeGossip and the pure-Elixir baseline (on separate groups and
# ports), so the measured node on host 4 always has three peers of each kind around.
# The measured node goes ROUNDS times (default 3) through three phases of DURATION
# seconds each (default 60): no discovery at all, a NativeGossip topology, and the
# baseline strategy; CPU is summed per phase over the rounds. Per phase:
# the CPU time of its whole OS process (every thread, the native one included), from
# :erlang.statistics(:runtime) (the process's CPU clock, in ms: ten times finer than
# the clock ticks of /proc/<pid>/stat); in the NativeGossip phase, the native thread's voluntary context
# switches (its wake-ups) from /proc/<pid>/task/<tid>/status.
#
# Same heartbeat rate for both: NativeGossip at a 2500 ms interval, the mean of the
# baseline's random 1-5000 ms.
#
# Run with `make bench` (root; inside a private network namespace).

alias NativeGossip.{BaselineGossip, TestRig}

duration = String.to_integer(System.get_env("DURATION", "60"))
rig = TestRig.start!(4)

try do
  topology = [name: :lan, secret: "idle-benchmark-secret-0123", heartbeat_interval: 2_500]

  for i <- 1..3 do
    {peer, _} = TestRig.start_node!(rig, i, name: "p#{i}")

    :ok = NativeGossip.BenchNetwork.start_strategies(peer, topology)
  end

  {m, _} = TestRig.start_node!(rig, 4, name: "measured")
  os_pid = :peer.call(m, :os, :getpid, [])

  # Whole-process CPU time in ms (all threads). The call itself costs the same small
  # amount in every phase.
  cpu_ms = fn -> :peer.call(m, :erlang, :statistics, [:runtime]) |> elem(0) end

  gossip_thread_switches = fn ->
    Enum.find_value(File.ls!("/proc/#{os_pid}/task"), fn tid ->
      if File.read("/proc/#{os_pid}/task/#{tid}/comm") == {:ok, "native_gossip\n"} do
        [_, n] =
          Regex.run(
            ~r/voluntary_ctxt_switches:\s+(\d+)/,
            File.read!("/proc/#{os_pid}/task/#{tid}/status")
          )

        String.to_integer(n)
      end
    end)
  end

  phase = fn label, setup, teardown ->
    IO.puts(:stderr, "#{label}...")
    setup.()
    # Let the start settle (the joining burst, the first connects).
    Process.sleep(5_000)
    t0 = cpu_ms.()
    w0 = gossip_thread_switches.()
    Process.sleep(duration * 1000)
    cpu = (cpu_ms.() - t0) / 1000
    w1 = gossip_thread_switches.()
    teardown.()
    wakeups = if w0 && w1, do: (w1 - w0) / duration, else: nil
    IO.puts(:stderr, "#{label}: #{cpu} s CPU in #{duration} s, wake-ups/s #{inspect(wakeups)}")
    {label, cpu, wakeups}
  end

  id = {NativeGossip, :lan}

  phases = [
    {"no discovery", fn -> :ok end, fn -> :ok end},
    {
      "NativeGossip (2500 ms interval)",
      fn ->
        {:ok, _} =
          :peer.call(m, Supervisor, :start_child, [
            NativeGossip.Supervisor,
            {NativeGossip, topology}
          ])
      end,
      fn ->
        :ok = :peer.call(m, Supervisor, :terminate_child, [NativeGossip.Supervisor, id])
        :ok = :peer.call(m, Supervisor, :delete_child, [NativeGossip.Supervisor, id])
      end
    },
    {
      "Elixir baseline (1-5000 ms)",
      fn -> {:ok, _} = :peer.call(m, BaselineGossip, :start, []) end,
      fn -> :ok = :peer.call(m, BaselineGossip, :stop, []) end
    }
  ]

  # ROUNDS rounds of the three phases, interleaved, so that slow drifts of the machine
  # touch all three alike; CPU is summed over the rounds.
  rounds = String.to_integer(System.get_env("ROUNDS", "3"))

  runs =
    for _ <- 1..rounds, {label, setup, teardown} <- phases, do: phase.(label, setup, teardown)

  results =
    for {label, _, _} <- phases do
      mine = for {^label, cpu, w} <- runs, do: {cpu, w}
      cpus = Enum.map(mine, &elem(&1, 0))
      ws = mine |> Enum.map(&elem(&1, 1)) |> Enum.reject(&is_nil/1)
      w = if ws == [], do: nil, else: Enum.sum(ws) / length(ws)
      {label, Float.round(Enum.sum(cpus) / 1, 3), w, cpus}
    end

  total = duration * rounds
  [{_, idle, _, _} | _] = results
  pct = fn s -> :erlang.float_to_binary(s / total * 100, decimals: 4) end
  [_, {_, ng, wakeups, _}, {_, bl, _, _}] = results

  IO.puts("""
  Idle cost of a node with three peers, #{rounds} rounds of #{duration} s per phase (CPU of the whole OS process)

  | phase | CPU in #{total} s (s) | per round (s) | % of one core | above no discovery (% of a core) | native thread wake-ups per second |
  |---|---|---|---|---|---|
  #{Enum.map_join(results, "\n", fn {label, cpu, w, cpus} -> "| #{label} | #{cpu} | #{Enum.join(cpus, ", ")} | #{pct.(cpu)} | #{pct.(cpu - idle)} | #{if w, do: :erlang.float_to_binary(w, decimals: 2), else: "-"} |" end)}

  Against the target (CPU resolution: 1 ms in #{duration} s per round):
  - NativeGossip's CPU above no discovery no more than the Elixir baseline's: #{pct.(ng - idle)} % against #{pct.(bl - idle)} % of a core, #{if ng <= bl, do: "**met**", else: "**missed**"}
  - no busy polling: the native thread wakes #{:erlang.float_to_binary((wakeups || 0) / 1, decimals: 2)} times per second, #{if wakeups && wakeups < 10, do: "**met**", else: "**missed**"}
  """)
after
  TestRig.stop(rig)
end
