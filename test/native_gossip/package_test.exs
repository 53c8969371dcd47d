defmodule NativeGossip.PackageTest do
  # Installing NativeGossip as a user does. The package is the one a release makes
  # (NativeGossip.TestPackage: `mix hex.build`'s tarball, unpacked, with this machine's
  # release tarball of the NIF and its checksum file); the NIF tarball is served over
  # HTTP on 127.0.0.1 (inside the private namespace of `make test`). A fresh mix
  # application that depends on the package compiles with no cargo on PATH and
  # NATIVE_GOSSIP_BUILD unset, so the NIF is downloaded and checked (a tampered tarball
  # is refused), and two nodes of it join across two test hosts, without telemetry. On
  # a target with no precompiled NIF compilation stops with our sentence, and builds
  # from the package's sources alone when asked.
  use ExUnit.Case, async: false

  alias NativeGossip.{TestPackage, TestRig}

  @moduletag :multihost
  @moduletag :package
  @moduletag timeout: 300_000

  @repo Path.expand("../..", __DIR__)

  setup_all do
    tmp =
      Path.join(System.tmp_dir!(), "native_gossip_package_#{System.unique_integer([:positive])}")

    File.mkdir_p!(tmp)
    on_exit(fn -> File.rm_rf!(tmp) end)

    # The hex package as a release makes it: the tarball of `mix hex.build`, unpacked.
    built = TestPackage.build!(tmp)

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

    Map.merge(built, %{tmp: tmp, served: served, url: "http://127.0.0.1:#{port}"})
  end

  # A new application depending on the unpacked package, compiled as a user would: no
  # cargo on PATH, no NATIVE_GOSSIP_BUILD, an empty download cache (`env` adds to or
  # overrides that; `deps` are more dependency lines). Returns {app, output, status}.
  defp new_app!(ctx, name, env \\ [], deps \\ "", package \\ "native_gossip") do
    app = Path.join(ctx.tmp, name)
    File.rm_rf!(app)
    File.mkdir_p!(Path.join(app, "lib"))

    File.write!(Path.join(app, "mix.exs"), """
    defmodule #{Macro.camelize(name)}.MixProject do
      use Mix.Project

      def project do
        [app: :#{name}, version: "0.1.0", elixir: "~> 1.14",
         deps: [{:native_gossip, path: "../#{package}"}#{deps}]]
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

    base_env = [
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

    env = Enum.reduce(env, base_env, fn {k, v}, acc -> List.keystore(acc, k, 0, {k, v}) end)

    {out, status} = System.cmd("mix", ["compile"], cd: app, env: env, stderr_to_stdout: true)
    {app, out, status}
  end

  defp serve!(ctx, bytes) do
    File.write!(Path.join(ctx.served, Path.basename(ctx.nif)), bytes)
  end

  test "a tampered tarball is refused with a clear error", ctx do
    good = File.read!(ctx.nif)
    serve!(ctx, good <> "tampered")
    {_app, out, status} = new_app!(ctx, "tampered_app")

    assert status != 0
    assert out =~ "the integrity check failed because the checksum of files does not match"
    assert out =~ Path.basename(ctx.nif)
  end

  test "installed without Rust, the NIF is downloaded, checked, and two nodes join", ctx do
    serve!(ctx, File.read!(ctx.nif))
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
    IO.puts("telemetry=\#{Code.ensure_loaded?(:telemetry)}")
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

    # The application has no telemetry (an optional dependency): no events, no error.
    for out <- [out1, out2] do
      assert out =~ "telemetry=false"
      refute out =~ ~r/\[error\]|UndefinedFunctionError|\*\* \(/
    end
  end

  @riscv [{"TARGET_ARCH", "riscv64"}, {"TARGET_OS", "linux"}, {"TARGET_ABI", "gnu"}]

  test "the package is mix hex.build's tarball: what a build needs and the license", ctx do
    files =
      Path.join(ctx.package_dir, "**")
      |> Path.wildcard(match_dot: true)
      |> Enum.filter(&File.regular?/1)
      |> Enum.map(&Path.relative_to(&1, ctx.package_dir))

    must =
      ~w(mix.exs README.md CHANGELOG.md LICENSE Cargo.toml Cargo.lock .cargo/config.toml) ++
        ~w(checksum-Elixir.NativeGossip.Native.exs lib/native_gossip.ex) ++
        ~w(native/native_gossip_nif/Cargo.toml native/native_gossip_nif/src/lib.rs) ++
        ~w(native/native_gossip_core/src/lib.rs native/native_gossip_io/src/lib.rs) ++
        ~w(docs/PROTOCOL.md docs/DEPLOYMENT.md)

    for f <- must, do: assert(f in files, "#{f} missing from the package")

    for f <- files do
      refute f =~
               ~r{^(test|bench|config|examples|priv|_build|target|deps|_artifacts|\.ci|\.github)/},
             "#{f} should not be in the package"

      refute f =~ ~r{\.(so|dylib|beam|tar\.gz)$}, "#{f} should not be in the package"
    end

    # Its checksum file covers the NIF tarball that the release publishes.
    checksums = File.read!(Path.join(ctx.package_dir, "checksum-Elixir.NativeGossip.Native.exs"))
    assert checksums =~ Path.basename(ctx.nif)

    requirements =
      Map.new(ctx.metadata["requirements"], fn req ->
        req = Map.new(req)
        {req["name"], {req["requirement"], req["optional"]}}
      end)

    assert requirements["rustler_precompiled"] == {"~> 0.8", false}
    assert requirements["rustler"] == {"~> 0.36", true}
    assert {_, true} = requirements["telemetry"]
    assert {_, true} = requirements["libcluster"]
    assert ctx.metadata["version"] == ctx.version
    assert ctx.metadata["licenses"] == ["Apache-2.0"]
  end

  test "the Linux gnu NIF needs no glibc newer than the floor", ctx do
    floor = File.read!(Path.join(@repo, ".ci/glibc-floor")) |> String.trim()
    dir = Path.join(ctx.tmp, "nif")

    :ok =
      :erl_tar.extract(String.to_charlist(ctx.nif), [:compressed, cwd: String.to_charlist(dir)])

    [so] = Path.wildcard(Path.join(dir, "*.so"))
    {symbols, 0} = System.cmd("objdump", ["-T", so])

    versions =
      Regex.scan(~r/GLIBC_([0-9.]+)/, symbols, capture: :all_but_first)
      |> Enum.map(fn [v] -> v |> String.split(".") |> Enum.map(&String.to_integer/1) end)

    assert versions != []
    floor = floor |> String.split(".") |> Enum.map(&String.to_integer/1)
    assert Enum.max(versions) <= floor, "needs GLIBC_#{Enum.join(Enum.max(versions), ".")}"
  end

  test "a target with no precompiled NIF stops with our sentence; Windows is unsupported",
       ctx do
    {_app, out, status} = new_app!(ctx, "riscv_app", @riscv)
    assert status != 0
    assert out =~ "NativeGossip has no precompiled NIF for riscv64gc-unknown-linux-gnu: build it"
    assert out =~ ~s({:rustler, "~> 0.36)
    assert out =~ "NATIVE_GOSSIP_BUILD=1"
    refute out =~ "precompiled NIF is not available"

    windows = [
      {"TARGET_ARCH", "x86_64"},
      {"TARGET_VENDOR", "pc"},
      {"TARGET_OS", "windows"},
      {"TARGET_ABI", "msvc"}
    ]

    {_app, out, status} = new_app!(ctx, "windows_app", windows)
    assert status != 0
    assert out =~ "NativeGossip does not support Windows (x86_64-pc-windows-msvc)"
  end

  test "built from the package's sources alone where no NIF is precompiled", ctx do
    # cargo on PATH, NATIVE_GOSSIP_BUILD=1 and rustler in the app's deps, as our
    # sentence says; nothing downloaded (the base URL leads nowhere).
    env =
      @riscv ++
        [
          {"PATH", System.get_env("PATH")},
          {"NATIVE_GOSSIP_BUILD", "1"},
          {"NATIVE_GOSSIP_BASE_URL", "http://127.0.0.1:9/"}
        ]

    # (override: rustler_precompiled of ../shared names the same rustler by another
    # path; from hex, the line of our sentence is enough.)
    rustler =
      ~s(, {:rustler, "~> 0.36.0", path: "../shared/deps/rustler", optional: true, override: true})

    # A copy of the package of its own: the build writes the library into its priv/.
    File.cp_r!(ctx.package_dir, Path.join(ctx.tmp, "native_gossip_source"))
    {app, out, status} = new_app!(ctx, "source_app", env, rustler, "native_gossip_source")
    assert status == 0, "mix compile failed:\n#{out}"
    assert out =~ "Compiling crate native_gossip_nif"

    {out, status} =
      System.cmd(
        "mix",
        ["run", "--no-start", "-e", "IO.puts(inspect(NativeGossip.Native.Status.load_error()))"],
        cd: app,
        env: [{"MIX_ENV", "dev"}, {"MIX_BUILD_PATH", nil}] ++ env,
        stderr_to_stdout: true
      )

    assert status == 0, out
    assert out =~ ~r/^nil$/m
  end
end
