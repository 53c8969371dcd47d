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
  at `{:nodeup, target}`. Returns `{µs to connected, µs for the start call}`.
  """
  def cold(kind, opts, target, preload) do
    if preload do
      for {app, _, _} <- Application.loaded_applications(),
          mod <- Application.spec(app, :modules) || [],
          do: Code.ensure_loaded(mod)
    end

    :ok = :net_kernel.monitor_nodes(true)
    t0 = System.monotonic_time(:microsecond)

    case kind do
      :native -> {:ok, _} = NativeGossip.start_link(opts)
      :baseline -> {:ok, _} = NativeGossip.BaselineGossip.start()
      :connect -> true = Node.connect(target)
    end

    started = System.monotonic_time(:microsecond) - t0

    receive do
      {:nodeup, ^target} -> {System.monotonic_time(:microsecond) - t0, started}
    after
      10_000 -> :timeout
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
end
