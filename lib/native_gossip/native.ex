defmodule NativeGossip.Native do
  @moduledoc false
  # One-line stubs for the NIFs in native/native_gossip_nif.
  #
  # The library comes precompiled for the targets of NativeGossip.Native.Target (rustler_precompiled): at
  # compile time the tarball for this machine is downloaded from the GitHub release of
  # this version (or from NATIVE_GOSSIP_BASE_URL, for mirrors and tests), its checksum
  # checked against checksum-Elixir.NativeGossip.Native.exs, and it is unpacked into
  # priv/native. With NATIVE_GOSSIP_BUILD=1 (or true), `config :rustler_precompiled,
  # :force_build, native_gossip: true` (this repository's own config), or a version
  # ending in -dev, it is built from source by rustler (cargo needed). NATIVE_GOSSIP_PORTABLE=1 also
  # builds the socket paths of macOS and the BSDs on Linux (tests).
  #
  # If the library does not load, this module does not either:
  # NativeGossip.Native.Status.load_error/0 says so, and topologies refuse to start
  # with that message instead of raising deep inside a call.

  version = Mix.Project.config()[:version]
  source_url = Mix.Project.config()[:source_url]

  force_build =
    System.get_env("NATIVE_GOSSIP_BUILD") in ["1", "true"] or
      Application.compile_env(:rustler_precompiled, [:force_build, :native_gossip], false) or
      System.get_env("RUSTLER_PRECOMPILED_FORCE_BUILD_ALL") in ["1", "true"] or
      "dev" in Version.parse!(version).pre

  # On a target with no precompiled NIF (and no build from source asked), or on
  # Windows, compilation stops here with our sentence.
  with {:error, sentence} <-
         NativeGossip.Native.Target.check(NativeGossip.Native.Target.current(), force_build) do
    raise CompileError, description: sentence
  end

  use RustlerPrecompiled,
    otp_app: :native_gossip,
    crate: "native_gossip_nif",
    version: version,
    # A trailing slash, so that a bare host ("http://mirror:8080") has a path.
    base_url:
      String.trim_trailing(
        System.get_env("NATIVE_GOSSIP_BASE_URL") ||
          "#{source_url}/releases/download/v#{version}",
        "/"
      ) <> "/",
    force_build: force_build,
    features:
      if(System.get_env("NATIVE_GOSSIP_PORTABLE") in ["1", "true"], do: ["portable"], else: []),
    nif_versions: ["2.15"],
    targets: NativeGossip.Native.Target.targets()

  def start(_opts), do: :erlang.nif_error(:nif_not_loaded)
  def stop(_ref, _leave?), do: :erlang.nif_error(:nif_not_loaded)
  def announce(_ref), do: :erlang.nif_error(:nif_not_loaded)
  def set_connected(_ref, _name, _connected?, _address), do: :erlang.nif_error(:nif_not_loaded)
  def set_seeds(_ref, _seeds), do: :erlang.nif_error(:nif_not_loaded)
  def report_after(_ref, _name, _ms), do: :erlang.nif_error(:nif_not_loaded)
  def drop_reasons, do: :erlang.nif_error(:nif_not_loaded)
  def decode(_data, _secrets, _encrypt, _compat), do: :erlang.nif_error(:nif_not_loaded)
  def goodbye(_name, _secrets, _encrypt, _cluster), do: :erlang.nif_error(:nif_not_loaded)
  def set_tags(_ref, _tags), do: :erlang.nif_error(:nif_not_loaded)
  def running(_ref), do: :erlang.nif_error(:nif_not_loaded)
  def panic_for_test(_ref, _place), do: :erlang.nif_error(:nif_not_loaded)
  def pause_for_test(_ref, _ms), do: :erlang.nif_error(:nif_not_loaded)
  def take_events(_ref, _max), do: :erlang.nif_error(:nif_not_loaded)
  def members(_ref), do: :erlang.nif_error(:nif_not_loaded)
  def stats(_ref), do: :erlang.nif_error(:nif_not_loaded)
end

defmodule NativeGossip.Native.Status do
  @moduledoc false

  @doc "nil when the NIF is loaded; otherwise why not, in a sentence."
  @spec load_error() :: String.t() | nil
  def load_error do
    case Code.ensure_loaded(NativeGossip.Native) do
      {:module, _} ->
        nil

      {:error, reason} ->
        "NativeGossip.Native did not load (#{inspect(reason)}): its NIF library in " <>
          "#{Application.app_dir(:native_gossip, "priv/native")} is missing or does not " <>
          "load on this system (the VM logged why)"
    end
  end
end
