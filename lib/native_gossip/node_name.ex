defmodule NativeGossip.NodeName do
  @moduledoc false
  # The host part of node names, parsed in one place: whether it is short (`a@host`,
  # as with `--sname`) or long (`a@host.domain`, `a@10.0.0.1`), and whether this VM's
  # distribution can connect to such a name at all.

  @doc "The host part of `node` (an atom or a string)."
  @spec host(node() | String.t()) :: String.t()
  def host(node) when is_atom(node), do: host(Atom.to_string(node))
  def host(name) when is_binary(name), do: name |> String.split("@", parts: 2) |> List.last()

  @doc "Whether `host` is long: a domain name or an address, as `--name` uses."
  @spec long_host?(String.t()) :: boolean()
  def long_host?(host), do: String.contains?(host, ".") or String.contains?(host, ":")

  @doc """
  Whether `host` is a short name that a resolver could be taught (no dot, and not an
  address of either family).
  """
  @spec short_host?(String.t()) :: boolean()
  def short_host?(host) do
    not long_host?(host) and
      match?({:error, _}, :inet.parse_address(String.to_charlist(host)))
  end

  @doc """
  Whether distribution connects to `node` from this VM: net_kernel refuses a short
  name when this node uses long names (`--name`), and a long one with `--sname`.
  """
  @spec connectable?(node() | String.t()) :: boolean()
  def connectable?(node), do: connectable?(node, :net_kernel.longnames() == true)

  @doc "As connectable?/1, for a VM whose `:net_kernel.longnames/0` is `longnames`."
  @spec connectable?(node() | String.t(), boolean()) :: boolean()
  def connectable?(node, longnames), do: long_host?(host(node)) == longnames
end
