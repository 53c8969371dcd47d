defmodule ClusterDemo.Application do
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    children = [
      # A process group scope: every node's worker joins the :workers group, and :pg
      # keeps the membership of connected nodes in sync by itself.
      %{id: :pg, start: {:pg, :start_link, [ClusterDemo]}},
      ClusterDemo.Worker
    ]

    Supervisor.start_link(children, strategy: :one_for_one, name: ClusterDemo.Supervisor)
  end
end
