defmodule NativeGossip.TimedConnect do
  @moduledoc false
  # Node.connect/1, timed, for the benchmarks' timelines (bench/formation_timeline.exs,
  # bench/join_timeline.exs): each attempt as {node, start µs, end µs, result} in a
  # table of the VM (table/0 first), taken with take/0. A topology uses it as its
  # `connect: {NativeGossip.TimedConnect, :connect, []}`; the floor's direct connects
  # go through connect_all/1.

  @doc "Creates the table (owned by a process that lives as long as the VM)."
  def table do
    parent = self()

    spawn(fn ->
      :ets.new(__MODULE__, [:named_table, :public, :bag])
      send(parent, :ready)
      Process.sleep(:infinity)
    end)

    receive do
      :ready -> :ok
    end
  end

  def connect(node) do
    t = System.system_time(:microsecond)
    r = Node.connect(node)
    :ets.insert(__MODULE__, {node, t, System.system_time(:microsecond), r})
    r
  end

  @doc "Connects to each of `others` at once, each in a process of its own."
  def connect_all(others) do
    for o <- others, do: spawn(fn -> connect(o) end)
    :ok
  end

  @doc "The attempts recorded since the last take."
  def take do
    all = :ets.tab2list(__MODULE__)
    :ets.delete_all_objects(__MODULE__)
    all
  end
end
