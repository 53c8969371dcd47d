defmodule NativeGossip.DropReason do
  # The table lives in the Rust core, the one home of drop reasons; this module reads it
  # when it is compiled, so the log summary, telemetry, the doctor and these docs say
  # what the native code counts. A test checks the result against the loaded NIF.
  @source Path.expand("../../native/native_gossip_core/src/reason.rs", __DIR__)
  @external_resource @source

  @reasons (for [_, name, text] <-
                  Regex.scan(~r/^\s*[A-Z]\w* => "([a-z_]+)", "([^"]+)";$/m, File.read!(@source)) do
              {String.to_atom(name), text}
            end)

  if @reasons == [] do
    raise CompileError, description: "no drop reasons found in #{@source}"
  end

  @moduledoc """
  Why a datagram was dropped. Every datagram a topology receives is either accepted or
  dropped for exactly one of these reasons, and counted under it (`NativeGossip.stats/1`,
  the log summary every `:log_interval`, and the telemetry event
  `[:native_gossip, :packets, :dropped]`).

  | reason | what it means |
  |---|---|
  #{Enum.map_join(@reasons, "\n", fn {r, text} -> "| `#{inspect(r)}` | #{String.replace(text, "|", "\\|")} |" end)}
  """

  @typedoc "A drop reason."
  @type t :: unquote(Enum.reduce(Enum.map(@reasons, &elem(&1, 0)), &{:|, [], [&1, &2]}))

  @doc "Every reason, in the order of the native counters."
  @spec all() :: [t()]
  def all, do: unquote(Enum.map(@reasons, &elem(&1, 0)))

  @doc "What `reason` means and, where there is something to do, what."
  @spec explain(t() | atom()) :: String.t()
  def explain(reason)

  for {reason, text} <- @reasons do
    def explain(unquote(reason)), do: unquote(text)
  end

  def explain(_other), do: "see NativeGossip.DropReason"
end
