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
    # As libcluster's broadcast_only: --group is then the broadcast address.
    broadcast: :broadcast_only,
    encrypt: :encrypt,
    cluster: :cluster,
    compat: :compat,
    resolve_short_names: :resolve_short_names
  ]

  @doc """
  The validated options of a task run with `flags`: those of the topology that
  `--topology` names (see `topology!/1`), if any, with the flags on top (`options!/3`).
  """
  @spec task_options!(keyword()) :: Options.t()
  def task_options!(flags) do
    case flags[:topology] do
      nil ->
        options!(flags)

      name ->
        {topology, mode} = topology!(name)
        options!(flags, topology, mode)
    end
  end

  @doc """
  The options of topology `name` in config: from `config :native_gossip, :topologies`,
  or else a `config :libcluster, :topologies` entry whose strategy is
  `NativeGossip.Strategy` (its `config:`; with libcluster's meaning of every key) or
  libcluster's `Cluster.Strategy.Gossip` (its `config:`, read as `compat: :libcluster`
  reads it, to check a cluster before or during a switch). Returns `{options, mode}`,
  `mode` as `NativeGossip.Options.validate/2` takes it.
  """
  @spec topology!(String.t()) :: {keyword(), :standalone | :strategy}
  def topology!(name) do
    key = String.to_atom(name)
    ours = Application.get_env(:native_gossip, :topologies, [])
    libcluster = Application.get_env(:libcluster, :topologies, [])

    cond do
      opts = Keyword.get(ours, key) ->
        {opts, :standalone}

      entry = Keyword.get(libcluster, key) ->
        libcluster_topology!(name, entry)

      true ->
        Mix.raise(
          "no topology #{name} in config :native_gossip, :topologies, nor in config " <>
            ":libcluster, :topologies (known: " <>
            "#{inspect(Keyword.keys(ours) ++ Keyword.keys(libcluster))})"
        )
    end
  end

  defp libcluster_topology!(name, entry) do
    config = Keyword.get(entry, :config, [])

    case Keyword.get(entry, :strategy) do
      NativeGossip.Strategy ->
        {config, :strategy}

      Cluster.Strategy.Gossip ->
        {Keyword.put(config, :compat, :libcluster), :strategy}

      other ->
        Mix.raise(
          "topology #{name} of config :libcluster, :topologies uses #{inspect(other)}, not " <>
            "NativeGossip.Strategy (nor Cluster.Strategy.Gossip)"
        )
    end
  end

  @doc """
  The validated options of a topology made of `topology` (options from config, or
  `[]`) with the task's flags on top: `--group`, `--port`, `--if` (or `--interface`), `--broadcast`,
  `--encrypt`, `--cluster`, `--compat libcluster`, `--[no-]resolve-short-names`, and
  every `--secret`. `mode`: how the topology's options are validated (`:strategy` for
  a libcluster topology's `config:`).
  """
  @spec options!(keyword(), keyword(), :standalone | :strategy) :: Options.t()
  def options!(flags, topology \\ [], mode \\ :standalone) do
    given = for {flag, key} <- @flags, Keyword.has_key?(flags, flag), do: {key, flags[flag]}
    given = Keyword.replace_lazy(given, :compat, &compat_flag/1)

    given =
      case Keyword.get_values(flags, :secret) do
        [] -> given
        secrets -> [{:secret, secrets} | given]
      end

    opts = topology |> Keyword.merge(given) |> Keyword.put(:name, :mix_task)

    case Options.validate(opts, mode) do
      {:ok, options} ->
        for note <- options.notes, do: Mix.shell().info("note    " <> note)
        options

      {:error, {:invalid_option, key, reason}} ->
        flag = Enum.find_value(@flags, key, fn {f, k} -> k == key && f end)
        Mix.raise("--#{flag}: #{reason}")
    end
  end

  defp compat_flag("libcluster"), do: :libcluster
  defp compat_flag(other), do: Mix.raise("--compat: expected libcluster, got: #{inspect(other)}")

  @doc """
  Decodes a datagram from `ip` as a topology with these settings would (`secrets`,
  `encrypt`, `compat`, `max_clock_skew` in ms or `:infinity`, `seeds` addresses),
  stateless apart from that: with a secret, a heartbeat signed too far from this clock
  is `{:error, :stale}`, and one from an address its sender does not list `{:error,
  :foreign_source}` (in the engine's order). Returns `{:ok, heartbeat map}` (see
  `NativeGossip.Native.decode/4`; `format: :libcluster` for a libcluster heartbeat
  with compat, which has no clock or addresses to check) or `{:error, reason}`. The
  replay check, which needs state, is the caller's.
  """
  @spec decode(binary(), :inet.ip_address(), Options.t() | map()) ::
          {:ok, map()} | {:error, atom()}
  def decode(data, ip, %{secrets: secrets, encrypt: encrypt} = s) do
    seeds = for {addr, _port} <- Map.get(s, :seeds, []), is_tuple(addr), do: addr
    skew = Map.get(s, :max_clock_skew, :infinity)
    compat = Map.get(s, :compat) == :libcluster

    case NativeGossip.Native.decode(data, secrets, encrypt, compat) do
      {:ok, %{format: :native} = hb} when secrets != [] ->
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
