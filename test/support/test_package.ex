defmodule NativeGossip.TestPackage do
  @moduledoc false
  # The hex package as a release makes it (RELEASING.md), for the tests that install
  # NativeGossip as users do (package_test.exs, release_test.exs):
  #
  #   1. the tracked files copied to <tmp>/src, the version's -dev suffix dropped
  #      (RELEASING.md step 1: a -dev version always builds from source);
  #   2. this machine's release tarball of the NIF and its checksum file, made by
  #      .ci/nif-artifact.sh as the release workflow makes them (linked against the
  #      glibc floor on Linux gnu);
  #   3. `mix hex.build` with the hex client of ../shared/deps/hex (installed into a
  #      private MIX_ARCHIVES) and the hex dependency set: the tarball hex.pm would get;
  #   4. that tarball unpacked into <tmp>/native_gossip, beside a link to ../shared
  #      (where its dependencies come from on these machines).

  @repo Path.expand("../..", __DIR__)

  @type t :: %{
          package_dir: Path.t(),
          tarball: Path.t(),
          nif: Path.t(),
          artifacts: Path.t(),
          version: String.t(),
          metadata: map()
        }

  @doc "Builds and unpacks the package under `tmp`."
  @spec build!(Path.t()) :: t()
  def build!(tmp) do
    src = Path.join(tmp, "src")
    copy_tracked!(src)
    version = release_version!(src)
    File.ln_s!(Path.expand("../shared", @repo), Path.join(tmp, "shared"))

    run!("sh", [".ci/nif-artifact.sh"], src, [
      {"CARGO_TARGET_DIR", Path.join(@repo, "target")},
      {"NATIVE_GOSSIP_TOOLS", Path.join(@repo, "_build/tools")}
    ])

    [nif] = Path.wildcard(Path.join(src, "_artifacts/*.tar.gz"))

    archives = Path.join(tmp, "archives")
    hex = Path.expand("../shared/deps/hex/hex.ez", @repo)
    env = [{"MIX_ARCHIVES", archives}, {"NATIVE_GOSSIP_DEPS", "hex"}, {"MIX_ENV", "prod"}]
    run!("mix", ["archive.install", "--force", hex], src, env)
    tarball = Path.join(tmp, "native_gossip-#{version}.tar")
    run!("mix", ["hex.build", "--output", tarball], src, env)

    package = Path.join(tmp, "native_gossip")
    metadata = unpack!(tarball, package)

    %{
      package_dir: package,
      tarball: tarball,
      nif: nif,
      artifacts: Path.dirname(nif),
      version: version,
      metadata: metadata
    }
  end

  defp copy_tracked!(dest) do
    {files, 0} = System.cmd("git", ["ls-files"], cd: @repo)

    for f <- String.split(files, "\n", trim: true), File.regular?(Path.join(@repo, f)) do
      File.mkdir_p!(Path.dirname(Path.join(dest, f)))
      File.cp!(Path.join(@repo, f), Path.join(dest, f))
    end
  end

  defp release_version!(src) do
    mix_exs = Path.join(src, "mix.exs")
    [_, version] = Regex.run(~r/@version "([^"]+)"/, File.read!(mix_exs))
    release = String.replace_suffix(version, "-dev", "")

    File.write!(
      mix_exs,
      String.replace(File.read!(mix_exs), ~s(@version "#{version}"), ~s(@version "#{release}"))
    )

    release
  end

  # A hex tarball: VERSION, CHECKSUM, metadata.config and contents.tar.gz.
  defp unpack!(tarball, dest) do
    {:ok, outer} = :erl_tar.extract(String.to_charlist(tarball), [:memory])
    outer = Map.new(outer, fn {name, bytes} -> {List.to_string(name), bytes} end)
    File.mkdir_p!(dest)

    :ok =
      :erl_tar.extract({:binary, outer["contents.tar.gz"]}, [
        :compressed,
        cwd: String.to_charlist(dest)
      ])

    {:ok, terms} = consult(outer["metadata.config"])
    Map.new(terms, fn {k, v} -> {k, v} end)
  end

  defp consult(string) do
    {:ok, tokens, _} = :erl_scan.string(String.to_charlist(string))
    {:ok, for(form <- split_forms(tokens), do: parse!(form))}
  end

  defp split_forms(tokens) do
    tokens
    |> Enum.chunk_while(
      [],
      fn
        {:dot, _} = dot, acc -> {:cont, Enum.reverse([dot | acc]), []}
        t, acc -> {:cont, [t | acc]}
      end,
      fn acc -> {:cont, acc} end
    )
    |> Enum.reject(&(&1 == []))
  end

  defp parse!(form) do
    {:ok, term} = :erl_parse.parse_term(form)
    term
  end

  defp run!(cmd, args, dir, env) do
    {out, status} = System.cmd(cmd, args, cd: dir, env: env, stderr_to_stdout: true)

    if status != 0,
      do: raise("#{cmd} #{Enum.join(args, " ")} failed (#{status}) in #{dir}:\n#{out}")

    out
  end
end
