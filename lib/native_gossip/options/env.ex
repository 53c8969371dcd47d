defmodule NativeGossip.Options.Env do
  @moduledoc false
  # NativeGossip.options_from_env/1: the options a deployment usually sets, read from
  # environment variables (the table is in that function's docs).

  @env [
    {"SECRET", :secret, :string},
    {"SECRETS", :secret, :secrets},
    {"PORT", :port, :integer},
    {"MULTICAST_ADDR", :multicast_addr, :string},
    {"MULTICAST_IF", :multicast_if, :string},
    {"MULTICAST_TTL", :multicast_ttl, :integer},
    {"BROADCAST", :broadcast, :broadcast},
    {"SEEDS", :seeds, :list},
    {"HEARTBEAT_INTERVAL", :heartbeat_interval, :integer}
  ]

  @doc "The options set in the environment under `prefix` (see NativeGossip.options_from_env/1)."
  @spec read(String.t()) :: keyword()
  def read(prefix) do
    set = fn suffix -> System.get_env(prefix <> suffix) not in [nil, ""] end

    if set.("SECRET") and set.("SECRETS") do
      raise ArgumentError,
            "set #{prefix}SECRET (one secret) or #{prefix}SECRETS (a rotation list, one " <>
              "secret a line), not both"
    end

    for {suffix, key, form} <- @env,
        value = System.get_env(prefix <> suffix),
        value not in [nil, ""] do
      {key, env_value(prefix <> suffix, value, form)}
    end
  end

  defp env_value(_var, value, :string), do: value

  defp env_value(var, value, :integer) do
    case Integer.parse(value) do
      {n, ""} -> n
      _ -> raise ArgumentError, "#{var} must be an integer, got: #{inspect(value)}"
    end
  end

  # One secret a line (a secret may hold any other character), as a file or a
  # Kubernetes secret with several lines gives them.
  defp env_value(_var, value, :secrets) do
    case String.split(value, ["\r\n", "\n"], trim: true) do
      [one] -> one
      many -> many
    end
  end

  defp env_value(_var, value, :list),
    do: value |> String.split(",", trim: true) |> Enum.map(&String.trim/1)

  defp env_value(_var, "true", :broadcast), do: true
  defp env_value(_var, "false", :broadcast), do: false

  defp env_value(var, value, :broadcast) do
    case :inet.parse_ipv4strict_address(String.to_charlist(value)) do
      {:ok, _} ->
        value

      {:error, _} ->
        raise ArgumentError,
              "#{var} must be true, false or an IPv4 broadcast address, got: #{inspect(value)}"
    end
  end
end
