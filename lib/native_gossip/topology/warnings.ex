defmodule NativeGossip.Topology.Warnings do
  @moduledoc false
  # What a topology says about itself: its options (once, shortly after its start), its
  # multicast membership, and the error when a topology of the same name is already
  # running (with where each start came from).

  require Logger

  alias NativeGossip.Options

  @typedoc """
  Where a start comes from: `:config`, `{:libcluster, topology}`, or `{:caller, name
  or pid}`, the supervisor that starts the child.
  """
  @type origin :: :config | {:libcluster, atom()} | {:caller, atom() | pid()}

  @doc "The warnings about a topology's options, and its notes (Options.notes)."
  @spec options(Options.t()) :: :ok
  def options(%Options{} = options) do
    unauthenticated(options)
    short_secret(options)
    compat(options)

    for note <- options.notes,
        do: Logger.warning("NativeGossip topology #{inspect(options.name)}: #{note}")

    :ok
  end

  @doc "Where a start comes from when its caller does not say: the caller, or libcluster."
  @spec origin(atom() | nil) :: {:caller, atom() | pid()} | {:libcluster, atom()}
  def origin(nil) do
    case Process.info(self(), :registered_name) do
      {:registered_name, name} -> {:caller, name}
      _ -> {:caller, self()}
    end
  end

  def origin(libcluster_topology), do: {:libcluster, libcluster_topology}

  @doc "The multicast membership's news (the native side joins in the background)."
  @spec membership(Options.t(), :joined | {:not_joined, String.t()}) :: :ok
  def membership(options, :joined) do
    Logger.info("NativeGossip topology #{inspect(options.name)} joined its multicast group")
  end

  def membership(options, {:not_joined, message}) do
    Logger.warning(
      "NativeGossip topology #{inspect(options.name)}: #{message}; retrying in the background"
    )
  end

  @doc "The error logged when a start finds its topology's name taken."
  @spec already_running(Options.t(), pid(), origin() | nil, origin()) :: :ok
  def already_running(options, pid, first, origin) do
    Logger.error(
      "NativeGossip topology #{inspect(options.name)} is already running " <>
        "(#{inspect(pid)}, started from #{describe(first)}); this start, from " <>
        "#{describe(origin)}, is " <>
        "refused. Start each topology once: in config :native_gossip, :topologies, or " <>
        "in a supervision tree, or as a libcluster topology (or give it another :name)"
    )
  end

  defp describe(nil), do: "elsewhere"
  defp describe(:config), do: "config :native_gossip, :topologies"
  defp describe({:caller, pid}) when is_pid(pid), do: "process #{inspect(pid)}"
  defp describe({:caller, name}), do: inspect(name)

  defp describe({:libcluster, topology}),
    do: "libcluster's topology #{inspect(topology)} (NativeGossip.Strategy)"

  defp unauthenticated(%Options{secrets: []} = o) do
    Logger.warning(
      "NativeGossip topology #{inspect(o.name)} has no :secret: any host that can send to " <>
        "#{:inet.ntoa(o.multicast_addr)}:#{o.port} can make this node connect to a name of " <>
        "its choosing. Set the same :secret on every node to authenticate heartbeats."
    )
  end

  defp unauthenticated(_), do: :ok

  # HMAC takes a key of any length, but a short one can be guessed offline from one
  # captured heartbeat.
  defp short_secret(%Options{secrets: secrets} = o) do
    if Enum.any?(secrets, &(byte_size(&1) < 16)) do
      Logger.warning(
        "NativeGossip topology #{inspect(o.name)}: a :secret is shorter than 16 bytes; " <>
          "anyone who captures a heartbeat can try to guess it offline. Use at least 16 " <>
          "random bytes (for example :crypto.strong_rand_bytes(24) |> Base.encode64())."
      )
    end
  end

  defp compat(%Options{compat: :libcluster} = o) do
    Logger.warning(
      "NativeGossip topology #{inspect(o.name)} also speaks libcluster's Gossip format " <>
        "(compat: :libcluster), which has no MAC and no replay protection. Remove :compat " <>
        "once the last libcluster node is gone."
    )
  end

  defp compat(_), do: :ok
end
