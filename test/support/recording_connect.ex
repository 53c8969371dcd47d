defmodule NativeGossip.RecordingConnect do
  @moduledoc false
  # A user-supplied connect function for tests: records each call, then connects (or
  # refuses, for the backoff test).

  def connect(mode, node) do
    calls = :persistent_term.get({__MODULE__, :calls}, [])

    :persistent_term.put({__MODULE__, :calls}, [
      {node, System.monotonic_time(:millisecond)} | calls
    ])

    case mode do
      :connect -> :net_kernel.connect_node(node)
      :refuse -> false
    end
  end

  def calls, do: :persistent_term.get({__MODULE__, :calls}, []) |> Enum.reverse()
  def reset, do: :persistent_term.put({__MODULE__, :calls}, [])
end
