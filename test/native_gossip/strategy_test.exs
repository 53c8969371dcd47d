defmodule NativeGossip.StrategyTest do
  # NativeGossip.Strategy started exactly as libcluster's Cluster.Supervisor starts a
  # strategy: a child spec of its own making, `start_link([%Cluster.Strategy.State{}])`.
  use ExUnit.Case, async: false

  import NativeGossip.TestNet
  alias NativeGossip.TestPeers

  test "starts from a libcluster state, uses its config and connects through its connect MFA" do
    port = unique_port()
    {a, _} = pa = TestPeers.start!(:lc_a)
    {b, b_node} = pb = TestPeers.start!(:lc_b)
    on_exit(fn -> Enum.each([pa, pb], fn {p, _} -> TestPeers.stop(p) end) end)

    state = %Cluster.Strategy.State{
      topology: :gossip_lan,
      connect: {NativeGossip.RecordingConnect, :connect, [:connect]},
      config: [port: port, secret: "libcluster-secret", heartbeat_interval: 200]
    }

    # What Cluster.Supervisor builds for each topology.
    spec = %{id: :gossip_lan, start: {NativeGossip.Strategy, :start_link, [[state]]}}
    assert {:ok, _} = TestPeers.call(a, Supervisor, :start_child, [NativeGossip.Supervisor, spec])

    # b never connects by itself, so the connection can only come from a's strategy.
    {:ok, _} =
      TestPeers.start_topology(b,
        name: :lan,
        port: port,
        secret: "libcluster-secret",
        connect: {NativeGossip.RecordingConnect, :connect, [:refuse]}
      )

    wait_until(fn -> TestPeers.nodes(a) == [b_node] end)
    # The connection was made by the custom connect function, with the node appended.
    assert [_ | _] = TestPeers.call(a, NativeGossip.RecordingConnect, :starts, [b_node])
    # The topology is reachable under the libcluster topology name.
    assert [%{node: ^b_node}] = TestPeers.call(a, NativeGossip, :members, [:gossip_lan])
  end

  test "when libcluster is loaded, connects through Cluster.Strategy.connect_nodes/4" do
    port = unique_port()
    {a, _} = pa = TestPeers.start!(:lcs_a)
    {b, b_node} = pb = TestPeers.start!(:lcs_b)
    on_exit(fn -> Enum.each([pa, pb], fn {p, _} -> TestPeers.stop(p) end) end)

    # A stand-in for libcluster's module, loaded on node a only, recording its calls.
    # As libcluster 3.5's, it raises when an MFA is not exported, which
    # function_exported?/3 says of a module not loaded yet (found against the real
    # libcluster: a user's connect module, in interactive mode).
    [{mod, binary}] =
      Code.compile_string("""
      defmodule Cluster.Strategy do
        def connect_nodes(topology, connect, list_nodes, nodes) do
          :persistent_term.put(:connect_nodes_call, {topology, connect, list_nodes, nodes})
          {m, f, args} = connect
          {l, lf, largs} = list_nodes
          unless function_exported?(l, lf, length(largs)), do: raise("list_nodes undefined")
          unless function_exported?(m, f, length(args) + 1), do: raise("connect undefined")
          for n <- nodes, do: apply(m, f, args ++ [n])
          :ok
        end
      end
      """)

    :code.purge(mod)
    :code.delete(mod)
    {:module, Cluster.Strategy} = TestPeers.call(a, :code, :load_binary, [mod, ~c"fake", binary])

    state = %Cluster.Strategy.State{
      topology: :lc,
      connect: {NativeGossip.RecordingConnect, :connect, [:connect]},
      config: [port: port, heartbeat_interval: 200]
    }

    refute TestPeers.call(a, :code, :is_loaded, [NativeGossip.RecordingConnect])
    spec = %{id: :lc, start: {NativeGossip.Strategy, :start_link, [[state]]}}
    {:ok, _} = TestPeers.call(a, Supervisor, :start_child, [NativeGossip.Supervisor, spec])

    {:ok, _} =
      TestPeers.start_topology(b,
        name: :lan,
        port: port,
        connect: {NativeGossip.RecordingConnect, :connect, [:refuse]}
      )

    wait_until(fn -> TestPeers.nodes(a) == [b_node] end)

    assert {:lc, {NativeGossip.RecordingConnect, :connect, [:connect]},
            {:erlang, :nodes, [:connected]},
            [^b_node]} = TestPeers.call(a, :persistent_term, :get, [:connect_nodes_call])
  end

  test "a bad value in the libcluster config is reported, not raised" do
    state = %Cluster.Strategy.State{topology: :bad, config: [port: -1]}
    assert {:error, {:invalid_option, :port, _}} = NativeGossip.Strategy.start_link([state])
  end

  # Issue #24: libcluster ignores keys it does not know; an unknown key aborted the
  # topology and Cluster.Supervisor with it.
  test "an unknown key in the libcluster config is logged once with the nearest key, and ignored" do
    state = %Cluster.Strategy.State{
      topology: :typo,
      config: [port: unique_port(), multicast_adr: "239.1.1.1", heartbeat_interval: 200]
    }

    log =
      ExUnit.CaptureLog.capture_log(fn ->
        assert {:ok, pid} = NativeGossip.Strategy.start_link([state])
        # The warnings come half a second after the start: wait for them.
        wait_until(fn -> :sys.get_state(pid).warned end, 10_000)
        GenServer.stop(pid)
      end)

    assert [_] =
             Regex.scan(
               ~r/topology :typo: unknown key :multicast_adr under config: ignored \(did you mean :multicast_addr\?\)/,
               log
             )
  end

  test "child_spec/1 has the shape libcluster gives its strategies" do
    state = %Cluster.Strategy.State{topology: :x}

    assert %{id: :x, start: {NativeGossip.Strategy, :start_link, [[^state]]}} =
             NativeGossip.Strategy.child_spec([state])
  end

  # Issue #24: `config :libcluster, debug: true` had no effect on NativeGossip's logs.
  test "the strategy's debug lines follow config :libcluster, debug: (read at each line)" do
    port = unique_port()
    {b, b_node} = pb = TestPeers.start!(:lcd_b)
    on_exit(fn -> TestPeers.stop(elem(pb, 0)) end)
    Logger.configure(level: :debug)
    Application.put_env(:libcluster, :debug, false)

    on_exit(fn ->
      Logger.configure(level: :warning)
      Application.delete_env(:libcluster, :debug)
    end)

    state = %Cluster.Strategy.State{
      topology: :dbg,
      config: [port: port, secret: "libcluster-debug-secret", heartbeat_interval: 200]
    }

    quiet =
      ExUnit.CaptureLog.capture_log(fn ->
        {:ok, _} = NativeGossip.Strategy.start_link([state])

        {:ok, _} =
          TestPeers.start_topology(b, name: :lan, port: port, secret: "libcluster-debug-secret")

        wait_until(fn -> b_node in Node.list() end)
        Process.sleep(100)
      end)

    refute quiet =~ "[libcluster:dbg]"

    loud =
      ExUnit.CaptureLog.capture_log(fn ->
        Application.put_env(:libcluster, :debug, true)

        :ok =
          TestPeers.call(b, Supervisor, :terminate_child, [
            NativeGossip.Supervisor,
            {NativeGossip, :lan}
          ])

        wait_until(fn -> NativeGossip.members(:dbg) |> Enum.all?(&(&1.state == :left)) end)
        Process.sleep(100)
      end)

    assert loud =~ "[libcluster:dbg] NativeGossip topology :dbg: left #{b_node}"
  end
end
