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
  @bin Path.join(@app, "_build/prod/rel/cluster_demo/bin/cluster_demo")

  setup_all do
    # The NIF as users get it, precompiled: this machine's release tarball (make
    # nif-artifact) found in the download cache, its checksum checked; no cargo run.
    repo = Path.expand("../..", __DIR__)
    {_, 0} = System.cmd("sh", [Path.join(repo, ".ci/nif-artifact.sh")], stderr_to_stdout: true)

    env = [
      {"MIX_ENV", "prod"},
      {"MIX_BUILD_PATH", nil},
      {"NATIVE_GOSSIP_BUILD", nil},
      {"NATIVE_GOSSIP_PORTABLE", nil},
      {"RUSTLER_PRECOMPILED_GLOBAL_CACHE_PATH", Path.join(repo, "_artifacts")},
      # Never reached: the tarball is in the cache. Loopback of the test's namespace.
      {"NATIVE_GOSSIP_BASE_URL", "http://127.0.0.1:9/"}
    ]

    for args <- [~w(deps.compile --force), ~w(release --overwrite)] do
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
  defp release(host, args) do
    System.cmd("ip", ["netns", "exec", host.netns, "env"] ++ env(host) ++ [@bin | args],
      stderr_to_stdout: true
    )
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
end
