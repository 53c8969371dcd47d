defmodule NativeGossip.RecordingConnect do
  @moduledoc false
  # A user-supplied connect function for tests: records when each call starts and
  # ends, then connects (or refuses, for the backoff test).

  def connect(mode, node) do
    record({node, :start, now()})

    result =
      case mode do
        :connect -> :net_kernel.connect_node(node)
        :refuse -> false
      end

    record({node, :done, now()})
    result
  end

  @doc "Start times of the calls for `node`."
  def starts(node), do: for({^node, :start, at} <- calls(), do: at)

  @doc "When the first call for `node` returned, or nil."
  def done_at(node),
    do: Enum.find_value(calls(), fn {n, e, at} -> n == node and e == :done and at end)

  def calls, do: :persistent_term.get({__MODULE__, :calls}, []) |> Enum.reverse()
  def reset, do: :persistent_term.put({__MODULE__, :calls}, [])

  defp record(entry) do
    # Attempts run in parallel processes: serialise the read-modify-write with a lock
    # taken on this node only.
    :global.trans(
      {__MODULE__, self()},
      fn -> :persistent_term.put({__MODULE__, :calls}, [entry | Enum.reverse(calls())]) end,
      [node()]
    )
  end

  defp now, do: System.monotonic_time(:millisecond)
end
