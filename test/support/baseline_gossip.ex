defmodule NativeGossip.BaselineGossip do
  @moduledoc false
  # The comparison point for discovery: a pure-Elixir multicast strategy as
  # libcluster's Gossip works (see ../shared/notes/libcluster.md): a gen_udp socket in
  # active mode, a heartbeat `"heartbeat::" <> term_to_binary(%{node: node()})` at
  # start and then every random 1-5000 ms, and, on a heartbeat from a node not yet
  # connected, a Node.connect/1 inside the GenServer. Unlike libcluster's, it survives
  # junk. Its own port, so it never sees NativeGossip's traffic.

  use GenServer

  @group {239, 255, 45, 93}
  @port 45_893

  def start(opts \\ []), do: GenServer.start(__MODULE__, opts, name: __MODULE__)

  def stop, do: GenServer.stop(__MODULE__)

  @impl true
  def init(opts) do
    {:ok, socket} =
      :gen_udp.open(Keyword.get(opts, :port, @port), [
        :binary,
        active: true,
        reuseaddr: true,
        ip: @group,
        add_membership: {@group, {0, 0, 0, 0}},
        multicast_loop: true,
        multicast_ttl: 1
      ])

    send(self(), :heartbeat)
    {:ok, %{socket: socket, port: Keyword.get(opts, :port, @port)}}
  end

  @impl true
  def handle_info(:heartbeat, state) do
    packet = "heartbeat::" <> :erlang.term_to_binary(%{node: node()})
    :gen_udp.send(state.socket, @group, state.port, packet)
    Process.send_after(self(), :heartbeat, :rand.uniform(5_000))
    {:noreply, state}
  end

  def handle_info({:udp, _socket, _ip, _port, "heartbeat::" <> term}, state) do
    try do
      %{node: node} = :erlang.binary_to_term(term)

      if node != node() and node not in Node.list() do
        Node.connect(node)
      end
    rescue
      _ -> :ok
    end

    {:noreply, state}
  end

  def handle_info(_other, state), do: {:noreply, state}
end
