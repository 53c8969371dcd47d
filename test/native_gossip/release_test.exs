defmodule NativeGossip.ReleaseTest do
  # examples/cluster_demo as users ship it: `mix release` of an application that
  # depends on the library by path, with the NIF inside; two release nodes on two test
  # hosts, configured by environment variables only, cluster and share work.
  use ExUnit.Case, async: false

  import NativeGossip.TestNet
  alias NativeGossip.TestRig

  @moduletag :multihost
  @moduletag timeout: 300_000

  @app Path.expand("../../examples/cluster_demo", __DIR__)

  # Where `mix release` below puts each release: under the build root of the lane
  # that runs this test (MIX_BUILD_ROOT, relative to the app: the OTP 27 lane builds
  # into _build/otp27), so each lane runs the release it built.
  defp bin(name) do
    root = Path.expand(System.get_env("MIX_BUILD_ROOT", "_build"), @app)
    Path.join(root, "prod/rel/#{name}/bin/#{name}")
  end

  setup_all do
    # The library as users get it: the hex package a release makes (TestPackage), and
    # its NIF precompiled, this machine's release tarball found in the download cache,
    # its checksum checked; no cargo run.
    tmp =
      Path.join(System.tmp_dir!(), "native_gossip_release_#{System.unique_integer([:positive])}")

    File.mkdir_p!(tmp)
    on_exit(fn -> File.rm_rf!(tmp) end)
    built = NativeGossip.TestPackage.build!(tmp)

    env = [
      {"MIX_ENV", "prod"},
      {"MIX_BUILD_PATH", nil},
      {"NATIVE_GOSSIP_BUILD", nil},
      {"NATIVE_GOSSIP_PORTABLE", nil},
      {"NATIVE_GOSSIP_PATH", built.package_dir},
      {"RUSTLER_PRECOMPILED_GLOBAL_CACHE_PATH", built.artifacts},
      # Never reached: the tarball is in the cache. Loopback of the test's namespace.
      {"NATIVE_GOSSIP_BASE_URL", "http://127.0.0.1:9/"}
    ]

    for args <- [
          ~w(deps.compile --force),
          ~w(release cluster_demo --overwrite),
          ~w(release cluster_demo_epmdless --overwrite)
        ] do
      {out, status} = System.cmd("mix", args, cd: @app, env: env, stderr_to_stdout: true)
      assert status == 0, "mix #{Enum.join(args, " ")} failed:\n#{out}"
      refute out =~ "Compiling crate"
    end

    :ok
  end

  defp env(host) do
    [
      "RELEASE_NODE=demo@#{:inet.ntoa(host.address)}",
      "RELEASE_DISTRIBUTION=name",
      "RELEASE_COOKIE=release-test-cookie",
      "NATIVE_GOSSIP_SECRET=release-test-secret",
      "NATIVE_GOSSIP_HEARTBEAT_INTERVAL=500"
    ]
  end

  # `bin/cluster_demo <args>` on a test host; returns {output, status}.
  defp release(host, args, path \\ bin("cluster_demo")) do
    System.cmd("ip", ["netns", "exec", host.netns, "env"] ++ env(host) ++ [path | args],
      stderr_to_stdout: true
    )
  end

  test "without NATIVE_GOSSIP_SECRET the release says what to set, in one line, and leaves no crash dump" do
    dir = Path.join(System.tmp_dir!(), "release-no-secret-#{System.unique_integer([:positive])}")
    File.mkdir_p!(dir)

    {out, status} =
      System.cmd(bin("cluster_demo"), ["start"],
        cd: dir,
        env: [
          {"NATIVE_GOSSIP_SECRET", nil},
          {"RELEASE_DISTRIBUTION", "none"},
          {"RELEASE_COOKIE", "release-test-cookie"}
        ],
        stderr_to_stdout: true
      )

    assert status == 1, out
    assert out =~ "cluster_demo: set NATIVE_GOSSIP_SECRET"
    refute out =~ "System.EnvError"
    assert File.ls!(dir) == [], "left behind: #{inspect(File.ls!(dir))}"
  end

  test "two release nodes on two hosts cluster and spread work" do
    rig = TestRig.start_in_test!(2)
    [h1, h2] = rig.hosts

    # `start` runs in the foreground: one task per node, ended by TestRig.stop/1.
    for host <- [h1, h2], do: Task.start(fn -> release(host, ["start"]) end)

    other = :"demo@#{:inet.ntoa(h2.address)}"

    wait_until(
      fn ->
        case release(h1, ["rpc", "IO.inspect(Node.list())"]) do
          {out, 0} -> out =~ inspect(other)
          _ -> false
        end
      end,
      60_000,
      "the two release nodes to cluster"
    )

    {out, 0} = release(h1, ["rpc", "ClusterDemo.spread(20)"])
    assert out =~ "demo@198.51.100.1 ran 10 tasks"
    assert out =~ "demo@198.51.100.2 ran 10 tasks"
  end

  test "the release without epmd: two nodes on hosts with no epmd cluster and spread work" do
    rig = TestRig.start_in_test!(3)
    [h1, h2, h3] = rig.hosts

    for host <- [h1, h2],
        do: Task.start(fn -> release(host, ["start"], bin("cluster_demo_epmdless")) end)

    # The nodes are looked at from a third node without epmd either, with the same
    # cookie and a topology of the same secret: the release's own `rpc` command starts
    # a VM that runs no topology, so it could not find them.
    no_epmd =
      ~w(-start_epmd false -epmd_module Elixir.NativeGossip.EPMD -setcookie release-test-cookie)

    {peer, _} = TestRig.start_node!(rig, 3, erl_args: Enum.map(no_epmd, &String.to_charlist/1))

    {:ok, _} =
      :peer.call(peer, Supervisor, :start_child, [
        NativeGossip.Supervisor,
        {NativeGossip, name: :demo, secret: "release-test-secret", heartbeat_interval: 500}
      ])

    [d1, d2] = for h <- [h1, h2], do: :"demo@#{:inet.ntoa(h.address)}"

    wait_until(
      fn ->
        Enum.sort(:peer.call(peer, Node, :list, [])) == [d1, d2] and
          d2 in :peer.call(peer, :rpc, :call, [d1, Node, :list, []])
      end,
      60_000,
      "the two release nodes without epmd to cluster"
    )

    # No epmd on their hosts (nor on the observer's).
    for h <- [h1, h2, h3] do
      assert {:error, _} = :peer.call(peer, :gen_tcp, :connect, [h.address, 4369, [], 1_000])
    end

    assert :peer.call(peer, :rpc, :call, [d1, :net_kernel, :epmd_module, []]) ==
             NativeGossip.EPMD

    assert :peer.call(peer, :rpc, :call, [d1, ClusterDemo, :spread, [20]]) == %{
             d1 => 10,
             d2 => 10
           }
  end
end
