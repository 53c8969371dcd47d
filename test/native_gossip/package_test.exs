defmodule NativeGossip.PackageTest do
  # Installing NativeGossip as a user does, without Rust: `make nif-artifact` builds the
  # release tarball of this machine's NIF and its checksum file; the tarball is served
  # over HTTP on 127.0.0.1 (inside the private namespace of `make test`); a fresh mix
  # application that depends on a copy of this repository by path compiles with no
  # cargo on PATH and NATIVE_GOSSIP_BUILD unset, so the NIF is downloaded and checked
  # (a tampered tarball is refused); two nodes of that application join across two test
  # hosts.
  use ExUnit.Case, async: false

  alias NativeGossip.TestRig

  @moduletag :multihost
  @moduletag :package
  @moduletag timeout: 300_000

  @repo Path.expand("../..", __DIR__)

  setup_all do
    tmp =
      Path.join(System.tmp_dir!(), "native_gossip_package_#{System.unique_integer([:positive])}")

    File.mkdir_p!(tmp)
    on_exit(fn -> File.rm_rf!(tmp) end)

    # The library as it would be published: the tracked files only (so no NIF built
    # in priv/), beside ../shared (where its dependencies come from here).
    lib = Path.join(tmp, "native_gossip")
    {files, 0} = System.cmd("git", ["ls-files"], cd: @repo)

    for f <- String.split(files, "\n", trim: true), File.regular?(Path.join(@repo, f)) do
      File.mkdir_p!(Path.dirname(Path.join(lib, f)))
      File.cp!(Path.join(@repo, f), Path.join(lib, f))
    end

    File.ln_s!(Path.expand("../shared", @repo), Path.join(tmp, "shared"))

    {out, status} =
      System.cmd("sh", [Path.join(lib, ".ci/nif-artifact.sh")],
        env: [{"CARGO_TARGET_DIR", Path.join(@repo, "target")}],
        stderr_to_stdout: true
      )

    assert status == 0, out
    [tarball] = Path.wildcard(Path.join(lib, "_artifacts/*.tar.gz"))

    # The release server: a directory served on loopback by inets.
    served = Path.join(tmp, "served")
    File.mkdir_p!(served)
    :ok = Application.ensure_started(:inets)

    {:ok, httpd} =
      :inets.start(:httpd,
        port: 0,
        bind_address: {127, 0, 0, 1},
        server_name: ~c"localhost",
        server_root: String.to_charlist(served),
        document_root: String.to_charlist(served)
      )

    on_exit(fn -> :inets.stop(:httpd, httpd) end)
    port = :httpd.info(httpd)[:port]

    %{tmp: tmp, lib: lib, tarball: tarball, served: served, url: "http://127.0.0.1:#{port}"}
  end

  # A new application depending on the copy, compiled as a user would: no cargo on
  # PATH, no NATIVE_GOSSIP_BUILD, an empty download cache. Returns {output, status}.
  defp new_app!(ctx, name) do
    app = Path.join(ctx.tmp, name)
    File.rm_rf!(app)
    File.mkdir_p!(Path.join(app, "lib"))

    File.write!(Path.join(app, "mix.exs"), """
    defmodule #{Macro.camelize(name)}.MixProject do
      use Mix.Project

      def project do
        [app: :#{name}, version: "0.1.0", elixir: "~> 1.14",
         deps: [{:native_gossip, path: "../native_gossip"}]]
      end

      def application, do: [extra_applications: [:logger]]
    end
    """)

    path =
      System.get_env("PATH")
      |> String.split(":")
      |> Enum.reject(
        &(File.exists?(Path.join(&1, "cargo")) or File.exists?(Path.join(&1, "rustc")))
      )
      |> Enum.join(":")

    assert System.find_executable("mix"), "mix must stay on PATH"

    env = [
      {"PATH", path},
      {"MIX_ENV", "dev"},
      {"MIX_BUILD_PATH", nil},
      {"NATIVE_GOSSIP_BUILD", nil},
      {"NATIVE_GOSSIP_PORTABLE", nil},
      {"NATIVE_GOSSIP_DEPS", nil},
      {"NATIVE_GOSSIP_BASE_URL", ctx.url},
      {"RUSTLER_PRECOMPILED_FORCE_BUILD_ALL", nil},
      {"RUSTLER_PRECOMPILED_GLOBAL_CACHE_PATH", nil},
      {"XDG_CACHE_HOME", Path.join(app, "cache")}
    ]

    {out, status} = System.cmd("mix", ["compile"], cd: app, env: env, stderr_to_stdout: true)
    {app, out, status}
  end

  defp serve!(ctx, bytes) do
    File.write!(Path.join(ctx.served, Path.basename(ctx.tarball)), bytes)
  end

  test "a tampered tarball is refused with a clear error", ctx do
    good = File.read!(ctx.tarball)
    serve!(ctx, good <> "tampered")
    {_app, out, status} = new_app!(ctx, "tampered_app")

    assert status != 0
    assert out =~ "the integrity check failed because the checksum of files does not match"
    assert out =~ Path.basename(ctx.tarball)
  end

  test "installed without Rust, the NIF is downloaded, checked, and two nodes join", ctx do
    serve!(ctx, File.read!(ctx.tarball))
    {app, out, status} = new_app!(ctx, "user_app")
    assert status == 0, "mix compile failed:\n#{out}"
    refute out =~ "Compiling crate"

    # The downloaded library sits where the application loads it from.
    # (MIX_BUILD_ROOT, when set, moves _build: the OTP 27 lane sets it.)
    build = Path.join(app, System.get_env("MIX_BUILD_ROOT", "_build"))
    [_] = Path.wildcard(Path.join(build, "dev/lib/native_gossip/priv/native/*.so"))

    rig = TestRig.start_in_test!(2)
    paths = Enum.flat_map(Path.wildcard(Path.join(build, "dev/lib/*/ebin")), &["-pa", &1])

    script = """
    {:ok, _} = Application.ensure_all_started(:native_gossip)
    {:ok, _} = NativeGossip.start_link(name: :lan, secret: "package-test", heartbeat_interval: 300)
    joined = Enum.find_value(1..200, fn _ -> Node.list() != [] or (Process.sleep(100) && nil) end)
    IO.puts("joined=\#{joined == true} nodes=\#{inspect(Node.list())}")
    Process.sleep(1_000)
    """

    tasks =
      for host <- rig.hosts do
        Task.async(fn ->
          name = "user@#{:inet.ntoa(host.address)}"

          System.cmd(
            "ip",
            ["netns", "exec", host.netns, "elixir", "--name", name, "--cookie", "pkg"] ++
              paths ++ ["-e", script],
            stderr_to_stdout: true
          )
        end)
      end

    [{out1, 0}, {out2, 0}] = Task.await_many(tasks, 60_000)
    [h1, h2] = rig.hosts
    assert out1 =~ "joined=true nodes=[:\"user@#{:inet.ntoa(h2.address)}\"]"
    assert out2 =~ "joined=true nodes=[:\"user@#{:inet.ntoa(h1.address)}\"]"
  end
end
