defmodule NativeGossip.Options.Network do
  @moduledoc false
  # The checks of the options that name addresses: the group or broadcast address,
  # libcluster's broadcast_only and if_addr, the interface, and the seeds. Addresses are
  # accepted as tuples, strings or charlists, as libcluster accepts them. Each returns
  # `{:ok, value}` or `{:error, reason}` (a sentence); NativeGossip.Options.Check calls
  # them with the options they depend on.

  # libcluster's Gossip: `broadcast_only: true` sends to :multicast_addr as the broadcast
  # address (a subnet's, such as 10.0.0.255, or 255.255.255.255). Without one,
  # 255.255.255.255 (libcluster would send to its default group without joining it,
  # which no node hears). A multicast group given with it is used as a group: a node
  # sending to a group it has not joined is heard by nobody that also sends only.
  @doc false
  def broadcast_only(_only, {_, _, _, _} = broadcast, _given), do: {:ok, broadcast, []}
  def broadcast_only(false, false, _given), do: {:ok, false, []}
  def broadcast_only(true, false, nil), do: {:ok, {255, 255, 255, 255}, []}

  def broadcast_only(true, false, given) do
    case ip(given) do
      {:ok, {a, _, _, _}} when a in 224..239 ->
        {:ok, false,
         [
           "broadcast_only: true with the multicast group #{given_string(given)} as " <>
             ":multicast_addr: NativeGossip joins that group and uses multicast (libcluster " <>
             "sends to it without joining); for broadcast, give the subnet's broadcast " <>
             "address (such as \"10.0.0.255\") or \"255.255.255.255\""
         ]}

      {:ok, {_, _, _, _} = addr} ->
        {:ok, addr, []}

      _ ->
        {:error,
         {:invalid_option, :multicast_addr,
          "with broadcast_only: true it is the IPv4 broadcast address to send to (such as " <>
            "\"10.0.0.255\" or \"255.255.255.255\"), got: #{inspect(given)}"}}
    end
  end

  defp given_string(v) when is_binary(v), do: v
  defp given_string(v) when is_list(v), do: List.to_string(v)
  defp given_string(v), do: v |> :inet.ntoa() |> List.to_string()

  # libcluster's Gossip binds its socket to :if_addr (default "0.0.0.0"). NativeGossip
  # binds its receiving socket to the group (or, for broadcast, the wildcard): a socket
  # bound to one of the host's unicast addresses hears no multicast or broadcast on
  # Linux and macOS. So the wildcard and the group mean the default, and an address of
  # the host chooses the interface heartbeats leave from (:multicast_if, unless given).
  @doc false
  def bind_address(nil, _group), do: {:ok, nil}

  def bind_address(v, group) do
    case ip(v) do
      {:ok, {0, 0, 0, 0}} -> {:ok, nil}
      {:ok, {0, 0, 0, 0, 0, 0, 0, 0}} -> {:ok, nil}
      {:ok, ^group} -> {:ok, nil}
      {:ok, addr} when tuple_size(addr) == tuple_size(group) -> {:ok, addr}
      _ -> interface(v, group)
    end
  end

  @doc false
  def if_addr_note(nil, _mif, _broadcast), do: []

  def if_addr_note(if_addr, _mif, {_, _, _, _}),
    do: [
      "if_addr #{:inet.ntoa(if_addr)} is not used with broadcast: the socket is bound to " <>
        "the wildcard address (bound to #{:inet.ntoa(if_addr)} it would hear no broadcast), " <>
        "and the route to the broadcast address chooses the interface"
    ]

  def if_addr_note(if_addr, mif, false) when mif not in [nil, if_addr],
    do: [
      "if_addr #{inspect_interface(if_addr)} is not used: :multicast_if " <>
        "#{inspect_interface(mif)} chooses the interface heartbeats leave from (the " <>
        "receiving socket is bound to the group: bound to a unicast address it would hear " <>
        "no multicast)"
    ]

  def if_addr_note(_if_addr, _mif, _broadcast), do: []

  defp inspect_interface({:name, name}), do: name
  defp inspect_interface({:index, i}), do: "index #{i}"
  defp inspect_interface(ip), do: ip |> :inet.ntoa() |> List.to_string()

  @doc false
  def broadcast(false), do: {:ok, false}
  def broadcast(nil), do: {:ok, false}
  def broadcast(true), do: {:ok, {255, 255, 255, 255}}

  def broadcast(v) do
    case ip(v) do
      {:ok, {_, _, _, _} = addr} -> {:ok, addr}
      _ -> {:error, "expected false, true or an IPv4 broadcast address, got: #{inspect(v)}"}
    end
  end

  @doc false
  def multicast(v) do
    case ip(v) do
      {:ok, {a, _, _, _} = addr} when a in 224..239 ->
        {:ok, addr}

      {:ok, {a, _, _, _, _, _, _, _} = addr} when a in 0xFF00..0xFFFF ->
        {:ok, addr}

      {:ok, _} ->
        {:error,
         "expected a multicast address (IPv4 224.0.0.0/4, IPv6 ff00::/8), got: #{inspect(v)}"}

      {:error, reason} ->
        {:error, reason}
    end
  end

  # An address, an interface name ("eth0"), or for IPv6 an interface index.
  @doc false
  def interface(nil, _group), do: {:ok, nil}

  def interface(i, {_, _, _, _, _, _, _, _}) when is_integer(i) and i > 0, do: {:ok, {:index, i}}

  def interface(v, group) when is_binary(v) or is_list(v) or is_tuple(v) do
    case {ip(v), tuple_size(group)} do
      {{:ok, addr}, n} when tuple_size(addr) == n ->
        {:ok, addr}

      {{:ok, addr}, _} ->
        {:error,
         "#{:inet.ntoa(addr)} is not of the group's address family (#{:inet.ntoa(group)})"}

      {{:error, reason}, _} ->
        # Not an address: a name such as "eth0" (at most 15 bytes on Linux).
        if interface_name?(v), do: {:ok, {:name, v}}, else: {:error, reason}
    end
  end

  def interface(v, _group),
    do:
      {:error,
       "expected an interface address, name (\"eth0\") or, for IPv6, index, got: #{inspect(v)}"}

  defp interface_name?(v), do: is_binary(v) and byte_size(v) in 1..15

  # Seeds: "host", "host:port", "[v6]:port", {host, port} or an address tuple; the
  # topology's port when none is given. Kept as {address tuple | host charlist, port}.
  @doc false
  def seeds(list, port, group) when is_list(list) do
    port = port || 45_892

    Enum.reduce_while(list, {:ok, []}, fn entry, {:ok, acc} ->
      case seed(entry, port, group) do
        {:ok, s} -> {:cont, {:ok, acc ++ [s]}}
        {:error, reason} -> {:halt, {:error, reason}}
      end
    end)
  end

  def seeds(v, _port, _group),
    do:
      {:error,
       "expected a list of hosts (\"10.0.0.5\", \"seed.local:#{45_892}\"), got: #{inspect(v)}"}

  defp seed({host, p}, _port, group) when is_integer(p),
    do: seed_host(host, p, group)

  defp seed(s, port, group) when is_binary(s) do
    case Regex.run(~r/^\[(.+)\]:(\d+)$|^([^:]+):(\d+)$/, s) do
      [_, v6, p] -> seed_host(v6, String.to_integer(p), group)
      [_, "", "", host, p] -> seed_host(host, String.to_integer(p), group)
      nil -> seed_host(s, port, group)
    end
  end

  defp seed(t, port, group) when is_tuple(t), do: seed_host(t, port, group)

  defp seed(v, _port, _group),
    do: {:error, "a seed must be a host or \"host:port\", got: #{inspect(v)}"}

  defp seed_host(_host, p, _group) when p not in 1..65_535,
    do: {:error, "a seed's port must be in 1..65535, got: #{p}"}

  defp seed_host(host, p, group) do
    case ip(host) do
      {:ok, addr} when tuple_size(addr) == tuple_size(group) ->
        {:ok, {addr, p}}

      {:ok, addr} ->
        {:error,
         "seed #{:inet.ntoa(addr)} is not of the group's address family (#{:inet.ntoa(group)})"}

      {:error, _} when is_binary(host) and byte_size(host) in 1..253 ->
        if String.valid?(host),
          do: {:ok, {String.to_charlist(host), p}},
          else: {:error, "a seed must be an address or a host name, got: #{inspect(host)}"}

      {:error, _} ->
        {:error, "a seed must be an address or a host name, got: #{inspect(host)}"}
    end
  end

  # Addresses are accepted as tuples, strings or charlists, as libcluster accepts them.
  # (A string is parsed as a charlist, and reported as the string it was.)
  defp ip(v) when is_binary(v) do
    case String.valid?(v) && ip(String.to_charlist(v)) do
      {:ok, addr} -> {:ok, addr}
      _ -> {:error, "expected an IP address, got: #{inspect(v)}"}
    end
  end

  defp ip(v) when is_list(v) do
    case :inet.parse_strict_address(v) do
      {:ok, addr} -> {:ok, addr}
      {:error, _} -> {:error, "expected an IP address, got: #{inspect(v)}"}
    end
  rescue
    _ -> {:error, "expected an IP address, got: #{inspect(v)}"}
  end

  defp ip(v) when is_tuple(v) do
    if :inet.is_ip_address(v),
      do: {:ok, v},
      else: {:error, "expected an IP address, got: #{inspect(v)}"}
  end

  defp ip(v), do: {:error, "expected an IP address, got: #{inspect(v)}"}
end
