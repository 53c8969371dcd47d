# Where a join into 16 nodes spends its time (a diagnostic beside bench/join_n.exs, not
# part of `make bench`): the same rig (16 running nodes on hosts 1-7, every one running
# a NativeGossip topology, the joiner on host 8), and for each trial, in ms from just
# before the joiner starts: when its engine started (its incarnation), when the
# running nodes announced it `:discovered` (a subscriber on each), when they and the
# joiner saw its connections come up; then the same joiner connecting to all 16 itself
# (the floor of bench/join_n.exs). Medians over the trials, the first two left out.
#
#   MIX_ENV=test test/support/private_net.sh mix run --no-start bench/join_timeline.exs

alias NativeGossip.{BenchNetwork, EventRecorder, TestNet, TestRig}

n = String.to_integer(System.get_env("N", "16"))
trials = String.to_integer(System.get_env("TRIALS", "12"))
rig = TestRig.start!(8)

try do
  topology = [name: :lan, secret: "join-benchmark-secret-0123"]
  id = {NativeGossip, :lan}
  timed = NativeGossip.TimedConnect

  {running, j, joiner} = BenchNetwork.join_rig(rig, n)
  for r <- running, do: :ok = BenchNetwork.start_strategies(r.peer, topology)
  :ok = :peer.call(j, timed, :table, [])
  # The joiner's connects (and the floor's) through a timed Node.connect/1.
  joiner_topology = topology ++ [connect: {timed, :connect, []}]

  # The joiner's connects since the last take: {start ms, handshake ms} after `t0`.
  connects = fn t0 ->
    for {_, t1, t2, _} <- :peer.call(j, timed, :take, []),
        do: {(t1 - t0) / 1000, (t2 - t1) / 1000}
  end

  Process.sleep(3_000)
  targets = Enum.map(running, & &1.node)

  # The events of a recorder about `who` (a node or the running nodes), after `t0`, as
  # {event, ms since t0}.
  events = fn peer, rec, who, t0 ->
    for {event, node, at} when at >= t0 <- :peer.call(peer, EventRecorder, :events, [rec]),
        node in who,
        do: {event, (at - t0) / 1000}
  end

  at = fn evs, kind -> for {^kind, ms} <- evs, do: ms end

  apart = fn -> BenchNetwork.join_apart(j) end

  median = fn xs -> xs |> Enum.sort() |> Enum.at(div(length(xs), 2)) end

  rows =
    for _ <- 1..trials do
      subscribers =
        for r <- running,
            do: {r, elem(:peer.call(r.peer, EventRecorder, :start_subscriber, [:lan]), 1)}

      _ = :peer.call(j, timed, :take, [])
      {t0, rec} = :peer.call(j, EventRecorder, :start_topology, [joiner_topology])

      TestNet.wait_until(
        fn -> length(at.(events.(j, rec, targets, t0), :nodeup)) >= n end,
        10_000,
        "the joiner connected"
      )

      incarnation = :peer.call(j, NativeGossip, :stats, [:lan]).incarnation
      ups = at.(events.(j, rec, targets, t0), :nodeup)
      {ng_starts, ng_took} = t0 |> connects.() |> Enum.unzip()
      :ok = :peer.call(j, EventRecorder, :stop, [rec])

      theirs =
        Enum.flat_map(subscribers, fn {r, s} ->
          evs = events.(r.peer, s, [joiner], t0)
          :ok = :peer.call(r.peer, EventRecorder, :stop, [s])
          evs
        end)

      :ok = :peer.call(j, Supervisor, :terminate_child, [NativeGossip.Supervisor, id])
      :ok = :peer.call(j, Supervisor, :delete_child, [NativeGossip.Supervisor, id])
      apart.()

      rec = :peer.call(j, EventRecorder, :start_nodes_only, [])
      t1 = System.system_time(:microsecond)
      :ok = :peer.call(j, timed, :connect_all, [targets])

      TestNet.wait_until(
        fn -> length(at.(events.(j, rec, targets, t1), :nodeup)) >= n end,
        10_000,
        "the floor's connects"
      )

      floor = at.(events.(j, rec, targets, t1), :nodeup)
      {floor_starts, floor_took} = t1 |> connects.() |> Enum.unzip()
      :ok = :peer.call(j, EventRecorder, :stop, [rec])
      apart.()
      discovered = at.(theirs, :discovered)
      up = at.(theirs, :nodeup)

      [
        {"joiner's engine started", (incarnation - t0) / 1000},
        {"running nodes announce it :discovered: first", Enum.min(discovered)},
        {"  median", median.(discovered)},
        {"  last", Enum.max(discovered)},
        {"their nodeup of it: first", Enum.min(up)},
        {"  last", Enum.max(up)},
        {"joiner's connects start: first", Enum.min(ng_starts)},
        {"  median", median.(ng_starts)},
        {"  last", Enum.max(ng_starts)},
        {"  their handshakes: median", median.(ng_took)},
        {"  longest", Enum.max(ng_took)},
        {"joiner's nodeups: first", Enum.min(ups)},
        {"  median", median.(ups)},
        {"  last", Enum.max(ups)},
        {"floor (joiner connects to all): connects start: first", Enum.min(floor_starts)},
        {"  last", Enum.max(floor_starts)},
        {"  their handshakes: median", median.(floor_took)},
        {"  longest", Enum.max(floor_took)},
        {"  first nodeup", Enum.min(floor)},
        {"  median", median.(floor)},
        {"  last", Enum.max(floor)}
      ]
    end

  rows = Enum.drop(rows, 2)

  IO.puts("Join into #{n}: ms from just before the start (medians of #{length(rows)} trials)\n")

  for {{label, _}, k} <- Enum.with_index(hd(rows)) do
    ms = median.(Enum.map(rows, &elem(Enum.at(&1, k), 1)))
    IO.puts("- #{label}: #{:erlang.float_to_binary(ms / 1, decimals: 1)}")
  end
after
  TestRig.stop(rig)
end
