# Join latency: time from a node's NativeGossip.start_link until it is connected to an
# already running peer on another host, against a bare Node.connect/1 between the same
# two nodes. Two host namespaces on a bridge (NativeGossip.TestRig); 20 trials each.
#
# Run with `make bench` (it needs root and runs inside a private network namespace).

alias NativeGossip.TestRig

trials = String.to_integer(System.get_env("TRIALS", "20"))
rig = TestRig.start!(2)

try do
  {a, a_node} = TestRig.start_node!(rig, 1)
  {b, _b_node} = TestRig.start_node!(rig, 2)
  opts = [name: :bench, secret: "bench-secret-benchmark-secret-0123"]

  {:ok, _} =
    :peer.call(a, Supervisor, :start_child, [NativeGossip.Supervisor, {NativeGossip, opts}])

  # One warm-up of each (first use loads the NIF and sets up epmd lookups).
  :peer.call(b, NativeGossip.BenchJoin, :join_once, [opts, a_node], 30_000)
  :peer.call(b, NativeGossip.BenchJoin, :connect_once, [a_node], 30_000)

  apart = fn ->
    NativeGossip.TestNet.wait_until(
      fn -> :peer.call(a, Node, :list, []) == [] and :peer.call(b, Node, :list, []) == [] end,
      5_000,
      "the nodes to be disconnected between trials"
    )
  end

  trial = fn fun, args ->
    apart.()

    case :peer.call(b, NativeGossip.BenchJoin, fun, args, 30_000) do
      us when is_integer(us) ->
        us / 1000

      :timeout ->
        raise "#{fun} timed out: #{inspect(:peer.call(a, NativeGossip, :members, [:bench]))}"
    end
  end

  # Interleaved, so that both see the same machine conditions.
  {joins, connects} =
    Enum.reduce(1..trials, {[], []}, fn i, {js, cs} ->
      j = trial.(:join_once, [opts, a_node])
      c = trial.(:connect_once, [a_node])
      if System.get_env("VERBOSE"), do: IO.puts("trial #{i}: join #{j} ms, connect #{c} ms")
      {[j | js], [c | cs]}
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

  IO.puts("""
  Join latency, #{trials} trials each, two host namespaces on a bridge (ms)

  | measure | median | p10 | p90 | min | max |
  |---|---|---|---|---|---|
  #{row.("NativeGossip: start_link until connected", j)}
  #{row.("bare Node.connect/1", c)}

  Median overhead of NativeGossip over a bare connect: #{fmt.(j.median - c.median)} ms.
  Targets, within 5 ms of the bare connect and under 20 ms: #{verdict.(j.median - c.median < 5 and j.median < 20)}.
  """)
after
  TestRig.stop(rig)
end
