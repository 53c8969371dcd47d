defmodule NativeGossip.ShortNames do
  @moduledoc false
  # Makes the short host names of peers resolvable inside this VM, from the address
  # their accepted (with a secret: authenticated) heartbeats came from, so that nodes
  # started with `--sname` connect across hosts without DNS or hosts-file entries.
  #
  # What it changes in the VM, and nothing outside it:
  #   * `:file` is put first in inet_db's lookup order (`:inet_db.res_option(:lookup)`),
  #     once, when the first name is learned, so the VM's own host table is consulted
  #     before the OS resolver;
  #   * each peer's short host name is added to that table with
  #     `:inet_db.add_host/2`, replaced when the peer's address changes.
  # Only short names (no dot, not an IP address) are touched.

  @type t :: %{String.t() => :inet.ip_address()}

  @doc "Learns `node`'s host from `address` if it is a short name; returns the new map."
  @spec learn(t(), node(), :inet.ip_address()) :: t()
  def learn(hosts, node, address) do
    host = NativeGossip.NodeName.host(node)

    with true <- NativeGossip.NodeName.short_host?(host),
         false <- Map.get(hosts, host) == address do
      ensure_file_lookup()
      old = Map.get(hosts, host)
      hosts = Map.put(hosts, host, address)
      if old, do: write(hosts, old)
      write(hosts, address)
      hosts
    else
      _ -> hosts
    end
  end

  # inet_db keeps one entry per address: rewrite it with every name we map to it.
  defp write(hosts, address) do
    :inet_db.del_host(address)

    case for({host, ^address} <- hosts, do: String.to_charlist(host)) do
      [] -> :ok
      names -> :inet_db.add_host(address, names)
    end
  end

  defp ensure_file_lookup do
    lookup = :inet_db.res_option(:lookup)
    unless List.first(lookup) == :file, do: :inet_db.set_lookup([:file | lookup -- [:file]])
  end
end
