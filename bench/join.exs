# Join latency: time from a node's NativeGossip.start_link until it is connected to an
# already running peer on another host, against a bare Node.connect/1 between the same
# two nodes; and the same for a second pair of nodes that run without epmd
# (`-start_epmd false -epmd_module Elixir.NativeGossip.EPMD`, on two hosts where no epmd
# runs: the port comes from the heartbeats). Four host namespaces on a bridge
# (NativeGossip.TestRig); 20 trials each, all four kinds interleaved.
#
# Run with `make bench` (it needs root and runs inside a private network namespace).

alias NativeGossip.TestRig

trials = String.to_integer(System.get_env("TRIALS", "20"))
rig = TestRig.start!(4)
no_epmd = [~c"-start_epmd", ~c"false", ~c"-epmd_module", ~c"Elixir.NativeGossip.EPMD"]

try do
  {a, a_node} = TestRig.start_node!(rig, 1)
  {b, _b_node} = TestRig.start_node!(rig, 2)
  {a2, a2_node} = TestRig.start_node!(rig, 3, erl_args: no_epmd)
  {b2, b2_node} = TestRig.start_node!(rig, 4, erl_args: no_epmd)
  opts = [name: :bench, secret: "bench-secret-benchmark-secret-0123"]
  # The pair without epmd on a port of its own: the two pairs must not meet.
  opts2 = Keyword.put(opts, :port, 45_900)

  for {node, o} <- [{a, opts}, {a2, opts2}],
      do:
        {:ok, _} =
          :peer.call(node, Supervisor, :start_child, [
            NativeGossip.Supervisor,
            {NativeGossip, o}
          ])

  # One warm-up of each (first use loads the NIF and sets up epmd lookups; without
  # epmd, b2 learns a2's port from the warm-up's heartbeats, which the bare connect
  # without epmd then uses).
  for {joiner, target, o} <- [{b, a_node, opts}, {b2, a2_node, opts2}] do
    :peer.call(joiner, NativeGossip.BenchJoin, :join_once, [o, target], 30_000)
    :peer.call(joiner, NativeGossip.BenchJoin, :connect_once, [target], 30_000)
  end

  # The bare connect without epmd needs a2's port on b2: a topology that ran there a
  # moment taught it (NativeGossip.EPMD keeps what it learned). Without this, whether
  # b2 had learned it depends on whether its topology took a2's answer before the join
  # trial stopped it (a2, the running node, makes the connect).
  learner = Keyword.put(opts2, :name, :learner)

  {:ok, _} =
    :peer.call(b2, Supervisor, :start_child, [NativeGossip.Supervisor, {NativeGossip, learner}])

  # Until b2 knows a2's port, and a2 (running, so it leads towards the newcomer) has
  # connected to it: an attempt still in flight when the bench disconnects them below
  # would tie them again afterwards.
  NativeGossip.TestNet.wait_until(
    fn ->
      :peer.call(b2, NativeGossip.EPMD, :known, []) != [] and
        b2_node in :peer.call(a2, Node, :list, [])
    end,
    5_000,
    "b2 to learn a2's port and a2 to connect to b2"
  )

  :ok =
    :peer.call(b2, Supervisor, :terminate_child, [
      NativeGossip.Supervisor,
      {NativeGossip, :learner}
    ])

  :ok =
    :peer.call(b2, Supervisor, :delete_child, [NativeGossip.Supervisor, {NativeGossip, :learner}])

  # Until `target` has taken the goodbye of `joiner_node`'s topology: disconnected
  # before that, the target would still count it a running peer and connect again.
  took_goodbye = fn target, joiner_node ->
    NativeGossip.TestNet.wait_until(
      fn ->
        :peer.call(target, NativeGossip, :members, [:bench])
        |> Enum.all?(&(&1.node != joiner_node or &1.state == :left))
      end,
      5_000,
      "#{joiner_node}'s goodbye to be taken"
    )
  end

  took_goodbye.(a2, b2_node)

  for x <- [a, a2],
      n <- :peer.call(x, Node, :list, []),
      do: :peer.call(x, :erlang, :disconnect_node, [n])

  # Apart between trials: the target has taken the joiner's goodbye (after a join
  # trial; a heartbeat of the joiner still in flight when the trial disconnected them
  # could make the target connect again before it), and the pair is disconnected,
  # again if a connect the target started before the goodbye came up afterwards.
  apart = fn x, y ->
    lists = fn ->
      for p <- [x, y], do: {:peer.call(p, Node, :self, []), :peer.call(p, Node, :list, [])}
    end

    took_goodbye.(y, :peer.call(x, Node, :self, []))

    NativeGossip.TestNet.wait_until(
      fn ->
        for {p, {_, nodes}} <- Enum.zip([x, y], lists.()),
            n <- nodes,
            do: :peer.call(p, :erlang, :disconnect_node, [n])

        Process.sleep(20)
        Enum.all?(lists.(), &(elem(&1, 1) == []))
      end,
      5_000,
      fn -> "the nodes to be disconnected between trials (still: #{inspect(lists.())})" end
    )

    # And settled: a connect at once after a disconnect sometimes failed (the pair
    # without epmd, about one trial in ten; global's clean-up on the other side, it
    # seems), which says nothing about discovery.
    Process.sleep(300)
  end

  trial = fn {joiner, target}, fun, args ->
    apart.(joiner, target)

    case :peer.call(joiner, NativeGossip.BenchJoin, fun, args, 30_000) do
      us when is_integer(us) ->
        us / 1000

      :timeout ->
        raise "#{fun} timed out: #{inspect(:peer.call(target, NativeGossip, :members, [:bench]))}"
    end
  end

  # Interleaved, so that all see the same machine conditions.
  {joins, connects, joins2, connects2} =
    Enum.reduce(1..trials, {[], [], [], []}, fn i, {js, cs, js2, cs2} ->
      j = trial.({b, a}, :join_once, [opts, a_node])
      c = trial.({b, a}, :connect_once, [a_node])
      j2 = trial.({b2, a2}, :join_once, [opts2, a2_node])
      c2 = trial.({b2, a2}, :connect_once, [a2_node])

      if System.get_env("VERBOSE"),
        do: IO.puts("trial #{i}: join #{j} ms, connect #{c} ms; without epmd #{j2}, #{c2} ms")

      {[j | js], [c | cs], [j2 | js2], [c2 | cs2]}
    end)

  stats = fn xs ->
    s = Enum.sort(xs)
    n = length(s)
    pick = fn q -> Enum.at(s, min(n - 1, round(q * (n - 1)))) end
    %{median: pick.(0.5), p10: pick.(0.1), p90: pick.(0.9), min: hd(s), max: List.last(s)}
  end

  fmt = fn x -> :erlang.float_to_binary(x, decimals: 2) end

  row = fn label, s ->
    "| #{label} | #{fmt.(s.median)} | #{fmt.(s.p10)} | #{fmt.(s.p90)} | #{fmt.(s.min)} | #{fmt.(s.max)} |"
  end

  verdict = fn ok? -> if ok?, do: "**met**", else: "**missed**" end
  j = stats.(joins)
  c = stats.(connects)
  j2 = stats.(joins2)
  c2 = stats.(connects2)

  IO.puts("""
  Join latency, #{trials} trials each, host namespaces on a bridge, a pair of nodes each way (ms)

  | measure | median | p10 | p90 | min | max |
  |---|---|---|---|---|---|
  #{row.("NativeGossip: start_link until connected", j)}
  #{row.("bare Node.connect/1", c)}
  #{row.("NativeGossip without epmd (NativeGossip.EPMD): start_link until connected", j2)}
  #{row.("bare Node.connect/1 without epmd (the port learned before)", c2)}

  Median overhead of NativeGossip over a bare connect: #{fmt.(j.median - c.median)} ms.
  Without epmd, NativeGossip's join against its join with epmd: #{fmt.(j2.median - j.median)} ms.
  Targets, within 5 ms of the bare connect and under 20 ms: #{verdict.(j.median - c.median < 5 and j.median < 20)}.
  """)
after
  TestRig.stop(rig)
end
