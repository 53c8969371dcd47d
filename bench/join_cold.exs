# Cold join: what a user sees when a node boots and joins. Two host namespaces; on
# host 1 a running node with a NativeGossip topology and the pure-Elixir baseline
# gossip (NativeGossip.BaselineGossip, libcluster's Gossip design). Each trial boots a
# fresh VM on host 2 (`erl` in interactive mode, as `iex -S mix` and `mix run` are:
# modules load on first use), starts the application, then times one of:
#
# - NativeGossip: `NativeGossip.start_link/1` until `{:nodeup, a}`, with a secret and
#   without one (what a libcluster Gossip user switching over has by default; host 1
#   runs a second topology without one, on its own port);
# - the same after loading every module of the loaded applications first, as a release
#   does at boot in embedded mode ("preloaded");
# - the baseline: its start until `{:nodeup, a}`;
# - the floor: a bare `Node.connect/1` to a, in a fresh VM too.
#
# The kinds are interleaved trial by trial, so they see the same machine. Run with
# `make bench` (root; inside a private network namespace). TRIALS (default 9).

alias NativeGossip.{BaselineGossip, TestNet, TestRig}

trials = String.to_integer(System.get_env("TRIALS", "9"))
rig = TestRig.start!(2)

try do
  {a, a_node} = TestRig.start_node!(rig, 1, name: "running")
  opts = [name: :bench, secret: "bench-secret-benchmark-secret-0123"]
  open = [name: :bench_open, port: 45_894]

  for o <- [opts, open] do
    {:ok, _} =
      :peer.call(a, Supervisor, :start_child, [NativeGossip.Supervisor, {NativeGossip, o}])
  end

  {:ok, _} = :peer.call(a, BaselineGossip, :start, [])

  kinds = [
    {"NativeGossip, interactive (`iex -S mix`)", :native, false, opts},
    {"NativeGossip, preloaded (a release)", :native, true, opts},
    {"NativeGossip without a secret, interactive", :native, false, open},
    {"NativeGossip without a secret, preloaded", :native, true, open},
    {"pure-Elixir gossip (libcluster's design), interactive", :baseline, false, opts},
    {"pure-Elixir gossip, preloaded", :baseline, true, opts},
    {"bare `Node.connect/1` (the floor), interactive", :connect, false, opts}
  ]

  # KINDS=0,2,4: only those rows (for a quick comparison).
  kinds =
    case System.get_env("KINDS") do
      nil -> kinds
      list -> for i <- String.split(list, ","), do: Enum.at(kinds, String.to_integer(i))
    end

  diag = System.get_env("DIAG") != nil
  if diag, do: :ok = :peer.call(a, NativeGossip.BenchJoin, :trace_connects, [])

  # The new VMs log at :info (see BenchJoin.cold/4): their output goes to a device that
  # discards it, not into this table.
  discard = NativeGossip.BenchJoin.discard_device()

  trial = fn {_, kind, preload, opts}, i ->
    gl = Process.group_leader()
    Process.group_leader(self(), discard)
    {b, _} = TestRig.start_node!(rig, 2, name: "cold#{i}#{kind}#{preload}#{opts[:name]}")
    Process.group_leader(self(), gl)

    if diag and kind == :connect,
      do: :ok = :peer.call(b, NativeGossip.BenchJoin, :trace_connects, [])

    result = :peer.call(b, NativeGossip.BenchJoin, :cold, [kind, opts, a_node, preload], 30_000)
    b_node = :peer.call(b, Node, :self, [])

    # DIAG=1: when the running node asked its net_kernel to connect to the new one (the
    # floor's connect goes the other way: the new node asks its own).
    with true <- diag, {total, _, os_t0} <- result do
      requested =
        case kind do
          :connect -> :peer.call(b, NativeGossip.BenchJoin, :connect_requests, [])[a_node]
          _ -> :peer.call(a, NativeGossip.BenchJoin, :connect_requests, [])[b_node]
        end

      if requested,
        do:
          IO.puts(
            "  #{kind}#{if preload, do: " preloaded"}: connected after #{total / 1000} ms; connect asked for after #{(requested - os_t0) / 1000} ms"
          )
    end

    :peer.stop(b)
    TestNet.wait_until(fn -> :peer.call(a, Node, :list, []) == [] end, 10_000, "b to go")

    case result do
      {total, started, _} -> {total / 1000, started / 1000}
      :timeout -> raise "#{kind} timed out"
    end
  end

  results =
    Enum.reduce(1..trials, %{}, fn i, acc ->
      Enum.reduce(kinds, acc, fn k, acc ->
        r = trial.(k, i)
        Map.update(acc, k, [r], &[r | &1])
      end)
    end)

  median = fn xs -> xs |> Enum.sort() |> Enum.at(div(length(xs), 2)) end
  fmt = fn x -> :erlang.float_to_binary(x, decimals: 1) end

  rows =
    for {label, _, _, _} = k <- kinds do
      rs = results[k]
      totals = Enum.map(rs, &elem(&1, 0))
      starts = Enum.map(rs, &elem(&1, 1))

      {label, median.(totals),
       "| #{label} | #{fmt.(median.(totals))} | #{fmt.(Enum.min(totals))}–#{fmt.(Enum.max(totals))} | #{fmt.(median.(starts))} |"}
    end

  m = Map.new(rows, fn {label, med, _} -> {label, med} end)
  med = fn i -> m[elem(Enum.at(kinds, i), 0)] end

  IO.puts("""
  Cold join: a fresh VM each trial, #{trials} trials of each kind, interleaved (ms)

  | joining node | median, start to connected | min–max | median of the start call alone |
  |---|---|---|---|
  #{Enum.map_join(rows, "\n", &elem(&1, 2))}

  #{if length(kinds) == 7, do: "Against the targets:\n" <> NativeGossip.BenchNetwork.verdicts([{"interactive: no slower than the baseline's cold join (ms over it)", med.(0) - med.(4), 0.001}, {"preloaded: no slower than the baseline preloaded (ms over it)", med.(1) - med.(5), 0.001}, {"without a secret, interactive: no slower than the baseline's cold join (ms over it)", med.(2) - med.(4), 0.001}, {"within 3 ms of the cold bare connect (ms over it, interactive)", med.(0) - med.(6), 3}]), else: ""}
  """)
after
  TestRig.stop(rig)
end
