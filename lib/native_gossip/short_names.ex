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
  #   * each claimed short host name is in that table (`:inet_db.add_host/2`) while its
  #     claim lasts, and removed when it ends.
  # Only short names (no dot, not an IP address) are touched, never this node's own host.
  #
  # Who decides where a host name points: the node that claimed it. A host is claimed
  # by the first node heard with it; the claim is "proven" once that node is connected
  # (the connection itself went to that address), and then nothing else moves it, not
  # even a heartbeat of the same name from another address. A claim that is not proven
  # can be taken by another node of that host after @provisional_ms (so a made-up
  # `x@hostb` heard first cannot keep the real `app@hostb` from ever being connected:
  # the real one gets its turn and, once connected, keeps it). A claim ends when its
  # node leaves or is forgotten, so what is kept stays bounded by the peers there are.
  #
  # Every call is a few map operations (no scan of all hosts).

  alias NativeGossip.NodeName

  @provisional_ms 2_000

  defstruct own_host: nil,
            provisional_ms: @provisional_ms,
            hosts: %{},
            by_address: %{},
            lookup_set: false

  @typep claim :: %{
           address: :inet.ip_address(),
           node: node(),
           since: integer(),
           proven: boolean()
         }
  @type t :: %__MODULE__{
          own_host: String.t() | nil,
          provisional_ms: non_neg_integer(),
          hosts: %{String.t() => claim()},
          by_address: %{:inet.ip_address() => MapSet.t(String.t())},
          lookup_set: boolean()
        }

  @doc """
  Nothing learned yet, for a VM named `own` (whose host is never mapped). A claim not
  proven can be taken by another node after `provisional_ms`.
  """
  @spec new(node(), non_neg_integer()) :: t()
  def new(own, provisional_ms \\ @provisional_ms),
    do: %__MODULE__{own_host: NodeName.host(own), provisional_ms: provisional_ms}

  @doc "The address `host` is mapped to, if any."
  @spec address(t(), String.t()) :: :inet.ip_address() | nil
  def address(%__MODULE__{hosts: hosts}, host), do: get_in(hosts, [host, :address])

  @doc "Number of hosts mapped."
  @spec size(t()) :: non_neg_integer()
  def size(%__MODULE__{hosts: hosts}), do: map_size(hosts)

  @doc "`node` was heard from `address`: claim its host, or move it, when allowed."
  @spec learn(t(), node(), :inet.ip_address()) :: t()
  def learn(%__MODULE__{} = t, node, address) do
    host = NodeName.host(node)

    if host != t.own_host and NodeName.short_host?(host) do
      now = System.monotonic_time(:millisecond)

      case Map.get(t.hosts, host) do
        nil ->
          claim(t, host, node, address, now)

        %{node: ^node, address: ^address} ->
          t

        %{node: ^node, proven: true} ->
          t

        %{node: ^node} ->
          claim(unmap(t, host), host, node, address, now)

        %{proven: false, since: s} when now - s >= t.provisional_ms ->
          take(t, host, node, address, now)

        _ ->
          t
      end
    else
      t
    end
  end

  @doc """
  `node` is connected, over a distribution connection whose remote address is `ip`
  (nil: unknown). The connection proves that address, whatever heartbeats said: the
  host is mapped to it, and nothing else moves it now. (An inbound connection from the
  node proves its address too, so a mapping a forged heartbeat made is put right.)
  """
  @spec connected(t(), node(), :inet.ip_address() | nil) :: t()
  def connected(t, node, ip \\ nil)

  def connected(t, node, nil), do: update_claim(t, node, &%{&1 | proven: true})

  def connected(%__MODULE__{} = t, node, ip) do
    host = NodeName.host(node)

    case t.hosts do
      %{^host => %{node: ^node, address: ^ip}} ->
        update_claim(t, node, &%{&1 | proven: true})

      _ ->
        if host != t.own_host and NodeName.short_host?(host) do
          now = System.monotonic_time(:millisecond)
          t = t |> unmap(host) |> claim(host, node, ip, now)
          update_claim(t, node, &%{&1 | proven: true})
        else
          t
        end
    end
  end

  @doc "`node` was disconnected: its claim is provisional again."
  @spec disconnected(t(), node()) :: t()
  def disconnected(t, node) do
    now = System.monotonic_time(:millisecond)
    update_claim(t, node, &%{&1 | proven: false, since: now})
  end

  @doc "`node` left or was forgotten: its claim, if it holds one, ends and its host is unmapped."
  @spec release(t(), node()) :: t()
  def release(%__MODULE__{} = t, node) do
    host = NodeName.host(node)

    case t.hosts do
      %{^host => %{node: ^node}} -> unmap(t, host)
      _ -> t
    end
  end

  # A node can only claim the host of its own name.
  defp update_claim(%__MODULE__{} = t, node, fun) do
    host = NodeName.host(node)

    case t.hosts do
      %{^host => %{node: ^node} = c} -> %{t | hosts: Map.put(t.hosts, host, fun.(c))}
      _ -> t
    end
  end

  # Another node takes a provisional claim.
  defp take(t, host, node, address, now), do: claim(unmap(t, host), host, node, address, now)

  defp claim(t, host, node, address, now) do
    t = ensure_file_lookup(t)
    c = %{address: address, node: node, since: now, proven: false}
    names = Map.get(t.by_address, address, MapSet.new()) |> MapSet.put(host)
    t = %{t | hosts: Map.put(t.hosts, host, c), by_address: Map.put(t.by_address, address, names)}
    write(t, address)
  end

  defp unmap(t, host) do
    case Map.pop(t.hosts, host) do
      {nil, _} ->
        t

      {%{address: address}, hosts} ->
        names = t.by_address |> Map.get(address, MapSet.new()) |> MapSet.delete(host)

        by_address =
          if MapSet.size(names) == 0,
            do: Map.delete(t.by_address, address),
            else: Map.put(t.by_address, address, names)

        write(%{t | hosts: hosts, by_address: by_address}, address)
    end
  end

  # inet_db keeps one entry per address: rewrite it with every host mapped to it.
  defp write(t, address) do
    :inet_db.del_host(address)

    case Map.get(t.by_address, address) do
      nil -> :ok
      names -> :inet_db.add_host(address, Enum.map(names, &String.to_charlist/1))
    end

    t
  end

  defp ensure_file_lookup(%{lookup_set: true} = t), do: t

  defp ensure_file_lookup(t) do
    lookup = :inet_db.res_option(:lookup)
    unless List.first(lookup) == :file, do: :inet_db.set_lookup([:file | lookup -- [:file]])
    %{t | lookup_set: true}
  end
end
