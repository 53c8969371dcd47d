defmodule NativeGossip.Application do
  @moduledoc false
  # Starts the registry that names topologies and the topologies configured under
  # `config :native_gossip, topologies: [...]`. None configured: nothing else starts.

  use Application

  @impl true
  def start(_type, _args) do
    topologies =
      for {name, opts} <- Application.get_env(:native_gossip, :topologies, []) do
        NativeGossip.child_spec(Keyword.put(opts, :name, name))
      end

    children = [{Registry, keys: :unique, name: NativeGossip.Registry} | topologies]
    Supervisor.start_link(children, strategy: :one_for_one, name: NativeGossip.Supervisor)
  end
end
