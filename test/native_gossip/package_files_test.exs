defmodule NativeGossip.PackageFilesTest do
  # The hex package's `files:` (mix.exs), expanded as hex expands them (each entry a
  # path or a wildcard; a directory with everything under it): what a user's build
  # needs (the NIF from source included), the license and the docs, and nothing of the
  # repository's tests, benchmarks or build output.
  use ExUnit.Case, async: true

  @repo Path.expand("../..", __DIR__)

  defp package_files do
    for entry <- Mix.Project.config()[:package][:files],
        path <- Path.wildcard(Path.join(@repo, entry), match_dot: true),
        file <-
          if(File.dir?(path),
            do: Path.wildcard(Path.join(path, "**"), match_dot: true),
            else: [path]
          ),
        File.regular?(file),
        do: Path.relative_to(file, @repo)
  end

  test "the package holds what a build, the license and the docs need" do
    files = package_files()

    for must <- ~w(mix.exs LICENSE CHANGELOG.md README.md Cargo.toml Cargo.lock
                   .cargo/config.toml lib/native_gossip.ex
                   native/native_gossip_core/Cargo.toml native/native_gossip_core/src/lib.rs
                   native/native_gossip_io/src/lib.rs native/native_gossip_nif/src/lib.rs
                   docs/PROTOCOL.md) do
      assert must in files, "the package lacks #{must}"
    end
  end

  test "the package holds no tests, benchmarks, build output or local state" do
    for file <- package_files(),
        prefix <- ~w(test/ bench/ target/ _build/ deps/ priv/ _artifacts/ .git/ .ci/ examples/) do
      refute String.starts_with?(file, prefix), "the package would ship #{file}"
    end
  end
end
