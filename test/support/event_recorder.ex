defmodule NativeGossip.EventRecorder do
  @moduledoc false
  # Runs on a node (a test peer, a demo node): subscribes to a topology's events and
  # records each with the wall-clock time in µs, so that times taken on different
  # nodes of one machine can be compared. It also records distribution's own
  # {:nodeup, node} and {:nodedown, node}, as events :nodeup and :nodedown.

  @doc "Starts a recorder for the running topology `name`; returns its pid."
  def start(name) do
    caller = self()

    pid =
      spawn(fn ->
        :ok = :net_kernel.monitor_nodes(true)
        :ok = NativeGossip.subscribe(name)
        send(caller, {:recording, self()})
        loop([])
      end)

    receive do
      {:recording, ^pid} -> pid
    after
      5_000 -> raise "recorder did not start"
    end
  end

  @doc "Starts topology `opts` (under the application's supervisor) and a recorder for it."
  def start_topology(opts) do
    t0 = System.system_time(:microsecond)
    {:ok, _} = Supervisor.start_child(NativeGossip.Supervisor, {NativeGossip, opts})
    {t0, start(opts[:name])}
  end

  @doc "The events so far, oldest first: `{event, node, wall_us}`."
  def events(pid) do
    ref = make_ref()
    send(pid, {:events, self(), ref})

    receive do
      {^ref, events} -> Enum.reverse(events)
    after
      5_000 -> raise "recorder did not answer"
    end
  end

  defp loop(events) do
    receive do
      {:native_gossip, _name, event, node} ->
        loop([{event, node, System.system_time(:microsecond)} | events])

      {event, node} when event in [:nodeup, :nodedown] ->
        loop([{event, node, System.system_time(:microsecond)} | events])

      {:events, from, ref} ->
        send(from, {ref, events})
        loop(events)
    end
  end
end
