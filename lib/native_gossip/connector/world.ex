defmodule NativeGossip.Connector.World do
  @moduledoc false
  # What NativeGossip.Connector asks of the world, as functions, and their real answers:
  # the connector itself only decides, so a test hands it a world of its own (a clock
  # it moves, nodes it says are connected) and reads the effects it returns.

  require Logger

  @type t :: %{
          connected?: (node() -> boolean()),
          pending?: (node() -> boolean()),
          allowed?: (node(), NativeGossip.tags() -> boolean()),
          now: (() -> integer())
        }

  @doc """
  The real world of a topology with these options: `:list_nodes` says who is
  connected, `:connect_if` who may be, net_kernel whether a handshake is under way, and
  the monotonic clock (in ms) what time it is.
  """
  @spec new(NativeGossip.Options.t()) :: t()
  def new(%{list_nodes: {m, f, a}} = options) do
    %{
      connected?: fn node -> node in apply(m, f, a) end,
      pending?: &pending?/1,
      allowed?: allowed(Map.get(options, :connect_if)),
      now: fn -> System.monotonic_time(:millisecond) end
    }
  end

  # A handshake with `node` is under way (either side started it).
  defp pending?(node) do
    case :net_kernel.node_info(node, :state) do
      {:ok, state} -> state in [:pending, :up_pending]
      _ -> false
    end
  catch
    # Not distributed: no handshake can be under way.
    :error, :badarg -> false
  end

  # :connect_if says yes (or there is none). A function that raises or returns
  # anything but true says no, with a warning.
  defp allowed(nil), do: fn _node, _tags -> true end
  defp allowed({m, f, a}), do: fn node, tags -> allowed?({m, f, a}, node, tags) end

  defp allowed?({m, f, a} = mfa, node, tags) do
    case apply(m, f, a ++ [node, tags]) do
      result when is_boolean(result) ->
        result

      other ->
        Logger.warning(
          "NativeGossip: :connect_if #{inspect(mfa)} returned #{inspect(other)} for " <>
            "#{node}, not a boolean: not connecting"
        )

        false
    end
  catch
    kind, reason ->
      Logger.warning(
        "NativeGossip: :connect_if #{inspect(mfa)} failed for #{node}: " <>
          Exception.format_banner(kind, reason)
      )

      false
  end

  @doc """
  The remote IP address of the distribution connection with `node`, or nil (none, or
  a distribution carrier that has no IP address).
  """
  @spec dist_address(node()) :: :inet.ip_address() | nil
  def dist_address(node) do
    case :net_kernel.node_info(node, :address) do
      {:ok, {:net_address, {ip, _port}, _host, _protocol, _family}} when is_tuple(ip) -> ip
      _ -> nil
    end
  catch
    _, _ -> nil
  end
end
