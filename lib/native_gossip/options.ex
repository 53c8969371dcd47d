defmodule NativeGossip.Options do
  @moduledoc false
  # Validates a topology's options once, at start. Each bad value gets its own
  # `{:invalid_option, key, reason}` with `reason` a sentence a person can act on.

  # The options themselves (defaults, checks, docs) are declared once, in
  # NativeGossip.Options.Schema; their checks are NativeGossip.Options.Check's.

  alias NativeGossip.Options.{Check, Schema}

  @known Schema.keys()

  @type t :: %__MODULE__{
          name: atom(),
          port: :inet.port_number(),
          multicast_addr: :inet.ip_address(),
          multicast_if: interface(),
          multicast_ttl: 0..255,
          broadcast: boolean(),
          seeds: [{:inet.ip_address() | charlist(), :inet.port_number()}],
          seed_refresh: pos_integer(),
          compat: :libcluster | nil,
          heartbeat_interval: pos_integer(),
          lost_after: pos_integer(),
          forget_after: pos_integer(),
          failure_detection: boolean(),
          probe_timeout: pos_integer(),
          indirect_probes: non_neg_integer(),
          max_peers: pos_integer(),
          max_names: pos_integer() | :infinity,
          max_clock_skew: pos_integer() | :infinity,
          secrets: [binary()],
          encrypt: boolean(),
          cluster: String.t() | nil,
          tags: tags(),
          connect_if: mfa_like() | nil,
          resolve_short_names: boolean(),
          new_peer_rate: pos_integer(),
          log_interval: pos_integer(),
          connect: mfa_like(),
          disconnect: mfa_like(),
          list_nodes: mfa_like(),
          notes: [String.t()]
        }

  @type mfa_like :: {module(), atom(), list()}

  @typedoc "A node's tags: short strings, the same on the wire and on receipt."
  @type tags :: %{optional(String.t()) => String.t()}

  @typedoc "An interface: an address on it, its name, or (IPv6) its index; nil: the route's."
  @type interface :: :inet.ip_address() | {:name, String.t()} | {:index, pos_integer()} | nil

  @enforce_keys [:name]
  defstruct Keyword.keys(Schema.fields()) ++ [notes: []]

  @doc false
  def default_group, do: Schema.default_group()

  @doc false
  # The defaults, for the docs and the mix tasks (nil: computed from other options).
  def defaults, do: Schema.defaults()

  @doc """
  Validates `opts`. `mode`: `:standalone` rejects an unknown key; `:strategy` (under
  libcluster, which ignores keys it does not know) notes it, with the nearest valid
  one, in `notes` (logged once when the topology starts) and goes on.
  """
  @spec validate(keyword(), :standalone | :strategy) ::
          {:ok, t()} | {:error, {:invalid_option, atom(), String.t()}}
  def validate(opts, mode \\ :standalone)

  def validate(opts, mode) when is_list(opts) do
    with :ok <- check_keyword(opts),
         {:ok, opts, unknown} <- check_unknown(opts, mode),
         {:ok, checked} <- check_all(opts) do
      broadcast = checked.broadcast
      mif = checked.multicast_if

      {:ok,
       %{
         struct(__MODULE__, for({field, key} <- Schema.fields(), do: {field, checked[key]}))
         | multicast_if: if(broadcast, do: mif, else: mif || checked.if_addr),
           broadcast: broadcast != false,
           notes: unknown ++ checked.notes ++ Check.if_addr_notes(checked)
       }}
    end
  end

  def validate(other, _mode),
    do: {:error, {:invalid_option, :opts, "expected a keyword list, got: #{inspect(other)}"}}

  @doc false
  # The map `NativeGossip.Native.start/1` takes, with the interface resolved on this
  # host now (a name to its address or index), or an error that says what is wrong.
  # Seeds given as addresses go in at once; names are resolved later, off the server.
  def to_native(%__MODULE__{} = o, node_name) do
    with {:ok, if_v4, if_index} <- resolve_interface(o.multicast_if, o.multicast_addr) do
      {:ok,
       %{
         node_name: node_name,
         multicast_addr: o.multicast_addr |> :inet.ntoa() |> List.to_string(),
         multicast_if: if_v4 |> :inet.ntoa() |> List.to_string(),
         multicast_ifindex: if_index,
         broadcast: o.broadcast,
         seeds: o.seeds |> Enum.filter(&is_tuple(elem(&1, 0))) |> Enum.map(&seed_string/1),
         unicast: o.seeds != [],
         port: o.port,
         multicast_ttl: o.multicast_ttl,
         heartbeat_interval: o.heartbeat_interval,
         lost_after: o.lost_after,
         forget_after: o.forget_after,
         max_peers: o.max_peers,
         max_names: finite(o.max_names),
         max_clock_skew: finite(o.max_clock_skew),
         new_peer_rate: o.new_peer_rate,
         # Bursts of twice the rate (see :new_peer_rate in the schema).
         new_peer_burst: 2 * o.new_peer_rate,
         secrets: o.secrets,
         encrypt: o.encrypt,
         compat_libcluster: o.compat == :libcluster,
         cluster: o.cluster || "",
         tags: tag_list(o.tags),
         dist_port: NativeGossip.EPMD.registered_port() || 0
       }}
    end
  end

  defp finite(:infinity), do: nil
  defp finite(n), do: n

  @doc false
  # "ip:port", or "[ip]:port" for IPv6: what the native side parses.
  def seed_string({{_, _, _, _} = ip, port}), do: "#{:inet.ntoa(ip)}:#{port}"
  def seed_string({ip, port}), do: "[#{:inet.ntoa(ip)}]:#{port}"

  @doc false
  # Resolves the seeds given by name (DNS, /etc/hosts) to addresses of the group's
  # family. It may block on DNS: call it off the topology server.
  def resolve_seeds(%__MODULE__{seeds: seeds, multicast_addr: group}) do
    family = if tuple_size(group) == 4, do: :inet, else: :inet6

    Enum.flat_map(seeds, fn
      {host, port} when is_list(host) ->
        case :inet.getaddrs(host, family) do
          {:ok, ips} -> Enum.map(ips, &{&1, port})
          {:error, _} -> []
        end

      {ip, port} ->
        [{ip, port}]
    end)
    |> Enum.uniq()
  end

  # {:ok, ipv4 interface address, ipv6 interface index}.
  defp resolve_interface(nil, _group), do: {:ok, {0, 0, 0, 0}, 0}

  defp resolve_interface({_, _, _, _} = ip, {_, _, _, _}) do
    if interface_with(ip), do: {:ok, ip, 0}, else: no_such_address(ip)
  end

  defp resolve_interface({:index, i}, _group), do: {:ok, {0, 0, 0, 0}, i}

  defp resolve_interface({:name, name}, group) do
    case {tuple_size(group), :net.if_name2index(String.to_charlist(name))} do
      {_, {:error, _}} ->
        {:error,
         {:interface_unavailable,
          "no interface named #{inspect(name)} on this host " <>
            "(it has: #{Enum.join(interface_names(), ", ")})"}}

      {8, {:ok, index}} ->
        {:ok, {0, 0, 0, 0}, index}

      {4, {:ok, _}} ->
        case ipv4_of(name) do
          nil ->
            {:error,
             {:interface_unavailable, "interface #{inspect(name)} has no IPv4 address (yet)"}}

          ip ->
            {:ok, ip, 0}
        end
    end
  end

  defp resolve_interface(ip, _v6_group) do
    case interface_with(ip) do
      nil ->
        no_such_address(ip)

      name ->
        {:ok, index} = :net.if_name2index(String.to_charlist(name))
        {:ok, {0, 0, 0, 0}, index}
    end
  end

  defp interfaces do
    case :inet.getifaddrs() do
      {:ok, ifs} -> ifs
      {:error, _} -> []
    end
  end

  defp interface_names, do: Enum.map(interfaces(), &List.to_string(elem(&1, 0)))

  defp no_such_address(ip) do
    has =
      Enum.map_join(interfaces(), ", ", fn {name, opts} ->
        case for({:addr, a} <- opts, do: List.to_string(:inet.ntoa(a))) do
          [] -> List.to_string(name)
          addrs -> "#{name} #{Enum.join(addrs, " ")}"
        end
      end)

    {:error,
     {:interface_unavailable,
      "no interface of this host has the address #{:inet.ntoa(ip)} (it has: #{has})"}}
  end

  @doc false
  # An IPv4 address given as such, or the first IPv4 address of the interface so named
  # (for the mix tasks); nil when there is none.
  def ipv4_interface(value) do
    case :inet.parse_strict_address(String.to_charlist(value)) do
      {:ok, {_, _, _, _} = ip} -> ip
      _ -> ipv4_of(value)
    end
  end

  defp ipv4_of(name) do
    Enum.find_value(interfaces(), fn {n, opts} ->
      List.to_string(n) == name &&
        Enum.find_value(opts, fn
          {:addr, {_, _, _, _} = ip} -> ip
          _ -> nil
        end)
    end)
  end

  defp interface_with(ip) do
    Enum.find_value(interfaces(), fn {n, opts} ->
      {:addr, ip} in opts && List.to_string(n)
    end)
  end

  defp check_keyword(opts) do
    if Keyword.keyword?(opts),
      do: :ok,
      else: {:error, {:invalid_option, :opts, "expected a keyword list, got: #{inspect(opts)}"}}
  end

  defp check_unknown(opts, mode) do
    case {Enum.uniq(for {k, _} <- opts, k not in @known, do: k), mode} do
      {[], _} ->
        {:ok, opts, []}

      {[key | _], :standalone} ->
        {:error,
         {:invalid_option, key,
          "unknown option#{did_you_mean(key)}; known options are: #{inspect(@known)}"}}

      {keys, :strategy} ->
        notes =
          for key <- keys,
              do: "unknown key #{inspect(key)} under config: ignored#{did_you_mean(key)}"

        {:ok, Keyword.drop(opts, keys), notes}
    end
  end

  # The nearest known key, when one is near enough to be what was meant.
  defp did_you_mean(key) when is_atom(key) do
    typed = Atom.to_string(key)

    {distance, nearest} =
      @known
      |> Enum.map(&{String.jaro_distance(typed, Atom.to_string(&1)), &1})
      |> Enum.max()

    if distance >= 0.7, do: " (did you mean #{inspect(nearest)}?)", else: ""
  end

  # Each option's check, in the schema's order (each after those it needs), with the
  # options checked so far; the first error stops.
  defp check_all(opts) do
    Enum.reduce_while(Schema.checks(), {:ok, %{given: opts, notes: []}}, fn
      {key, default, check}, {:ok, checked} ->
        case check.(Keyword.get(opts, key, default), checked) do
          {:ok, value} ->
            {:cont, {:ok, Map.put(checked, key, value)}}

          {:ok, value, more} ->
            notes = checked.notes ++ Map.get(more, :notes, [])
            {:cont, {:ok, Map.merge(Map.put(checked, key, value), %{more | notes: notes})}}

          {:error, {:invalid_option, _, _} = error} ->
            {:halt, {:error, error}}

          {:error, reason} ->
            {:halt, {:error, {:invalid_option, key, reason}}}
        end
    end)
  end

  @doc false
  # A node's tags as given to :tags or NativeGossip.set_tags/2 (a map or a keyword
  # list; keys strings or atoms, values strings, atoms or numbers), as a map of strings,
  # or an error that says what is wrong.
  @spec tags(term()) :: {:ok, tags()} | {:error, String.t()}
  defdelegate tags(value), to: Check

  @doc false
  # Tags as the native side takes them: a list of {key, value}, sorted by key, so that
  # every heartbeat carries them in one order.
  def tag_list(tags), do: tags |> Map.to_list() |> Enum.sort()
end
