defmodule NativeGossip.BenchJoin do
  @moduledoc false
  # Runs on the joining node of bench/join.exs. Times are taken on that node with
  # monotonic microseconds; the connection is observed with :net_kernel.monitor_nodes,
  # so no polling interval is added to the figures.

  @doc "Starts a topology and returns µs until `target` is connected; then leaves and disconnects."
  def join_once(opts, target), do: isolated(fn -> do_join_once(opts, target) end)

  @doc "µs for a bare Node.connect/1 to `target`; then disconnects."
  def connect_once(target), do: isolated(fn -> do_connect_once(target) end)

  @doc """
  Runs once in a freshly booted VM (bench/join_cold.exs): with `preload`, first loads
  every module of the loaded applications, as a release in embedded mode has at boot;
  then starts the clock and `kind` (`:native`, a NativeGossip topology with `opts`;
  `:baseline`, the pure-Elixir gossip; `:connect`, a bare Node.connect/1), and stops it
  at `{:nodeup, target}`. Returns `{µs to connected, µs for the start call, OS time
  of the start in µs}` (the OS clock, which VMs on one machine share).
  """
  def cold(kind, opts, target, preload) do
    # What a user sees: warnings and info lines are logged (the rig's nodes run at
    # :error otherwise). The bench gives the node a group leader that discards them.
    Logger.configure(level: :info)

    if preload do
      for {app, _, _} <- Application.loaded_applications(),
          mod <- Application.spec(app, :modules) || [],
          do: Code.ensure_loaded(mod)
    end

    :ok = :net_kernel.monitor_nodes(true)
    os_t0 = :os.system_time(:microsecond)
    t0 = System.monotonic_time(:microsecond)

    case kind do
      :native -> {:ok, _} = NativeGossip.start_link(opts)
      :baseline -> {:ok, _} = NativeGossip.BaselineGossip.start()
      :connect -> true = Node.connect(target)
    end

    started = System.monotonic_time(:microsecond) - t0

    receive do
      {:nodeup, ^target} -> {System.monotonic_time(:microsecond) - t0, started, os_t0}
    after
      10_000 -> :timeout
    end
  end

  @doc """
  Starts recording, on this node, when net_kernel is first asked to connect to each
  node (a trace of its messages, stamped with the OS clock by the VM). For a
  breakdown of a join as seen from the node that makes the connect; see
  `connect_requests/0`.
  """
  def trace_connects do
    parent = self()

    pid =
      spawn(fn ->
        :erlang.trace(Process.whereis(:net_kernel), true, [:receive, :timestamp])
        send(parent, :tracing)
        trace_loop(%{})
      end)

    receive do
      :tracing -> :ok
    end

    Process.register(pid, :bench_connect_trace)
    :ok
  end

  @doc "The OS time in µs at which net_kernel was first asked to connect to each node."
  def connect_requests do
    send(:bench_connect_trace, {:get, self()})

    receive do
      {:connect_requests, map} -> map
    end
  end

  defp trace_loop(seen) do
    receive do
      {:trace_ts, _, :receive, {:"$gen_call", _, {:connect, _, node}}, {mega, sec, micro}} ->
        at = (mega * 1_000_000 + sec) * 1_000_000 + micro
        trace_loop(Map.put_new(seen, node, at))

      {:get, from} ->
        send(from, {:connect_requests, seen})
        trace_loop(seen)

      _ ->
        trace_loop(seen)
    end
  end

  # Each measurement in a fresh process: a clean mailbox and its own node monitor.
  defp isolated(fun) do
    {pid, ref} = spawn_monitor(fn -> exit({:result, fun.()}) end)

    receive do
      {:DOWN, ^ref, :process, ^pid, {:result, result}} -> result
      {:DOWN, ^ref, :process, ^pid, other} -> {:crashed, other}
    end
  end

  defp do_join_once(opts, target) do
    :ok = :net_kernel.monitor_nodes(true)
    t0 = System.monotonic_time(:microsecond)
    {:ok, _} = Supervisor.start_child(NativeGossip.Supervisor, {NativeGossip, opts})

    elapsed =
      receive do
        {:nodeup, ^target} -> System.monotonic_time(:microsecond) - t0
      after
        10_000 -> :timeout
      end

    :ok = Supervisor.terminate_child(NativeGossip.Supervisor, {NativeGossip, opts[:name]})
    :ok = Supervisor.delete_child(NativeGossip.Supervisor, {NativeGossip, opts[:name]})
    disconnect(target)
    elapsed
  end

  defp do_connect_once(target) do
    :ok = :net_kernel.monitor_nodes(true)
    t0 = System.monotonic_time(:microsecond)
    true = Node.connect(target)
    elapsed = System.monotonic_time(:microsecond) - t0
    disconnect(target)
    elapsed
  end

  defp disconnect(target) do
    # Disconnecting at once after connecting races `global`'s handshake, whose
    # messages then auto-connect the nodes again; let it settle first.
    Process.sleep(200)
    :erlang.disconnect_node(target)

    receive do
      {:nodedown, ^target} -> :ok
    after
      5_000 -> :ok
    end
  end

  @doc """
  An IO device that accepts and discards everything (for a :peer node's output: give
  it as the group leader of the process that starts the peer).
  """
  def discard_device do
    spawn(fn -> discard() end)
  end

  defp discard do
    receive do
      {:io_request, from, ref, _request} -> send(from, {:io_reply, ref, :ok})
      _ -> :ok
    end

    discard()
  end
end
