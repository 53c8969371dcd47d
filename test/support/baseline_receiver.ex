defmodule NativeGossip.BaselineReceiver do
  @moduledoc false
  # The comparison point of the benchmarks: the approach of the pure-Elixir gossip
  # strategies (libcluster's Gossip), a GenServer owning a gen_udp socket in active mode
  # joined to the group, which gets every datagram as a message and decodes
  # `"heartbeat::" <> term` ones with binary_to_term. Unlike libcluster's, it survives
  # junk (a rescue), so that it can be measured under a flood at all.

  use GenServer

  def start(opts), do: GenServer.start(__MODULE__, opts, name: __MODULE__)

  @impl true
  def init(opts) do
    group = Keyword.get(opts, :group, {239, 255, 45, 92})
    port = Keyword.get(opts, :port, 45_892)

    {:ok, socket} =
      :gen_udp.open(port, [
        :binary,
        active: true,
        reuseaddr: true,
        ip: group,
        add_membership: {group, {0, 0, 0, 0}},
        multicast_loop: true,
        multicast_ttl: 1
      ])

    {:ok, %{socket: socket, received: 0, heartbeats: 0}}
  end

  @impl true
  def handle_info({:udp, _socket, _ip, _port, "heartbeat::" <> term}, state) do
    state = %{state | received: state.received + 1}

    try do
      %{node: node} = :erlang.binary_to_term(term)
      _ = node
      {:noreply, %{state | heartbeats: state.heartbeats + 1}}
    rescue
      _ -> {:noreply, state}
    end
  end

  def handle_info({:udp, _socket, _ip, _port, _junk}, state),
    do: {:noreply, %{state | received: state.received + 1}}

  @impl true
  def handle_call(:received, _from, state), do: {:reply, state.received, state}
end
