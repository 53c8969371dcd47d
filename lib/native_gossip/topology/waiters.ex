defmodule NativeGossip.Topology.Waiters do
  @moduledoc false
  # The callers of NativeGossip.await_members/2 a topology server keeps waiting: each
  # with the count it waits for and the count it has. One scan of the peers when a
  # caller starts waiting; after that each event moves each waiter's count by what it
  # changed (moved/4): O(waiters) an event, not O(peers).

  alias NativeGossip.Connector

  @type match :: (NativeGossip.tags() -> as_boolean(term()))
  @type waiter :: %{
          ref: reference(),
          from: GenServer.from(),
          match: match(),
          count: non_neg_integer(),
          have: non_neg_integer(),
          timer: reference() | nil,
          monitor: reference()
        }
  @type t :: [waiter()]

  @doc """
  A caller starts waiting for `count` connected peers whose tags `match` takes:
  `{:reply, waiters}` when it need not wait, else `{:wait, waiters}` (it is answered
  by moved/4, timeout/2 or down/2).
  """
  @spec add(t(), Connector.t(), GenServer.from(), match(), non_neg_integer(), timeout()) ::
          {:reply | :wait, t()}
  def add(waiters, connector, {caller, _} = from, match, count, timeout) do
    have = connected_matching(connector, match)

    if have >= count do
      {:reply, waiters}
    else
      ref = make_ref()

      timer =
        if timeout != :infinity, do: Process.send_after(self(), {:await_timeout, ref}, timeout)

      # A caller that goes away stops waiting (with :infinity, nothing else would).
      waiter = %{
        ref: ref,
        from: from,
        match: match,
        count: count,
        have: have,
        timer: timer,
        monitor: Process.monitor(caller)
      }

      {:wait, [waiter | waiters]}
    end
  end

  @doc "The waiter's timeout came: it is answered `{:error, {:timeout, have}}`."
  @spec timeout(t(), reference()) :: t()
  def timeout(waiters, ref) do
    case Enum.split_with(waiters, &(&1.ref == ref)) do
      {[w], rest} ->
        Process.demonitor(w.monitor, [:flush])
        GenServer.reply(w.from, {:error, {:timeout, w.have}})
        rest

      {[], _} ->
        waiters
    end
  end

  @doc "A monitor went down: `{:ok, waiters}` if it was a waiter's, else `:unknown`."
  @spec down(t(), reference()) :: {:ok, t()} | :unknown
  def down(waiters, monitor) do
    case Enum.split_with(waiters, &(&1.monitor == monitor)) do
      {[w], rest} ->
        _ = if w.timer, do: Process.cancel_timer(w.timer)
        {:ok, rest}

      {[], _} ->
        :unknown
    end
  end

  @doc """
  The peers `nodes` may have changed from `old` to `new` (connected or not, matching or
  not): each waiter's count moves by that, and those that have enough are answered.
  """
  @spec moved(t(), Connector.t(), Connector.t(), [node()]) :: t()
  def moved([], _old, _new, _nodes), do: []

  def moved(waiters, old, new, nodes) do
    waiters =
      Enum.map(waiters, fn w ->
        delta =
          Enum.reduce(nodes, 0, fn node, d ->
            d + counts(new, node, w.match) - counts(old, node, w.match)
          end)

        %{w | have: w.have + delta}
      end)

    {done, waiting} = Enum.split_with(waiters, &(&1.have >= &1.count))

    for w <- done do
      _ = if w.timer, do: Process.cancel_timer(w.timer)
      Process.demonitor(w.monitor, [:flush])
      GenServer.reply(w.from, :ok)
    end

    waiting
  end

  defp counts(connector, node, match) do
    if Map.get(Connector.status(connector), node) == :connected and
         match.(Connector.tags(connector, node)),
       do: 1,
       else: 0
  end

  defp connected_matching(connector, match) do
    Enum.count(Connector.status(connector), fn {node, status} ->
      status == :connected and match.(Connector.tags(connector, node))
    end)
  end
end
