defmodule NativeGossip.DemoRecorder do
  @moduledoc false
  # For `make demo` (test/support/demo.exs): runs on each demo node, starts the
  # topology and records when each peer was heard and connected.
  def start(opts) do
    caller = self()

    pid =
      spawn(fn ->
        t0 = System.monotonic_time(:microsecond)
        {:ok, _} = Supervisor.start_child(NativeGossip.Supervisor, {NativeGossip, opts})
        :ok = NativeGossip.subscribe(opts[:name])
        send(caller, :started)
        loop(t0, %{})
      end)

    receive do
      :started -> {:ok, pid}
    after
      5_000 -> {:error, :timeout}
    end
  end

  defp loop(t0, seen) do
    receive do
      {:native_gossip, _topology, event, node} when event in [:discovered, :connected] ->
        ms = (System.monotonic_time(:microsecond) - t0) / 1000
        loop(t0, Map.put_new(seen, {node, event}, ms))

      {:report, from} ->
        send(from, {:report, seen, Node.list()})
        loop(t0, seen)

      _ ->
        loop(t0, seen)
    end
  end

  def report(pid) do
    send(pid, {:report, self()})

    receive do
      {:report, seen, nodes} -> {seen, nodes}
    after
      5_000 -> {%{}, []}
    end
  end
end
