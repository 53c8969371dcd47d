defmodule NativeGossip.Connector.World do
  @moduledoc false
  # What NativeGossip.Connector asks of the world, as functions, and their real answers:
  # the connector itself only decides, so a test hands it a world of its own (a clock
  # it moves, nodes it says are connected) and reads the effects it returns.

  require Logger

  @type t :: %{
          connected?: (node() -> boolean()),
          pending?: (node() -> boolean()),
          handshakes: (() -> [node()]),
          allowed?: (node(), NativeGossip.tags() -> boolean()),
          longnames: boolean(),
          now: (() -> integer())
        }

  @doc """
  The real world of a topology with these options: `:list_nodes` says who is
  connected, `:connect_if` who may be, net_kernel's table of connections whether a
  handshake is under way (with one peer, or with which), net_kernel whether this node
  uses long names (asked once: net_kernel is a single process, the busiest of a VM
  while many nodes connect at once), and the monotonic clock (in ms) what time it is.
  """
  @spec new(NativeGossip.Options.t()) :: t()
  def new(%{list_nodes: {m, f, a}} = options) do
    %{
      connected?: fn node -> node in apply(m, f, a) end,
      pending?: &pending?/1,
      handshakes: &handshakes/0,
      allowed?: allowed(Map.get(options, :connect_if)),
      longnames: :net_kernel.longnames() == true,
      now: fn -> System.monotonic_time(:millisecond) end
    }
  end

  # A handshake with `node` is under way (either side started it). A node already up is
  # taken as one (its :nodeup is on its way): asking net_kernel about a connection that
  # is up waits for the connection's own process to answer, which in a storm of
  # connections can take tens of milliseconds.
  defp pending?(node) do
    node in :erlang.nodes(:connected) or handshake?(node)
  end

  # Read from net_kernel's table of connections, as dist_address/1 does: its entries
  # are a record private to net_kernel, `{:connection, node, conn_id, state, ...}` in
  # OTP 25 to 27 (13 elements); another shape is asked of net_kernel instead.
  defp handshake?(node) do
    case :ets.lookup(:sys_dist, node) do
      [entry] when tuple_size(entry) == 13 and elem(entry, 0) == :connection ->
        elem(entry, 3) in [:pending, :up_pending]

      [_] ->
        node_info_handshake?(node)

      [] ->
        false
    end
  catch
    # Not distributed: no handshake can be under way.
    :error, :badarg -> false
  end

  defp node_info_handshake?(node) do
    case :net_kernel.node_info(node, :state) do
      {:ok, state} -> state in [:pending, :up_pending]
      _ -> false
    end
  catch
    _, _ -> false
  end

  # The nodes a handshake is under way with here (either side started it). None when
  # the table's entries have a shape this does not know.
  defp handshakes do
    :ets.select(:sys_dist, [
      {{:connection, :"$1", :_, :pending, :_, :_, :_, :_, :_, :_, :_, :_, :_}, [], [:"$1"]},
      {{:connection, :"$1", :_, :up_pending, :_, :_, :_, :_, :_, :_, :_, :_, :_}, [], [:"$1"]}
    ])
  catch
    :error, :badarg -> []
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
    # Read from net_kernel's table of connections (readable by any process) when it
    # holds one for `node`: net_kernel's node_info/2 would wait for the connection's
    # own process to answer, and the socket for its port, each tens of milliseconds
    # while many nodes connect at once. The entry is a record private to net_kernel,
    # so only its #net_address{} is looked for, and node_info/2 asked otherwise.
    with [entry] when is_tuple(entry) <- :ets.lookup(:sys_dist, node),
         {:net_address, {ip, _port}, _, _, _} when is_tuple(ip) <- net_address(entry) do
      ip
    else
      _ -> node_info_address(node)
    end
  catch
    :error, :badarg -> node_info_address(node)
  end

  defp net_address(entry) do
    entry |> Tuple.to_list() |> Enum.find(&match?({:net_address, _, _, _, _}, &1))
  end

  defp node_info_address(node) do
    case :net_kernel.node_info(node, :address) do
      {:ok, {:net_address, {ip, _port}, _host, _protocol, _family}} when is_tuple(ip) -> ip
      _ -> nil
    end
  catch
    _, _ -> nil
  end
end
