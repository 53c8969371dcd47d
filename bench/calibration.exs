# Calibration of the simulator (native_gossip_sim) against real VMs: the same
# scenarios run on test hosts and simulated, and the datagram counts per member
# compared.
#
#   1. formation: N nodes (8 and 32; SIZES) start their topology at the same moment,
#      spread round-robin over eight test hosts; each node's `stats/1` is read
#      WINDOW_MS (10 s) after the first start: datagrams received from other nodes
#      (`received - looped_back`), sent, and answers sent. Each node's engine start
#      (its incarnation: the wall clock in µs when it started; one clock, as every VM
#      runs on this machine) is handed to the simulator, which starts its nodes at
#      the same offsets;
#   2. join into 16: 15 nodes start together and settle for JOIN_SETTLE_MS (10 s),
#      then a 16th starts; every node's counters are read at its start and
#      JOIN_WINDOW_MS (two intervals, 3 s) later: the members' differences, and the
#      newcomer's own counts.
#
# Each real figure is the mean over the nodes and over TRIALS (3) runs; the simulator
# (`native-gossip-sim --calibrate`) runs each trial again with the same N, heartbeat
# interval (the default, 1500 ms), window and start times (a join: the start spread
# measured), over 20 seeds. The target: every simulated count within 15 % of the
# measured one.
#
# Run with `make bench` (root; inside a private network namespace).

alias NativeGossip.{EventRecorder, TestRig}

ints = fn var, default ->
  System.get_env(var, default) |> String.split(",") |> Enum.map(&String.to_integer/1)
end

sizes = ints.("SIZES", "8,32")
[trials] = ints.("TRIALS", "3")
[window] = ints.("WINDOW_MS", "10000")
[join_n] = ints.("JOIN_N", "16")
[settle] = ints.("JOIN_SETTLE_MS", "10000")
[join_window] = ints.("JOIN_WINDOW_MS", "3000")
hosts = 8

defmodule Bench.Calibration do
  @id {NativeGossip, :lan}
  @topology [name: :lan, secret: "calibration-benchmark-secret-0123"]

  def now, do: System.system_time(:microsecond)
  def wait(at), do: Process.sleep(max(0, div(at - now(), 1000)))

  # Each node's topology started at `at`; returns each one's start time (µs).
  def start(nodes, at) do
    nodes
    |> Enum.map(fn n ->
      Task.async(fn ->
        wait(at)
        {t0, rec} = :peer.call(n.peer, EventRecorder, :start_topology, [@topology])
        # Only the start time is used: the recorder goes (the topology stays).
        :ok = :peer.call(n.peer, EventRecorder, :stop, [rec])
        t0
      end)
    end)
    |> Enum.map(&Task.await(&1, 30_000))
  end

  # Every node's counters, read at the same moment `at`: [received, sent, answers].
  def counts(nodes, at), do: nodes |> stats(at) |> Enum.map(&elem(&1, 0))

  # Every node's counters and its engine's start (µs, its incarnation), read at `at`.
  def stats(nodes, at) do
    nodes
    |> Enum.map(fn n ->
      Task.async(fn ->
        wait(at)
        s = :peer.call(n.peer, NativeGossip, :stats, [:lan])
        {[s.received - s.looped_back, s.sent, s.answers], s.incarnation}
      end)
    end)
    |> Enum.map(&Task.await(&1, 30_000))
  end

  def stop(nodes) do
    for n <- nodes do
      :ok = :peer.call(n.peer, Supervisor, :terminate_child, [NativeGossip.Supervisor, @id])
      :ok = :peer.call(n.peer, Supervisor, :delete_child, [NativeGossip.Supervisor, @id])
    end

    # Apart again, for the next run.
    NativeGossip.BenchNetwork.apart(nodes)
  end

  def mean(rows), do: rows |> Enum.zip_with(&(Enum.sum(&1) / length(&1)))

  def diff(after_, before),
    do: Enum.zip_with(after_, before, &Enum.zip_with(&1, &2, fn a, b -> a - b end))

  # One formation: the real means per member over the window, and the simulator's for
  # the same start times.
  def formation(nodes, window) do
    go = now() + 500_000
    starts = start(nodes, go)
    at = Enum.min(starts) + window * 1000
    {counts, incarnations} = nodes |> stats(at) |> Enum.unzip()
    stop(nodes)
    first = Enum.min(incarnations)
    offsets = Enum.map_join(incarnations, ",", &(&1 - first))

    [sim] =
      simulate(["formation", length(nodes), "--starts-us", offsets], div(at - first, 1000))
      |> Map.values()

    {mean(counts), sim, (Enum.max(incarnations) - first) / 1000}
  end

  # One join: the members' means and the newcomer's counts over the window.
  def join(members, newcomer, settle, window) do
    go = now() + 500_000
    starts = start(members, go)
    at = Enum.max(starts) + settle * 1000
    # The members' counters are read 20 ms before the newcomer starts: read at its
    # start, a member that answers within milliseconds (its acknowledgement) could do
    # so before its counters are read, and its answer went uncounted. (20 ms of a
    # settled member's own traffic is about 0.2 datagrams.)
    before = Task.async(fn -> counts(members, at - 20_000) end)
    [t] = start([newcomer], at)
    after_ = counts(members ++ [newcomer], t + window * 1000)
    before = Task.await(before, 30_000)
    {m, [j]} = Enum.split(after_, length(members))
    stop(members ++ [newcomer])
    {mean(diff(m, before)), j, (Enum.max(starts) - Enum.min(starts)) / 1000}
  end

  # The simulator's counts for a run: %{{scenario, n, who} => [r, s, a]}.
  def simulate([kind, n | more], window, settle \\ 0) do
    args =
      ~w(--calibrate #{kind} --sizes #{n}) ++
        Enum.map(more, &to_string/1) ++ ~w(--settle-ms #{settle} --window-ms #{window} --seeds 20)

    {out, 0} = System.cmd(Path.expand("target/release/native-gossip-sim"), args)

    for line <- String.split(out, "\n", trim: true), into: %{} do
      [k, n, who | nums] = String.split(line)
      {{k, String.to_integer(n), who}, Enum.map(nums, &String.to_float/1)}
    end
  end
end

{_, 0} = System.cmd("cargo", ~w(build -q --release -p native_gossip_sim))
rig = TestRig.start!(hosts)

try do
  count = Enum.max([join_n | sizes])

  nodes = NativeGossip.BenchNetwork.spread_nodes(rig, count, "c", hosts)

  # Warm every VM once (the NIF and the code loaded), outside the measurements.
  Bench.Calibration.formation(nodes, 1_000)

  formation =
    for n <- sizes do
      runs = for _ <- 1..trials, do: Bench.Calibration.formation(Enum.take(nodes, n), window)
      IO.puts(:stderr, "formation of #{n}: #{inspect(runs)}")
      pick = fn k -> Enum.map(runs, &elem(&1, k)) end
      {n, Bench.Calibration.mean(pick.(0)), Bench.Calibration.mean(pick.(1)), Enum.max(pick.(2))}
    end

  {members, [newcomer | _]} = Enum.split(Enum.take(nodes, join_n), join_n - 1)

  joins =
    for _ <- 1..trials,
        do: Bench.Calibration.join(members, newcomer, settle, join_window)

  IO.puts(:stderr, "join into #{join_n}: #{inspect(joins)}")
  join_members = Bench.Calibration.mean(Enum.map(joins, &elem(&1, 0)))
  join_newcomer = Bench.Calibration.mean(Enum.map(joins, &elem(&1, 1)))
  join_spread = joins |> Enum.map(&elem(&1, 2)) |> Enum.max()
  spread = formation |> Enum.map(&elem(&1, 3)) |> Enum.max()

  join_sim =
    Bench.Calibration.simulate(
      ["join", join_n, "--spread-ms", ceil(join_spread)],
      join_window,
      settle
    )

  rows =
    Enum.map(formation, fn {n, real, sim, _} -> {"formation", n, "members", real, sim} end) ++
      [
        {"join", join_n, "members", join_members, join_sim[{"join", join_n, "members"}]},
        {"join", join_n, "newcomer", join_newcomer, join_sim[{"join", join_n, "newcomer"}]}
      ]

  f = fn v -> :erlang.float_to_binary(v / 1, decimals: 1) end

  lines =
    for {k, n, who, real, sim} <- rows,
        {what, r, s} <- Enum.zip([["received", "sent", "answers sent"], real, sim]),
        r > 0 or s > 0 do
      off = if r > 0, do: (s - r) / r * 100, else: 100.0
      {"| #{k} | #{n} | #{who} | #{what} | #{f.(r)} | #{f.(s)} | #{f.(off)} % |", abs(off), what}
    end

  worst = fn rows -> rows |> Enum.map(&elem(&1, 1)) |> Enum.max() end
  received = Enum.filter(lines, &(elem(&1, 2) == "received"))

  IO.puts("""
  Datagrams per member, real VMs (mean over the nodes and #{trials} trials) and simulated
  (each trial simulated over 20 seeds); formation over #{window} ms from the first
  start, each node simulated starting when its real engine did (the widest start
  spread: #{f.(spread)} ms), join over #{join_window} ms from the newcomer's start
  after #{settle} ms of settling.

  | scenario | N | who | datagrams | real VMs | simulator | simulator vs real |
  |---|---|---|---|---|---|---|
  #{Enum.map_join(lines, "\n", &elem(&1, 0))}

  Against the target:
  #{NativeGossip.BenchNetwork.verdicts([{"datagrams received per member (the bulk of the traffic), simulated within 15 % of measured in every scenario (largest difference, %)", worst.(received), 15}, {"every simulated count within 15 % of the measured one (largest difference, %)", worst.(lines), 15}])}
  """)
after
  TestRig.stop(rig)
end
