defmodule NativeGossip.MixProject do
  use Mix.Project

  @version "0.2.0-dev"
  @source_url "https://github.com/native-gossip/native_gossip"

  def project do
    [
      app: :native_gossip,
      version: @version,
      elixir: "~> 1.14",
      elixirc_paths: elixirc_paths(Mix.env()),
      start_permanent: Mix.env() == :prod,
      deps: deps(),
      description:
        "Zero-configuration BEAM clustering by UDP multicast heartbeats, " <>
          "with the socket in a Rust NIF thread. A libcluster strategy and a standalone service.",
      package: package(),
      source_url: @source_url,
      # `mix docs` (ex_doc, a dev dependency of the hex set).
      docs: [
        main: "NativeGossip",
        source_ref: "v#{@version}",
        # Images the pages show (docs/assets/formation.svg), copied beside them.
        assets: %{"docs/assets" => "assets"},
        extras: [
          "README.md",
          "docs/DEPLOYMENT.md",
          "docs/MIGRATING.md",
          "docs/PROTOCOL.md",
          "docs/ARCHITECTURE.md",
          "docs/BENCHMARKS.md",
          "CHANGELOG.md",
          "RELEASING.md"
        ],
        groups_for_extras: [
          Guides: ["docs/DEPLOYMENT.md", "docs/MIGRATING.md"],
          Reference: ["docs/PROTOCOL.md", "docs/ARCHITECTURE.md", "docs/BENCHMARKS.md"],
          Maintainers: ["RELEASING.md"]
        ],
        groups_for_modules: [
          "Running a topology": [NativeGossip, NativeGossip.Strategy],
          Observability: [NativeGossip.Telemetry]
        ]
      ]
    ]
  end

  def application do
    [
      extra_applications: extra_applications(Mix.env()),
      mod: {NativeGossip.Application, []}
    ]
  end

  # telemetry, when the application has it, starts before NativeGossip (an optional
  # application: OTP skips it when it is not there). Tests forge signed heartbeats with
  # :crypto; the library itself does not use it.
  defp extra_applications(:test), do: extra_applications(:prod) ++ [:crypto]
  defp extra_applications(_), do: [:logger, {:telemetry, :optional}]

  defp elixirc_paths(:test) do
    # With the real libcluster (LIBCLUSTER_PATH, or the hex set), its own state struct
    # is used.
    if System.get_env("LIBCLUSTER_PATH") || not path_deps?(),
      do: [
        "lib" | Path.wildcard("test/support/*.ex") -- ["test/support/cluster_strategy_state.ex"]
      ],
      else: ["lib", "test/support"]
  end

  defp elixirc_paths(_), do: ["lib"]

  # The NIF comes precompiled (rustler_precompiled) for the targets of
  # NativeGossip.Native; rustler builds it from source only when asked
  # (NATIVE_GOSSIP_BUILD=1). Two sets of the same dependencies: from hex, for users and
  # for publishing, or as path dependencies from ../shared/deps, for machines that cannot
  # reach hex (ours). NATIVE_GOSSIP_DEPS=hex or =path chooses; unset, the path set is
  # used when ../shared/deps is there beside this project.
  defp deps do
    if path_deps?() do
      shared = Path.expand("../shared/deps", __DIR__)

      [
        {:rustler_precompiled, "~> 0.8", path: Path.join(shared, "rustler_precompiled")},
        {:rustler, "~> 0.36", path: Path.join(shared, "rustler"), optional: true},
        # (libcluster, a path dependency below, needs telemetry too: then it must win.)
        {:telemetry, "~> 0.4 or ~> 1.0",
         [path: Path.join(shared, "telemetry"), optional: true] ++
           if(System.get_env("LIBCLUSTER_PATH"), do: [override: true], else: [])},
        {:ex_doc, "~> 0.34", path: Path.join(shared, "ex_doc"), only: :dev, runtime: false}
      ] ++ libcluster_from_path(shared)
    else
      [
        {:rustler_precompiled, "~> 0.8", []},
        # Only to build the NIF from source: rustler 0.37.1 and later need Elixir 1.15,
        # 0.36 builds the same crate (NativeGossip.Native.Target says so to users).
        {:rustler, "~> 0.36", optional: true},
        # Events (NativeGossip.Telemetry) are sent when the application has telemetry;
        # optional, so that Mix and releases start it before NativeGossip.
        {:telemetry, "~> 0.4 or ~> 1.0", optional: true},
        # NativeGossip.Strategy calls Cluster.Strategy.connect_nodes/4 when libcluster is
        # there: optional, so that an app with libcluster starts it first and builds
        # without "does not depend on :libcluster" warnings.
        {:libcluster, "~> 3.3", optional: true},
        {:ex_doc, "~> 0.34", only: :dev, runtime: false}
      ]
    end
  end

  # libcluster is a hex package these machines cannot fetch. LIBCLUSTER_PATH=<a checkout
  # of libcluster> makes it a path dependency (its hex deps jason and telemetry then come
  # from ../shared/deps: jason here, telemetry in deps/0), and the tests run against its real Cluster.Supervisor
  # (test/native_gossip/libcluster_test.exs); unset, the tests use a stand-in of its
  # state struct (test/support/cluster_strategy_state.ex).
  defp libcluster_from_path(shared) do
    case System.get_env("LIBCLUSTER_PATH") do
      nil ->
        []

      path ->
        [
          {:libcluster, "~> 3.3", path: path, optional: true},
          {:jason, "~> 1.1", path: Path.join(shared, "jason"), override: true}
        ]
    end
  end

  defp path_deps? do
    case System.get_env("NATIVE_GOSSIP_DEPS") do
      "path" -> true
      "hex" -> false
      _ -> File.dir?(Path.expand("../shared/deps/rustler_precompiled", __DIR__))
    end
  end

  defp package do
    [
      licenses: ["Apache-2.0"],
      links: %{
        "GitHub" => @source_url,
        "Changelog" => "#{@source_url}/blob/v#{@version}/CHANGELOG.md",
        "Docs" => "https://hexdocs.pm/native_gossip/#{@version}"
      },
      # What a build needs (the NIF from source included: the crates, the lock file,
      # .cargo/config.toml's musl and macOS link flags, and the core's Rust benchmark,
      # which its Cargo.toml declares, so cargo wants the file), the license and the
      # docs; no tests, Elixir benchmarks or build output (package_files_test.exs and
      # package_test.exs check, the latter on mix hex.build's tarball).
      files:
        ~w(lib native/*/src native/*/benches native/*/Cargo.toml Cargo.toml Cargo.lock) ++
          ~w(.cargo/config.toml) ++
          ~w(mix.exs README.md CHANGELOG.md LICENSE docs) ++
          ["checksum-Elixir.NativeGossip.Native.exs"]
    ]
  end
end
