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
