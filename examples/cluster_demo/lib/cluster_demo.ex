defmodule ClusterDemo do
  @moduledoc """
  Spreads work over the nodes NativeGossip found: round robin over the workers of the
  `:workers` process group, one per node, whatever nodes have joined.

      $ RELEASE_NODE=demo@10.0.0.1 RELEASE_DISTRIBUTION=name RELEASE_COOKIE=c \\
        NATIVE_GOSSIP_SECRET=s _build/prod/rel/cluster_demo/bin/cluster_demo start
      (on a second host, the same with its own address)
      $ ... bin/cluster_demo rpc "ClusterDemo.spread(20)"
      demo@10.0.0.1 ran 10 tasks
      demo@10.0.0.2 ran 10 tasks
  """

  @doc "Runs `n` tasks over the cluster; prints and returns how many each node ran."
  @spec spread(pos_integer()) :: %{node() => non_neg_integer()}
  def spread(n) do
    workers = :pg.get_members(ClusterDemo, :workers)

    counts =
      1..n
      |> Enum.map(fn i ->
        worker = Enum.at(workers, rem(i, length(workers)))
        GenServer.call(worker, {:run, fn -> :erlang.phash2(i) end})
      end)
      |> Enum.frequencies_by(&elem(&1, 0))

    for {node, count} <- Enum.sort(counts), do: IO.puts("#{node} ran #{count} tasks")
    counts
  end
end
