defmodule NativeGossip.Native do
  @moduledoc false
  # One-line stubs for the NIFs in native/native_gossip_nif. The library loads from
  # priv/native/; if it cannot, `load_error/0` says why and topologies refuse to start
  # with that message instead of raising deep inside a call.

  @on_load :load_nif

  @doc false
  def load_nif do
    with dir when is_list(dir) <- :code.priv_dir(:native_gossip),
         path = :filename.join(dir, ~c"native/libnative_gossip_nif"),
         :ok <- :erlang.load_nif(path, 0) do
      :persistent_term.erase({__MODULE__, :load_error})
      :ok
    else
      error ->
        :persistent_term.put({__MODULE__, :load_error}, inspect(error))
        :ok
    end
  end

  @doc false
  def load_error, do: :persistent_term.get({__MODULE__, :load_error}, nil)

  def start(_opts), do: :erlang.nif_error(:nif_not_loaded)
  def stop(_ref, _leave?), do: :erlang.nif_error(:nif_not_loaded)
  def announce(_ref), do: :erlang.nif_error(:nif_not_loaded)
  def set_connected(_ref, _name, _connected?), do: :erlang.nif_error(:nif_not_loaded)
  def set_seeds(_ref, _seeds), do: :erlang.nif_error(:nif_not_loaded)
  def report_after(_ref, _name, _ms), do: :erlang.nif_error(:nif_not_loaded)
  def drop_reasons, do: :erlang.nif_error(:nif_not_loaded)
  def decode(_data, _secrets), do: :erlang.nif_error(:nif_not_loaded)
  def running(_ref), do: :erlang.nif_error(:nif_not_loaded)
  def panic_for_test(_ref, _place), do: :erlang.nif_error(:nif_not_loaded)
  def members(_ref), do: :erlang.nif_error(:nif_not_loaded)
  def stats(_ref), do: :erlang.nif_error(:nif_not_loaded)
end
