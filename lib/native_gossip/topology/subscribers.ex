defmodule NativeGossip.Topology.Subscribers do
  @moduledoc false
  # The processes subscribed to a topology's peer events (NativeGossip.subscribe/1),
  # each with the monitor that removes it when it goes.

  alias NativeGossip.Connector

  @type t :: %{pid() => reference()}

  @doc """
  Subscribes `pid`, replaying what is already known first: a subscriber always comes
  after the topology's start, and peers may have been heard in between. Peers that
  left or were lost (`gone`, as members/2 says) are known until forgotten, but are not
  discovered now: they are not replayed. Subscribing twice changes nothing.
  """
  @spec add(t(), pid(), atom(), Connector.t(), (() -> MapSet.t(node()))) :: t()
  def add(subscribers, pid, _name, _connector, _gone) when is_map_key(subscribers, pid),
    do: subscribers

  def add(subscribers, pid, name, connector, gone) do
    gone = gone.()

    Enum.each(Connector.status(connector), fn {node, status} ->
      unless MapSet.member?(gone, node) do
        send(pid, {:native_gossip, name, :discovered, node})
        if status == :connected, do: send(pid, {:native_gossip, name, :connected, node})
      end
    end)

    Map.put(subscribers, pid, Process.monitor(pid))
  end

  @doc "Unsubscribes `pid` (if it was)."
  @spec delete(t(), pid()) :: t()
  def delete(subscribers, pid) do
    {ref, subscribers} = Map.pop(subscribers, pid)
    if ref, do: Process.demonitor(ref, [:flush])
    subscribers
  end
end
