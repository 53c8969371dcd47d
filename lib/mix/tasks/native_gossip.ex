defmodule NativeGossip.MixTask do
  @moduledoc false
  # What the mix tasks share: their arguments, the project compiled, the NIF loaded,
  # and their settings built by NativeGossip.Options (so the defaults exist once).

  alias NativeGossip.Options

  @doc "Parses `argv` strictly, compiles, checks the NIF; returns the options."
  @spec prepare!([String.t()], keyword()) :: keyword()
  def prepare!(argv, switches) do
    {opts, _, invalid} = OptionParser.parse(argv, strict: switches)
    if invalid != [], do: Mix.raise("unknown or invalid options: #{inspect(invalid)}")
    Mix.Task.run("compile")

    if error = NativeGossip.Native.Status.load_error(),
      do: Mix.raise("the NativeGossip NIF could not be loaded: #{error}")

    opts
  end

  # Flags of the tasks and the topology options they set.
  @flags [
    group: :multicast_addr,
    port: :port,
    if: :multicast_if,
    interface: :multicast_if,
    broadcast: :broadcast,
    encrypt: :encrypt,
    cluster: :cluster,
    resolve_short_names: :resolve_short_names
  ]

  @doc """
  The validated options of a topology made of `topology` (options from config, or
  `[]`) with the task's flags on top: `--group`, `--port`, `--if` (or `--interface`), `--broadcast`,
  `--encrypt`, `--cluster`, `--[no-]resolve-short-names`, and every `--secret`.
  """
  @spec options!(keyword(), keyword()) :: Options.t()
  def options!(flags, topology \\ []) do
    given = for {flag, key} <- @flags, Keyword.has_key?(flags, flag), do: {key, flags[flag]}

    given =
      case Keyword.get_values(flags, :secret) do
        [] -> given
        secrets -> [{:secret, secrets} | given]
      end

    opts = topology |> Keyword.merge(given) |> Keyword.put(:name, :mix_task)

    case Options.validate(opts) do
      {:ok, options} ->
        options

      {:error, {:invalid_option, key, reason}} ->
        flag = Enum.find_value(@flags, key, fn {f, k} -> k == key && f end)
        Mix.raise("--#{flag}: #{reason}")
    end
  end

  @doc """
  Decodes a datagram from `ip` as a topology with these settings would (`secrets`,
  `encrypt`, `max_clock_skew` in ms or `:infinity`, `seeds` addresses), stateless apart
  from that: with a secret, a heartbeat signed too far from this clock is `{:error,
  :stale}`, and one from an address its sender does not list `{:error,
  :foreign_source}` (in the engine's order). Returns `{:ok, heartbeat map}` (see `NativeGossip.Native.decode/3`) or
  `{:error, reason}`. The replay check, which needs state, is the caller's.
  """
  @spec decode(binary(), :inet.ip_address(), Options.t() | map()) ::
          {:ok, map()} | {:error, atom()}
  def decode(data, ip, %{secrets: secrets, encrypt: encrypt} = s) do
    seeds = for {addr, _port} <- Map.get(s, :seeds, []), is_tuple(addr), do: addr
    skew = Map.get(s, :max_clock_skew, :infinity)

    case NativeGossip.Native.decode(data, secrets, encrypt) do
      {:ok, hb} when secrets != [] ->
        cond do
          skew != :infinity and abs(hb.timestamp_ms - System.os_time(:millisecond)) > skew ->
            {:error, :stale}

          ip not in hb.addresses and ip not in seeds ->
            {:error, :foreign_source}

          true ->
            {:ok, hb}
        end

      other ->
        other
    end
  end
end
