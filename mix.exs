defmodule Mix.Tasks.Compile.NativeGossipNif do
  @moduledoc false
  # Builds the Rust NIF with cargo and installs it as priv/native/libnative_gossip_nif.so.
  # Defined here rather than taken from the `rustler` hex package, so the library has no
  # hex dependencies. A no-op when no Rust source changed since the last build.
  use Mix.Task.Compiler

  @crate "native_gossip_nif"
  @lib "lib#{@crate}.so"

  @impl true
  def run(_args) do
    root = File.cwd!()
    dest = Path.join([root, "priv", "native", @lib])

    if up_to_date?(root, dest) do
      {:noop, []}
    else
      build(root, dest)
    end
  end

  defp sources(root) do
    [Path.join(root, "Cargo.toml"), Path.join(root, "Cargo.lock")] ++
      Path.wildcard(Path.join(root, "native/**/{*.rs,Cargo.toml}"))
  end

  defp up_to_date?(root, dest) do
    case File.stat(dest, time: :posix) do
      {:ok, %{mtime: built}} ->
        root |> sources() |> Enum.all?(&(mtime(&1) <= built))

      {:error, _} ->
        false
    end
  end

  defp mtime(path) do
    case File.stat(path, time: :posix) do
      {:ok, %{mtime: t}} -> t
      {:error, _} -> 0
    end
  end

  defp build(root, dest) do
    cargo = System.get_env("CARGO", "cargo")
    target_dir = Path.join(root, "target")

    if System.find_executable(cargo) == nil do
      error("cargo was not found on PATH: install Rust (https://rustup.rs) to build NativeGossip")
    else
      Mix.shell().info("Compiling NIF #{@crate} (cargo build --release)")

      args = ["build", "--release", "--package", @crate, "--target-dir", target_dir]

      case System.cmd(cargo, args, cd: root, stderr_to_stdout: true, into: IO.stream()) do
        {_, 0} ->
          built = Path.join([target_dir, "release", @lib])
          File.mkdir_p!(Path.dirname(dest))
          # Remove, then copy: overwriting a loaded shared object in place can crash the VM.
          File.rm(dest)
          File.cp!(built, dest)
          Mix.Project.build_structure()
          {:ok, []}

        {_, status} ->
          error("cargo build failed with exit status #{status} (output above)")
      end
    end
  end

  defp error(message) do
    Mix.shell().error(message)

    diagnostic = %Mix.Task.Compiler.Diagnostic{
      compiler_name: "native_gossip_nif",
      file: "Cargo.toml",
      message: message,
      position: nil,
      severity: :error
    }

    {:error, [diagnostic]}
  end
end

defmodule NativeGossip.MixProject do
  use Mix.Project

  @version "0.1.0"

  def project do
    [
      app: :native_gossip,
      version: @version,
      elixir: "~> 1.14",
      compilers: [:native_gossip_nif] ++ Mix.compilers(),
      elixirc_paths: elixirc_paths(Mix.env()),
      start_permanent: Mix.env() == :prod,
      deps: [],
      description:
        "Zero-configuration BEAM clustering by UDP multicast heartbeats, " <>
          "with the socket in a Rust NIF thread. A libcluster strategy and a standalone service.",
      package: package(),
      # For `mix docs` (ex_doc is a hex package: add it where hex is reachable).
      docs: [
        main: "NativeGossip",
        extras: [
          "README.md",
          "docs/DEPLOYMENT.md",
          "docs/MIGRATING.md",
          "docs/PROTOCOL.md",
          "docs/BENCHMARKS.md"
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

  # Tests forge signed heartbeats with :crypto; the library itself does not use it.
  defp extra_applications(:test), do: [:logger, :crypto]
  defp extra_applications(_), do: [:logger]

  defp elixirc_paths(:test), do: ["lib", "test/support"]
  defp elixirc_paths(_), do: ["lib"]

  defp package do
    [
      licenses: ["Apache-2.0"],
      files: ~w(lib native/*/src native/*/Cargo.toml Cargo.toml Cargo.lock mix.exs README.md docs)
    ]
  end
end
