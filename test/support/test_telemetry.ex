defmodule NativeGossip.TestTelemetry do
  @moduledoc false
  # Forwards every telemetry event NativeGossip sends on this node to a process, as
  # `{:telemetry, event, measurements, metadata}`, through the real telemetry library
  # (an optional dependency of NativeGossip, there in the test build).

  @events Enum.map(
            ~w(discovered connected disconnected left lost tags_changed suspect dead)a,
            &[:native_gossip, :peer, &1]
          ) ++ [[:native_gossip, :packets, :dropped], [:native_gossip, :packets, :send_failed]]

  @doc "Every event NativeGossip.Telemetry documents."
  def events, do: @events

  @doc "Attaches a handler that sends each event to `pid`; returns its id (for detach/1)."
  def forward(pid) do
    id = {__MODULE__, pid, make_ref()}
    :ok = :telemetry.attach_many(id, @events, &__MODULE__.handle/4, pid)
    id
  end

  def detach(id), do: :telemetry.detach(id)

  @doc false
  def handle(event, measurements, metadata, pid),
    do: send(pid, {:telemetry, event, measurements, metadata})
end
