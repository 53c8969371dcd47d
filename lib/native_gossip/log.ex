defmodule NativeGossip.Log do
  @moduledoc false
  # Debug lines. A topology started by libcluster (NativeGossip.Strategy) follows
  # `config :libcluster, debug: true` as libcluster's own strategies do: read at each
  # line, so it can be turned on and off at run time, and prefixed
  # "[libcluster:<topology>]" as theirs are. A standalone topology follows the Logger
  # level alone. Either way the line is built only when it is logged.

  require Logger

  @spec debug(atom() | nil, (() -> String.t())) :: :ok
  def debug(nil, message), do: Logger.debug(message)

  def debug(libcluster_topology, message) do
    if libcluster_debug?() do
      Logger.debug(fn -> "[libcluster:#{libcluster_topology}] " <> message.() end)
    end

    :ok
  end

  defp libcluster_debug? do
    Application.get_env(:libcluster, :debug, false) not in [nil, false, "false"]
  end
end
