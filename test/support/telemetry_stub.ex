defmodule :telemetry do
  @moduledoc false
  # Stands in for the telemetry library (a hex package, which cannot be installed
  # here) in the test build only: NativeGossip relies on nothing but
  # `:telemetry.execute/3` being there at run time. Events go to the process registered
  # as :native_gossip_telemetry_test, if there is one.

  def execute(event, measurements, metadata) do
    case Process.whereis(:native_gossip_telemetry_test) do
      nil -> :ok
      pid -> send(pid, {:telemetry, event, measurements, metadata})
    end

    :ok
  end
end
