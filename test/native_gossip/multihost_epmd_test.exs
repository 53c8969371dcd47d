defmodule NativeGossip.MultihostEpmdTest do
  # Distribution without epmd (NativeGossip.EPMD): nodes in test hosts where no epmd
  # runs learn each other's distribution port from heartbeats.
  use ExUnit.Case, async: false

  import NativeGossip.TestNet
  alias NativeGossip.{EventRecorder, TestRig}

  @moduletag :multihost
  @moduletag timeout: 120_000

  @no_epmd [~c"-start_epmd", ~c"false", ~c"-epmd_module", ~c"Elixir.NativeGossip.EPMD"]
  @topology [name: :lan, secret: "epmd-test-secret-0123456789", heartbeat_interval: 300]

  defp start(rig, i, opts) do
    {peer, node} = TestRig.start_node!(rig, i, opts)
    {_t0, recorder} = :peer.call(peer, EventRecorder, :start_topology, [@topology])
    %{i: i, peer: peer, node: node, recorder: recorder}
  end

  defp call(n, m, f, a), do: :peer.call(n.peer, m, f, a, 15_000)

  # Whether anything accepts TCP on `ip`:4369 (epmd's port), asked from node `n`.
  defp epmd_listening?(n, ip) do
    match?({:ok, _}, call(n, :gen_tcp, :connect, [ip, 4369, [], 1_000]))
  end

  for names <- [:long, :short] do
    test "three hosts without epmd (#{names} names) mesh, heal after a partition, and a node with epmd joins" do
      rig = TestRig.start_in_test!(4)
      opts = [erl_args: @no_epmd, names: unquote(names)]
      ns = for i <- 1..3, do: start(rig, i, opts)
      [a, _b, c] = ns

      # No epmd anywhere on these hosts: nothing listens on 4369, and the nodes say so.
      for n <- ns do
        assert call(n, :net_kernel, :epmd_module, []) == NativeGossip.EPMD
        assert is_integer(call(n, NativeGossip.EPMD, :registered_port, []))
      end

      for i <- 1..3, do: refute(epmd_listening?(a, Enum.at(rig.hosts, i - 1).address))
      assert call(a, :erl_epmd, :names, []) |> elem(0) == :error

      TestRig.wait_for_mesh(ns)
      # Each learned the others' ports from heartbeats: what distribution listens on.
      for n <- ns, m <- ns, n != m do
        port = call(m, NativeGossip.EPMD, :registered_port, [])
        [_, host] = m.node |> Atom.to_string() |> String.split("@")
        name = ~c"n"

        # A node connected to by the other (which leads the connect) may take that
        # node's heartbeat a moment after the connection: within an interval.
        wait_until(fn ->
          call(n, NativeGossip.EPMD, :port_please, [name, String.to_charlist(host)]) ==
            {:port, port, 6}
        end)
      end

      # A partition of c: its connections are cut on both sides (distribution alone
      # would notice only after net_ticktime), so that healing needs new connects,
      # which only the heartbeats' ports make possible here.
      TestRig.link(rig, 3, :down)
      for n <- ns -- [c], do: call(n, :erlang, :disconnect_node, [c.node])
      for n <- ns -- [c], do: call(c, :erlang, :disconnect_node, [n.node])
      wait_until(fn -> c.node not in call(a, Node, :list, []) end, 5_000)
      Process.sleep(1_000)
      assert call(c, Node, :list, []) == []
      TestRig.link(rig, 3, :up)
      TestRig.wait_for_mesh(ns, 15_000)

      # A fourth node started as usual (epmd on its host) joins them: they reach it
      # through the heartbeats' port or its epmd, whichever they know.
      d = start(rig, 4, names: unquote(names))
      assert call(d, :net_kernel, :epmd_module, []) == :erl_epmd
      assert epmd_listening?(a, Enum.at(rig.hosts, 3).address)
      TestRig.wait_for_mesh(ns ++ [d], 15_000)
    end
  end

  test "the README's ERL_FLAGS line: distribution starts at boot without epmd, the module on the path" do
    rig = TestRig.start_in_test!(1)
    [h1] = rig.hosts
    # What `iex --sname a -S mix` gets in a project: the dependency's ebin under _build.
    ebin = Path.join(Mix.Project.build_path(), "lib/native_gossip/ebin")
    flags = "-start_epmd false -epmd_module Elixir.NativeGossip.EPMD -pa #{ebin}"

    code =
      "IO.inspect({:net_kernel.epmd_module(), Node.alive?(), " <>
        "is_integer(NativeGossip.EPMD.registered_port()), " <>
        ":gen_tcp.connect({127, 0, 0, 1}, 4369, [], 1000)})"

    {out, status} =
      System.cmd(
        "ip",
        ["netns", "exec", h1.netns, "env", "ERL_FLAGS=#{flags}"] ++
          ["elixir", "--sname", "a", "-e", code],
        stderr_to_stdout: true
      )

    assert status == 0, out
    assert out =~ "{NativeGossip.EPMD, true, true, {:error, :econnrefused}}"
  end
end
