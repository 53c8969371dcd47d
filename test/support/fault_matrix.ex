defmodule NativeGossip.FaultMatrix do
  @moduledoc false
  # The faults that leave the distribution connection working (issue #26): under none
  # of them may failure detection disconnect anyone. Used by
  # test/native_gossip/multihost_failure_test.exs and bench/failover.exs, on a rig of
  # three hosts whose nodes run one topology and are connected in a mesh.

  alias NativeGossip.TestRig

  @doc "The faults, in the order they are applied: `{name, make, undo}`."
  def faults(rig, ns) do
    [c | _] = Enum.reverse(ns)

    [
      {"heartbeats lost, TCP fine (all gossip dropped on every host)",
       fn -> for i <- 1..3, do: TestRig.loss(rig, i, 100) end, fn -> clear(rig) end},
      {"30 % loss of gossip on every host", fn -> for i <- 1..3, do: TestRig.loss(rig, i, 30) end,
       fn -> clear(rig) end},
      {"60 % loss of gossip on every host", fn -> for i <- 1..3, do: TestRig.loss(rig, i, 60) end,
       fn -> clear(rig) end},
      {"one-way UDP partition (host 3 hears no gossip, the others hear it)",
       fn -> TestRig.loss(rig, 3, 100) end, fn -> clear(rig) end},
      {"a busy VM: every scheduler of node 3 at 100 % for 5 s, and a long GC",
       fn -> busy(c.peer, 5_000) end, fn -> :ok end},
      {"node 3's native thread paused for 5 s",
       fn -> :peer.call(c.peer, NativeGossip.Native, :pause_for_test, [native(c), 5_000]) end,
       fn -> :ok end}
    ]
  end

  defp native(n), do: :peer.call(n.peer, NativeGossip.Topology, :native!, [:lan])

  # No loss rule left on any host.
  defp clear(rig) do
    for i <- 1..3, do: TestRig.loss(rig, i, 0)
    :ok
  end

  # Every scheduler of the node busy for `ms` (a loop per scheduler), and one process
  # that makes a large heap and collects it (a long GC) meanwhile.
  defp busy(peer, ms) do
    :peer.call(peer, __MODULE__, :spin, [ms])
  end

  @doc false
  # Runs on the node under test.
  def spin(ms) do
    until = System.monotonic_time(:millisecond) + ms
    n = System.schedulers_online()

    for _ <- 1..n do
      spawn(fn -> loop(until) end)
    end

    spawn(fn ->
      big = Enum.to_list(1..5_000_000)
      :erlang.garbage_collect()
      _ = length(big)
    end)

    :ok
  end

  defp loop(until) do
    if System.monotonic_time(:millisecond) < until, do: loop(until), else: :ok
  end
end
