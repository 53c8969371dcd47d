defmodule NativeGossip.BenchNetwork do
  @moduledoc false
  # Helpers of bench/network.exs.

  alias NativeGossip.{EventRecorder, TestNet, TestRig}

  def now, do: System.system_time(:microsecond)

  def start_nodes(rig, hosts, topology) do
    for i <- hosts do
      {peer, node} = TestRig.start_node!(rig, i)
      {_t0, recorder} = :peer.call(peer, EventRecorder, :start_topology, [topology])
      %{i: i, peer: peer, node: node, recorder: recorder}
    end
  end

  def nodes(n), do: :peer.call(n.peer, Node, :list, [])

  def wait_mesh(ns) do
    all = Enum.map(ns, & &1.node)

    TestNet.wait_until(
      fn -> Enum.all?(ns, fn n -> Enum.sort(nodes(n)) == Enum.sort(all -- [n.node]) end) end,
      30_000,
      "a full mesh"
    )
  end

  @doc """
  Every node of `nodes` (maps with `:peer`) disconnected from every other, waiting out
  global's handshake first: apart again between the trials of a benchmark.
  """
  def apart(nodes) do
    Process.sleep(300)

    for n <- nodes do
      :peer.call(n.peer, Enum, :each, [
        :peer.call(n.peer, Node, :list, []),
        &:erlang.disconnect_node/1
      ])
    end

    TestNet.wait_until(
      fn -> Enum.all?(nodes, &(:peer.call(&1.peer, Node, :list, []) == [])) end,
      20_000,
      "the nodes to be apart"
    )
  end

  def event_after(n, event, node, since, recorder \\ nil) do
    rec = recorder || n.recorder

    TestNet.wait_until(
      fn ->
        :peer.call(n.peer, EventRecorder, :events, [rec])
        |> Enum.find_value(fn {e, nd, at} -> e == event and nd == node and at > since and at end)
      end,
      30_000,
      "#{event} of #{node} at #{n.node}"
    )
  end

  def stats(xs) do
    s = Enum.sort(xs)
    n = length(s)
    pick = fn q -> Enum.at(s, min(n - 1, round(q * (n - 1)))) end
    %{n: n, median: pick.(0.5), p10: pick.(0.1), p90: pick.(0.9), min: hd(s), max: List.last(s)}
  end

  def row(label, xs) do
    s = stats(xs)
    f = fn x -> :erlang.float_to_binary(x / 1, decimals: 1) end

    "| #{label} | #{s.n} | #{f.(s.median)} | #{f.(s.p10)} | #{f.(s.p90)} | #{f.(s.min)} | #{f.(s.max)} |"
  end

  @doc """
  Bullet lines, one per target: `{label, value, limit}` is met when value < limit (or
  value >= n for `{:at_least, n}`), said as **met** or **missed** with the value.
  """
  def verdicts(targets) do
    Enum.map_join(targets, "\n", fn {label, value, limit} ->
      ok? =
        case limit do
          {:at_least, n} -> value >= n
          n -> value < n
        end

      shown = if is_float(value), do: :erlang.float_to_binary(value, decimals: 1), else: value
      "- #{label}: #{shown}, #{if ok?, do: "**met**", else: "**missed**"}"
    end)
  end

  @doc """
  Runs on a node (a diagnostic): what topology `name`'s server is doing, sampled every
  `ms` for `n` samples from the moment it exists: `:idle` (waiting for a message, none
  queued), or `{top, caller}`: the function it is in and the NativeGossip function
  that called it.
  """
  def sample(name, ms, n) do
    pid = server(name)

    for _ <- 1..n do
      Process.sleep(ms)

      case Process.info(pid, [:current_stacktrace, :message_queue_len]) do
        [current_stacktrace: [{:gen_server, :loop, _, _} | _], message_queue_len: 0] -> :idle
        [current_stacktrace: stack, message_queue_len: _] -> where(stack)
        nil -> :gone
      end
    end
  end

  defp server(name) do
    case Registry.lookup(NativeGossip.Registry, name) do
      [{pid, _}] -> pid
      _ -> Process.sleep(1) && server(name)
    end
  end

  defp where([{m, f, a, _} | _] = stack) do
    mfa = fn {m, f, a, _} -> "#{inspect(m)}.#{f}/#{if is_list(a), do: length(a), else: a}" end

    ours =
      Enum.find(stack, fn {m, _, _, _} -> String.starts_with?(inspect(m), "NativeGossip") end)

    {mfa.({m, f, a, nil}), if(ours, do: mfa.(ours), else: "-")}
  end

  @doc """
  The join benchmarks' nodes: `n` running nodes spread over hosts 1-7 of `rig`, and a
  joiner on host 8. Returns `{running, joiner_peer, joiner_node}`.
  """
  def join_rig(rig, n) do
    running = spread_nodes(rig, n, "r", 7)
    {j, joiner} = TestRig.start_node!(rig, 8, name: "joiner")
    {running, j, joiner}
  end

  @doc """
  `n` nodes named `prefix` and 1..n, spread round-robin over hosts 1..`hosts` of `rig`,
  as `%{peer: peer, node: node}`.
  """
  def spread_nodes(rig, n, prefix, hosts) do
    for k <- 1..n do
      {peer, node} = TestRig.start_node!(rig, rem(k - 1, hosts) + 1, name: "#{prefix}#{k}")
      %{peer: peer, node: node}
    end
  end

  @doc """
  Loads every module of the applications loaded on this node, as a release in embedded
  mode has them at boot: a benchmark that measures warm VMs then does not load code
  lazily in the middle of its first trial (a VM in interactive mode loads a module at its
  first call, through the code server and the file system).
  """
  def preload do
    for {app, _, _} <- Application.loaded_applications(),
        mod <- Application.spec(app, :modules) || [],
        do: Code.ensure_loaded(mod)

    :ok
  end

  @doc "Disconnects the joiner `j` from every node, after a moment for work in flight."
  def join_apart(j) do
    Process.sleep(300)
    :peer.call(j, Enum, :each, [:peer.call(j, Node, :list, []), &:erlang.disconnect_node/1])
    TestNet.wait_until(fn -> :peer.call(j, Node, :list, []) == [] end, 20_000, "the joiner alone")
  end

  @doc """
  The nodes of `names` that `node` leads by the tie-break between two nodes alike (both
  new: a simultaneous start), the pair's coin of docs/PROTOCOL.md ("Connecting"): the
  floor of the formation benchmarks connects each pair once, from the side NativeGossip
  would connect it, so that every node starts about half of its handshakes.
  """
  def led_by(node, names), do: Enum.filter(names, &(&1 != node and first_leads?(node, &1)))

  @doc "Whether the node named `a` leads the pair with `b` (`Engine::first_leads`)."
  def first_leads?(a, b) do
    {a, b} = {to_string(a), to_string(b)}
    [smaller, larger] = Enum.sort([a, b])
    <<_::7, bit::1, _::binary>> = :crypto.hash(:sha256, [smaller, 0, larger])
    a == smaller == (bit == 0)
  end

  @doc """
  Runs on a node: waits until the wall-clock time `go` (µs), then applies `m.f(a)` and
  returns `{wall_us_just_before, result}`. The wait is on the node itself, so that every
  node of a trial starts at `go` by its own clock: a controller that waits for `go` and
  then calls 32 nodes reached some of them over 100 ms late, while the first ones' work
  had the cores.
  """
  def at(go, m, f, a) do
    Process.sleep(max(0, div(go - now(), 1000)))
    t0 = now()
    {t0, apply(m, f, a)}
  end

  @doc """
  Runs on a node: a process that wakes every 2 ms from `from` to `until` (system time,
  µs) and keeps every wake-up that came over 15 ms late, as `{due µs, lateness µs}`,
  in `:persistent_term` (`stalls/0`): when this VM was off the cores, or its schedulers
  were busy with the processes ahead of it. What an earlier probe found is forgotten.
  """
  def stall_probe(from, until) do
    _ = :persistent_term.erase({__MODULE__, :stalls})

    spawn(fn ->
      Process.sleep(max(0, div(from - now(), 1000)))
      :persistent_term.put({__MODULE__, :stalls}, stall_loop(now(), [], until))
    end)

    :ok
  end

  defp stall_loop(last, stalls, until) do
    Process.sleep(2)
    t = now()
    stalls = if t - last > 17_000, do: [{last + 2_000, t - last - 2_000} | stalls], else: stalls
    if t > until, do: Enum.reverse(stalls), else: stall_loop(t, stalls, until)
  end

  @doc "What the last `stall_probe/2` found, or nil until it has finished."
  def stalls, do: :persistent_term.get({__MODULE__, :stalls}, nil)

  @doc "Runs on a node: connects to every node of `others` at once, each in its own process."
  def connect_all(others) do
    for other <- others, do: spawn(fn -> connect(other, 10) end)
    :ok
  end

  # A connect that fails under load (a handshake timing out with 32 VMs on 2 cores) is
  # tried again, so that the floor completes; a success the first time is the rule.
  defp connect(node, 0), do: Node.connect(node)

  defp connect(node, tries) do
    Node.connect(node) || (Process.sleep(20) && connect(node, tries - 1))
  end

  @doc "CPU time of OS process `os_pid` (all its threads), in clock ticks (1/100 s)."
  def cpu_ticks(os_pid) do
    [utime, stime] = File.read!("/proc/#{os_pid}/stat") |> String.split() |> Enum.slice(13, 2)
    String.to_integer(utime) + String.to_integer(stime)
  end

  @doc """
  The CPU time, in nanoseconds, of each thread of OS process `os_pid`, and how many
  times it was put on a CPU (`runs`: every wake-up is one), as
  `%{tid => {class, ns, runs}}` (from /proc/<pid>/task/<tid>/schedstat, precise where
  the 10 ms ticks of `stat` would round a short-lived thread down to nothing), `class`
  one of `"schedulers"`, `"dirty schedulers"`, `"native_gossip"` and `"other"` (from
  the thread's name).
  """
  def thread_ticks(os_pid) do
    for tid <- File.ls!("/proc/#{os_pid}/task"),
        {:ok, stat} <- [File.read("/proc/#{os_pid}/task/#{tid}/stat")],
        {:ok, sched} <- [File.read("/proc/#{os_pid}/task/#{tid}/schedstat")],
        into: %{} do
      [_, comm] = Regex.run(~r/^\d+ \((.*)\) /s, stat)
      [ns, _waited, runs | _] = String.split(sched)
      {tid, {thread_class(comm), String.to_integer(ns), String.to_integer(runs)}}
    end
  end

  @doc """
  The reductions so far of this VM's processes, as `{total, %{pid => {label, reductions}}}`:
  `total` from `:erlang.statistics(:exact_reductions)` (it counts processes that have
  exited too), `label` the registered name or the initial call.
  """
  def reductions do
    {total, _} = :erlang.statistics(:exact_reductions)

    procs =
      for pid <- Process.list(),
          info = Process.info(pid, [:registered_name, :dictionary, :initial_call, :reductions]),
          info != nil,
          into: %{} do
        {pid, {process_label(info), info[:reductions]}}
      end

    {total, procs}
  end

  @doc "Reductions by process label between two `reductions/0` readings; exited processes as `:exited`."
  def reductions_by_label({t0, before}, {t1, later}) do
    by_label =
      Enum.reduce(later, %{}, fn {pid, {label, r}}, acc ->
        r0 =
          case before do
            %{^pid => {_, r0}} -> r0
            _ -> 0
          end

        Map.update(acc, label, r - r0, &(&1 + r - r0))
      end)

    live = by_label |> Map.values() |> Enum.sum()
    Map.put(by_label, :exited_or_gone, t1 - t0 - live)
  end

  defp process_label(info) do
    case info[:registered_name] do
      name when is_atom(name) and name != [] ->
        name

      _ ->
        case info[:dictionary][:"$initial_call"] do
          {m, f, a} -> {m, f, a}
          nil -> info[:initial_call]
        end
    end
  end

  @doc "CPU nanoseconds by thread class between two `thread_ticks/1` readings (new threads from 0)."
  def ticks_by_class(before, later), do: by_class(before, later, 1)

  @doc "Runs on a CPU (wake-ups) by thread class between two `thread_ticks/1` readings."
  def runs_by_class(before, later), do: by_class(before, later, 2)

  defp by_class(before, later, field) do
    Enum.reduce(later, %{}, fn {tid, {class, _, _} = now}, acc ->
      t = elem(now, field)

      t0 =
        case before do
          %{^tid => then} -> elem(then, field)
          _ -> 0
        end

      Map.update(acc, class, t - t0, &(&1 + t - t0))
    end)
  end

  defp thread_class(comm) do
    cond do
      comm == "native_gossip" -> "native_gossip"
      comm =~ ~r/^\d+_dirty/ -> "dirty schedulers"
      comm =~ ~r/^\d+_scheduler/ -> "schedulers"
      true -> "other"
    end
  end

  @doc "Starts, on a node, a NativeGossip topology and the pure-Elixir baseline beside it."
  def start_strategies(peer, topology) do
    {:ok, _} =
      :peer.call(peer, Supervisor, :start_child, [
        NativeGossip.Supervisor,
        {NativeGossip, topology}
      ])

    {:ok, _} = :peer.call(peer, NativeGossip.BaselineGossip, :start, [])
    :ok
  end
end
