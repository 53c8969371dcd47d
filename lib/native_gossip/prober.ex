defmodule NativeGossip.Prober do
  @moduledoc false
  # Probes for failure detection (NativeGossip.Detector), one process per node,
  # registered as NativeGossip.Prober and started with the application.
  #
  # - `ping/2`: a direct probe of a connected node over the distribution connection: a
  #   call to its net_kernel (`{:is_auth, node()}`, which every distributed Erlang node
  #   answers with `:yes`, whatever it runs), sent with `:noconnect` so that a probe
  #   never makes a connection, with a timeout of our own.
  # - An indirect probe: another member asks this process (`ask/4`) to ping a node over
  #   this node's own connection and answer. A node this one is not connected to is not
  #   pinged (that would connect it, in a partial mesh): the answer is :not_connected.
  #   At most @max_probes run at once; past that the answer is :not_connected too (no
  #   evidence either way).
  #
  # Requests come over distribution, from nodes of the cluster (trusted by the cookie);
  # they are bounded all the same.

  use GenServer

  @max_probes 64

  @doc false
  def start_link(_opts), do: GenServer.start_link(__MODULE__, nil, name: __MODULE__)

  @doc """
  Probes `node` directly: `:ok` when its net_kernel answered within `timeout` ms,
  `:failed` otherwise (or at once, `:not_connected`, when there is no connection).
  Blocks the caller up to `timeout`.
  """
  @spec ping(node(), non_neg_integer()) :: :ok | :failed | :not_connected
  def ping(node, timeout) do
    tag = make_ref()
    message = {:"$gen_call", {self(), tag}, {:is_auth, node()}}

    case :erlang.send({:net_kernel, node}, message, [:noconnect]) do
      :noconnect ->
        :not_connected

      _ ->
        receive do
          {^tag, :yes} -> :ok
        after
          timeout -> :failed
        end
    end
  end

  @doc """
  Asks `helper`'s prober to probe `node` within `timeout` ms and send
  `{:native_gossip_probe, id, helper, outcome}` to `reply_to`. Sent with `:noconnect`
  and `:nosuspend`: a helper this node is not connected to is not asked, nor one whose
  connection is congested (the caller, the topology server, is never suspended):
  `:not_sent` then, and no answer will come.
  """
  @spec ask(node(), node(), term(), non_neg_integer(), pid()) :: :ok | :not_sent
  def ask(helper, node, id, timeout, reply_to) do
    message = {:probe, node, id, timeout, reply_to}

    case :erlang.send({__MODULE__, helper}, message, [:noconnect, :nosuspend]) do
      :ok -> :ok
      _ -> :not_sent
    end
  end

  @impl true
  def init(nil) do
    Process.flag(:trap_exit, true)
    # probed: requests probed; not_connected: requests answered :not_connected at once.
    {:ok, %{running: 0, probed: 0, not_connected: 0}}
  end

  @impl true
  def handle_info({:probe, node, id, timeout, reply_to}, %{running: running} = state)
      when is_atom(node) and is_pid(reply_to) and is_integer(timeout) and timeout >= 0 do
    if running >= @max_probes or node not in Node.list(:connected) do
      send(reply_to, {:native_gossip_probe, id, node(), :not_connected})
      {:noreply, %{state | not_connected: state.not_connected + 1}}
    else
      # Answered a little before the asker's own timeout, so that it arrives in time.
      budget = max(div(timeout * 4, 5), 1)

      spawn_link(fn ->
        send(reply_to, {:native_gossip_probe, id, node(), ping(node, budget)})
      end)

      {:noreply, %{state | running: running + 1, probed: state.probed + 1}}
    end
  end

  def handle_info({:EXIT, _pid, _reason}, state),
    do: {:noreply, %{state | running: max(state.running - 1, 0)}}

  def handle_info(_other, state), do: {:noreply, state}
end
