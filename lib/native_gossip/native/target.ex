defmodule NativeGossip.Native.Target do
  @moduledoc false
  # Which NIF this machine gets, decided when NativeGossip compiles (by
  # NativeGossip.Native, at compile time): the precompiled one for a target in
  # targets/0, or one built from source when asked (NATIVE_GOSSIP_BUILD=1, the
  # :force_build config, or a -dev version). On any other target compilation stops
  # with check/1's sentence, in our words, instead of rustler_precompiled's "not
  # available for this target"; Windows is not supported at all. The target is
  # rustler_precompiled's own reading of this machine (TARGET_ARCH, TARGET_OS,
  # TARGET_ABI and TARGET_VENDOR override it, as Nerves sets them).

  # The release workflow (.github/workflows/release.yml) has one job per target here:
  # test/native_gossip/workflows_test.exs checks it.
  @targets ~w(
    aarch64-apple-darwin
    x86_64-apple-darwin
    aarch64-unknown-linux-gnu
    x86_64-unknown-linux-gnu
    aarch64-unknown-linux-musl
    x86_64-unknown-linux-musl
  )

  @doc "The targets a release publishes a precompiled NIF for."
  @spec targets() :: [String.t()]
  def targets, do: @targets

  @doc "This machine's target triple as rustler_precompiled reads it, or nil."
  @spec current() :: String.t() | nil
  def current do
    case RustlerPrecompiled.target() do
      {:ok, "nif-" <> nif_target} ->
        nif_target |> String.split("-", parts: 2) |> List.last()

      {:error, message} ->
        case Regex.run(~r/for this target: "([^"]+)"/, message) do
          [_, triple] -> triple
          nil -> nil
        end
    end
  end

  @doc """
  :ok when NativeGossip can compile for `triple` (precompiled, or built from source
  when `build?`); otherwise the sentence that stops compilation.
  """
  @spec check(String.t() | nil, boolean()) :: :ok | {:error, String.t()}
  def check(triple, build?) do
    cond do
      windows?(triple) ->
        {:error,
         "NativeGossip does not support Windows (#{triple}): it runs on Linux, macOS " <>
           "and the BSDs."}

      triple in @targets or build? ->
        :ok

      true ->
        {:error,
         "NativeGossip has no precompiled NIF for #{triple || "this machine's target"}: " <>
           "build it from source by adding #{rustler_dep()} to your deps and setting " <>
           "NATIVE_GOSSIP_BUILD=1 when you compile (Rust >= 1.91 and cargo needed). " <>
           "Precompiled targets: #{Enum.join(@targets, ", ")}."}
    end
  end

  # rustler 0.37.1 and later need Elixir 1.15; 0.36 builds with the same crates.
  @doc "The dependency line that builds the NIF from source with this Elixir."
  @spec rustler_dep() :: String.t()
  def rustler_dep do
    if Version.match?(System.version(), "~> 1.14.0"),
      do: ~s({:rustler, "~> 0.36.0", optional: true}),
      else: ~s({:rustler, "~> 0.36", optional: true})
  end

  defp windows?(nil), do: match?({:win32, _}, :os.type())
  defp windows?(triple), do: triple =~ "windows" or match?({:win32, _}, :os.type())
end
