defmodule ClusterDemo.Worker do
  @moduledoc "Runs tasks sent to it from any node of the cluster; one per node."
  use GenServer

  @doc "Starts the node's worker and joins it to the `:workers` group."
  @spec start_link(term()) :: GenServer.on_start()
  def start_link(_), do: GenServer.start_link(__MODULE__, nil, name: __MODULE__)

  @impl true
  def init(nil) do
    :ok = :pg.join(ClusterDemo, :workers, self())
    {:ok, 0}
  end

  @impl true
  def handle_call({:run, fun}, _from, done), do: {:reply, {node(), fun.()}, done + 1}
end
