defmodule NativeGossip.EventRecorder do
  @moduledoc false
  # Runs on a node (a test peer, a demo node): subscribes to a topology's events and
  # records each with the wall-clock time in µs, so that times taken on different
  # nodes of one machine can be compared. It also records distribution's own
  # {:nodeup, node} and {:nodedown, node}, as events :nodeup and :nodedown.

  @doc "Starts a recorder of distribution's nodeup/nodedown only (no topology)."
  def start_nodes_only do
    {_t0, pid} = spawn_recorder(fn -> :ok end)
    pid
  end

  @doc """
  Starts a recorder, then topology `opts` (under the application's supervisor) from
  it, so that no connection made in the first milliseconds escapes the recorder's
  node monitor, and subscribes it to the topology's events. Returns
  `{wall_us_at_start, recorder}`. (The formation benchmarks, which need the nodeups
  alone and start every way at one instant, use `start_nodes_only/0` and `launch/3`.)
  """
  def start_topology(opts) do
    spawn_recorder(fn ->
      {:ok, _} = Supervisor.start_child(NativeGossip.Supervisor, {NativeGossip, opts})
      # Replays the peers already known: nothing is missed either.
      :ok = NativeGossip.subscribe(opts[:name])
    end)
  end

  @doc """
  Runs in the caller: starts topology `opts` (under the application's supervisor) for a
  recorder that `start_nodes_only/0` started beforehand, so that the node does at its
  start instant what the other ways do (the work of the way under test alone: the
  recorder's node monitor is set up before, as theirs is); with `subscribe` the
  recorder then subscribes to the topology's events (which costs the topology a
  subscriber's messages, two per peer, that no other way pays). Returns :ok.
  """
  def launch(rec, opts, subscribe \\ false) do
    {:ok, _} = Supervisor.start_child(NativeGossip.Supervisor, {NativeGossip, opts})

    if subscribe do
      ref = make_ref()
      send(rec, {:subscribe, opts[:name], self(), ref})

      receive do
        {^ref, :ok} -> :ok
      after
        5_000 -> raise "recorder did not subscribe"
      end
    else
      :ok
    end
  end

  @doc "Records the events of a topology that already runs (and nodeups), from now."
  def start_subscriber(name) do
    spawn_recorder(fn -> :ok = NativeGossip.subscribe(name) end)
  end

  # A recording process that monitors nodes first, then runs `setup` (timed from just
  # before it); returns {wall_us_before_setup, pid} once setup is done.
  defp spawn_recorder(setup) do
    caller = self()

    pid =
      spawn(fn ->
        :ok = :net_kernel.monitor_nodes(true)
        t0 = System.system_time(:microsecond)
        setup.()
        send(caller, {:recording, self(), t0})
        loop([])
      end)

    receive do
      {:recording, ^pid, t0} -> {t0, pid}
    after
      5_000 -> raise "recorder did not start"
    end
  end

  @doc """
  Also records the telemetry event `[:native_gossip, :peer, :dead]` of this node, as
  `{:dead_evidence, node, evidence}` (a telemetry handler that forwards every
  NativeGossip event to the recorder).
  """
  def record_dead_evidence(pid) do
    _id = NativeGossip.TestTelemetry.forward(pid)
    :ok
  end

  @doc """
  Stops a recorder (and its node monitor): a benchmark that starts one per trial stops
  it after the trial, or every later connection would also be delivered to it, by
  net_kernel, in the middle of the next measurement.
  """
  def stop(pid) do
    ref = Process.monitor(pid)
    Process.exit(pid, :kill)

    receive do
      {:DOWN, ^ref, :process, _, _} -> :ok
    end
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

      {:telemetry, [:native_gossip, :peer, :dead], _, %{node: node, evidence: evidence}} ->
        loop([{:dead_evidence, node, evidence} | events])

      {:telemetry, _event, _measurements, _metadata} ->
        loop(events)

      {:events, from, ref} ->
        send(from, {ref, events})
        loop(events)

      {:subscribe, name, from, ref} ->
        send(from, {ref, NativeGossip.subscribe(name)})
        loop(events)
    end
  end
end
