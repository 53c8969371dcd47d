# When the connections of an N-node formation start and how long their handshakes
# take (a diagnostic beside bench/formation.exs, not part of `make bench`): the same rig
# (N nodes on eight test hosts, every VM warmed up), two ways interleaved trial by
# trial: NativeGossip (with a secret), and the floor (every pair connected once at the
# start, from the side NativeGossip's tie-break picks). Every connect of both goes
# through a timed Node.connect/1 (the topology's `:connect`). For each trial, in ms from
# the earliest start (each node's stamp as it wakes at the start instant, its recorder
# set up before, as bench/formation.exs counts): the full mesh, when connects started
# (median, latest), how long they took (median, p90, max), the kernel's UDP receive
# errors on the test hosts (a datagram dropped for a full buffer), and NativeGossip's
# three latest connects with when their two nodes started; then the medians over the
# trials, and how long after the later of its two nodes' starts each connect began (5 ms
# bins, by whether the connecting node started first or later).
#
# STALLS=1 runs a probe in every VM during each trial (a process that sleeps 2 ms at a
# time, `BenchNetwork.stall_probe/2`) and prints how often and for how long its timer
# came over 15 ms late (its VM off the cores, or its schedulers busy with the processes
# ahead of it): every step of a handshake, and of a discovery, waits so.
#
# DISCOVERY=1 also subscribes each NativeGossip node's recorder to its topology (which
# costs the topology two messages per peer) and splits NativeGossip's connect lag in
# two: when each node was told of each peer (`:discovered`), after the later of the two
# nodes' starts, and when a connect started after its node was told of the peer; the
# three latest connects then say when each of their two nodes was told of the other (a
# node that does not lead a pair is told only when it has to act: at the connection,
# or at its turn).
#
#   N=8 TRIALS=15 MIX_ENV=test test/support/private_net.sh mix run --no-start bench/formation_timeline.exs

alias NativeGossip.{BenchNetwork, EventRecorder, TestNet, TestRig}

timed = NativeGossip.TimedConnect

n = String.to_integer(System.get_env("N", "8"))
trials = String.to_integer(System.get_env("TRIALS", "15"))
rig = TestRig.start!(8)

try do
  nodes = BenchNetwork.spread_nodes(rig, n, "f", 8)
  names = Enum.map(nodes, & &1.node)
  call = fn nd, m, f, a -> :peer.call(nd.peer, m, f, a) end

  for nd <- nodes, do: :ok = call.(nd, timed, :table, [])

  id = {NativeGossip, :lan}

  topology = [
    name: :lan,
    secret: "formation-benchmark-secret-0123",
    connect: {timed, :connect, []}
  ]

  stop_ng = fn nd ->
    :ok = call.(nd, Supervisor, :terminate_child, [NativeGossip.Supervisor, id])
    :ok = call.(nd, Supervisor, :delete_child, [NativeGossip.Supervisor, id])
  end

  # Each returns {start µs, recorder}.
  discovery = System.get_env("DISCOVERY") != nil
  stalls? = System.get_env("STALLS") != nil

  # Every way's recorder is set up before the start instant; at it, a node does the
  # work of the way under test alone.
  ng = fn nd, go ->
    rec = call.(nd, EventRecorder, :start_nodes_only, [])

    {t, :ok} =
      call.(nd, BenchNetwork, :at, [go, EventRecorder, :launch, [rec, topology, discovery]])

    {t, rec}
  end

  floor = fn nd, go ->
    rec = call.(nd, EventRecorder, :start_nodes_only, [])
    mine = BenchNetwork.led_by(nd.node, names)
    {t, :ok} = call.(nd, BenchNetwork, :at, [go, timed, :connect_all, [mine]])
    {t, rec}
  end

  for nd <- nodes do
    {_, rec} = call.(nd, EventRecorder, :start_topology, [topology])
    stop_ng.(nd)
    :ok = call.(nd, EventRecorder, :stop, [rec])
    _ = call.(nd, timed, :take, [])
  end

  BenchNetwork.apart(nodes)
  ms = fn us -> Float.round(us / 1000, 1) end
  q = fn xs, p -> xs |> Enum.sort() |> Enum.at(round(p * (length(xs) - 1))) end
  short = fn x -> x |> Atom.to_string() |> String.split("@") |> hd() end

  # The kernel's UDP receive errors (InErrors: a full socket buffer among them), summed
  # over the test hosts (one network namespace each; read through one node per host):
  # a datagram lost there would hold a discovery back until the next packet.
  udp_errors = fn ->
    nodes
    |> Enum.uniq_by(&(&1.node |> Atom.to_string() |> String.split("@") |> List.last()))
    |> Enum.map(fn nd ->
      [_header, values] =
        call.(nd, File, :read!, ["/proc/net/snmp"])
        |> String.split("\n")
        |> Enum.filter(&String.starts_with?(&1, "Udp:"))

      values |> String.split() |> Enum.at(3) |> String.to_integer()
    end)
    |> Enum.sum()
  end

  trial = fn label, start, stop ->
    errors_before = udp_errors.()
    go = System.system_time(:microsecond) + 500_000

    if stalls? do
      for nd <- nodes,
          do: :ok = call.(nd, BenchNetwork, :stall_probe, [go - 50_000, go + 1_500_000])
    end

    started =
      nodes
      |> Enum.map(&Task.async(fn -> {&1, start.(&1, go)} end))
      |> Enum.map(&Task.await(&1, 30_000))

    TestNet.wait_until(
      fn -> Enum.all?(nodes, &(length(call.(&1, Node, :list, [])) == n - 1)) end,
      30_000,
      "formation"
    )

    t0 = started |> Enum.map(fn {_, {t, _}} -> t end) |> Enum.min()

    mesh =
      started
      |> Enum.map(fn {nd, {_, rec}} ->
        for({:nodeup, _, at} <- call.(nd, EventRecorder, :events, [rec]), do: at) |> Enum.max()
      end)
      |> Enum.max()

    connects =
      for nd <- nodes,
          {to, t1, t2, _} <- call.(nd, timed, :take, []),
          do: {nd.node, to, t1 - t0, t2 - t1}

    starts = for {_, _, s, _} <- connects, do: s
    took = for {_, _, _, d} <- connects, do: d

    IO.puts(
      "#{label}: mesh #{ms.(mesh - t0)} ms; #{length(connects)} connects started at " <>
        "#{ms.(q.(starts, 0.5))} (median), #{ms.(Enum.max(starts))} (latest); took " <>
        "#{ms.(q.(took, 0.5))} (median), #{ms.(q.(took, 0.9))} (p90), #{ms.(Enum.max(took))} " <>
        "(max); UDP receive errors #{udp_errors.() - errors_before}"
    )

    # When each node was told of each peer (DISCOVERY=1; the first `:discovered`).
    told =
      if label == "NativeGossip" and discovery do
        for {nd, {_, rec}} <- started,
            {:discovered, peer, at} <- call.(nd, EventRecorder, :events, [rec]),
            reduce: %{},
            do: (acc -> Map.put_new(acc, {nd.node, peer}, at - t0))
      else
        %{}
      end

    if label == "NativeGossip" do
      start_of = Map.new(started, fn {nd, {t, _}} -> {nd.node, ms.(t - t0)} end)

      told_of = fn x, y ->
        if at = told[{x, y}], do: "; #{short.(x)} told of #{short.(y)} at #{ms.(at)}", else: ""
      end

      for {x, y, s, d} <- connects |> Enum.sort_by(&elem(&1, 2), :desc) |> Enum.take(3) do
        IO.puts(
          "  #{short.(x)} -> #{short.(y)} at #{ms.(s)}, took #{ms.(d)}; the two started at " <>
            "#{start_of[x]} and #{start_of[y]}#{told_of.(x, y)}#{told_of.(y, x)}"
        )
      end
    end

    if stalls? do
      per_vm =
        for nd <- nodes do
          found =
            TestNet.wait_until(fn -> call.(nd, BenchNetwork, :stalls, []) end, 10_000, "stalls")

          late = for {due, l} <- found, due >= t0, due < mesh, do: l

          {length(late), Enum.sum(late) / (mesh - t0), Enum.max(late, fn -> 0 end)}
        end

      pct = &round(100 * &1)

      IO.puts(
        "  stalls: a VM's 2 ms timer came over 15 ms late #{q.(Enum.map(per_vm, &elem(&1, 0)), 0.5)} " <>
          "times (median of the VMs), for #{pct.(q.(Enum.map(per_vm, &elem(&1, 1)), 0.5))} % of the " <>
          "formation (median; most #{pct.(Enum.max(Enum.map(per_vm, &elem(&1, 1))))} %), at most " <>
          "#{ms.(Enum.max(Enum.map(per_vm, &elem(&1, 2))))} ms late"
      )
    end

    if label == "NativeGossip" and discovery do
      start_of = Map.new(started, fn {nd, {t, _}} -> {nd.node, t - t0} end)
      heard = for {{x, y}, at} <- told, do: at - max(start_of[x], start_of[y])
      acted = for {x, y, s, _} <- connects, Map.has_key?(told, {x, y}), do: s - told[{x, y}]
      qs = fn xs -> Enum.map_join([0.1, 0.5, 0.9, 1.0], " / ", &ms.(q.(xs, &1))) end

      IO.puts(
        "  told of a peer after the later start (p10 / median / p90 / max): #{qs.(heard)} ms; " <>
          "connect started after told: #{qs.(acted)} ms"
      )
    end

    for {nd, {_, rec}} <- started do
      stop.(nd)
      :ok = call.(nd, EventRecorder, :stop, [rec])
    end

    BenchNetwork.apart(nodes)
    start_us = Map.new(started, fn {nd, {t, _}} -> {nd.node, t - t0} end)

    lags =
      for {x, y, s, _} <- connects,
          do: {start_us[x] >= start_us[y], s - max(start_us[x], start_us[y])}

    {mesh - t0, Enum.max(starts), Enum.max(took), lags}
  end

  ways = [{"NativeGossip", ng, stop_ng}, {"floor", floor, fn _ -> :ok end}]

  # One formation each way first, not counted and not printed: the first makes the
  # rig's first connections and is slow (as in bench/formation.exs).
  {:ok, quiet} = StringIO.open("")
  out = Process.group_leader()
  Process.group_leader(self(), quiet)
  for {label, start, stop} <- ways, do: trial.(label, start, stop)
  Process.group_leader(self(), out)

  results =
    for t <- 1..trials, {label, start, stop} <- ways do
      IO.write("trial #{t}, ")
      {label, trial.(label, start, stop)}
    end

  for label <- ["NativeGossip", "floor"] do
    rs = for {^label, r} <- results, do: r

    for later <- [true, false] do
      lags = for {^later, lag} <- Enum.flat_map(rs, &elem(&1, 3)), do: div(lag, 5000)

      hist =
        lags
        |> Enum.frequencies()
        |> Enum.sort()
        |> Enum.map_join(" ", fn {b, c} -> "#{b * 5}:#{c}" end)

      IO.puts(
        "#{label}: connect start after the later of its two nodes' starts, by the node " <>
          "that started #{if later, do: "later", else: "first"} (ms, 5 ms bins: count): #{hist}"
      )
    end

    m = fn i -> rs |> Enum.map(&elem(&1, i)) |> q.(0.5) |> ms.() end

    IO.puts(
      "#{label}, medians of #{length(rs)} trials: mesh #{m.(0)} ms, latest connect start " <>
        "#{m.(1)} ms, longest handshake #{m.(2)} ms"
    )
  end
after
  TestRig.stop(rig)
end
