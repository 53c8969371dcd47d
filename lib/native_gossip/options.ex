defmodule NativeGossip.Options do
  @moduledoc false
  # Validates a topology's options once, at start. Each bad value gets its own
  # `{:invalid_option, key, reason}` with `reason` a sentence a person can act on.

  @default_group {239, 255, 45, 92}

  @defaults [
    port: 45_892,
    multicast_addr: @default_group,
    multicast_if: nil,
    if_addr: nil,
    multicast_ttl: 1,
    broadcast: false,
    broadcast_only: false,
    seeds: [],
    seed_refresh: 30_000,
    compat: nil,
    heartbeat_interval: 1_500,
    lost_after: nil,
    forget_after: nil,
    max_peers: 10_000,
    max_names: nil,
    max_clock_skew: nil,
    secret: nil,
    encrypt: false,
    cluster: nil,
    tags: %{},
    connect_if: nil,
    resolve_short_names: true,
    new_peer_rate: 5,
    log_interval: 10_000,
    connect: {:net_kernel, :connect_node, []},
    disconnect: {:erlang, :disconnect_node, []},
    list_nodes: {:erlang, :nodes, [:connected]}
  ]

  @known [:name | Keyword.keys(@defaults)]

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

  # What the wire format takes: the label, a tag's key, and all the tag records of a
  # heartbeat (3 bytes each besides key and value). Read from wire.rs, their one home,
  # when this module is compiled (as NativeGossip.DropReason reads reason.rs), so that
  # a limit only the native side knows cannot come back as a message of another shape.
  @wire Path.expand("../../native/native_gossip_core/src/wire.rs", __DIR__)
  @external_resource @wire
  @limits Map.new(
            Regex.scan(
              ~r/^pub const (MAX_CLUSTER|MAX_TAG_KEY|MAX_TAGS): usize = (\d+);$/m,
              File.read!(@wire)
            ),
            fn [_, name, n] -> {name, String.to_integer(n)} end
          )
  if map_size(@limits) != 3,
    do: raise(CompileError, description: "tag and label limits not found in #{@wire}")

  @max_cluster @limits["MAX_CLUSTER"]
  @max_tag_key @limits["MAX_TAG_KEY"]
  @max_tags @limits["MAX_TAGS"]

  @typedoc "An interface: an address on it, its name, or (IPv6) its index; nil: the route's."
  @type interface :: :inet.ip_address() | {:name, String.t()} | {:index, pos_integer()} | nil

  @enforce_keys [:name]
  defstruct [
    :name,
    :port,
    :multicast_addr,
    :multicast_if,
    :multicast_ttl,
    :broadcast,
    :seeds,
    :seed_refresh,
    :compat,
    :heartbeat_interval,
    :lost_after,
    :forget_after,
    :max_peers,
    :max_names,
    :max_clock_skew,
    :secrets,
    :encrypt,
    :cluster,
    :tags,
    :connect_if,
    :resolve_short_names,
    :new_peer_rate,
    :log_interval,
    :connect,
    :disconnect,
    :list_nodes,
    notes: []
  ]

  # libcluster's Gossip default group (3.3.0 and later): with compat: :libcluster and no
  # :multicast_addr, the group a libcluster topology with default options uses.
  @libcluster_group {233, 252, 1, 32}

  @doc false
  def default_group, do: @default_group

  @doc false
  # The defaults, for the docs and the mix tasks.
  def defaults, do: @defaults

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
         {:ok, compat} <- check(opts, :compat, &compat/1),
         given = opts,
         opts = Keyword.merge(@defaults, libcluster_group(opts, compat)),
         {:ok, name} <- check(opts, :name, &name/1),
         {:ok, port} <- check(opts, :port, &int_in(&1, 1, 65_535)),
         {:ok, only} <- check(opts, :broadcast_only, &boolean/1),
         {:ok, broadcast} <- check(opts, :broadcast, &broadcast/1),
         {:ok, broadcast, only_note} <- broadcast_only(only, broadcast, given[:multicast_addr]),
         {:ok, group} <- group(opts, broadcast),
         {:ok, mif} <- check(opts, :multicast_if, &interface(&1, group)),
         {:ok, if_addr} <- check(opts, :if_addr, &bind_address(&1, group)),
         {:ok, ttl} <- check(opts, :multicast_ttl, &int_in(&1, 0, 255)),
         {:ok, seeds} <- check(opts, :seeds, &seeds(&1, opts[:port], group)),
         {:ok, seed_refresh} <- check(opts, :seed_refresh, &int_in(&1, 1_000, 86_400_000)),
         {:ok, interval} <- check(opts, :heartbeat_interval, &int_in(&1, 10, 3_600_000)),
         {:ok, lost} <- check(opts, :lost_after, &timeout_at_least(&1, interval, 3 * interval)),
         {:ok, forget} <-
           check(opts, :forget_after, &timeout_at_least(&1, lost, max(60_000, 2 * lost))),
         {:ok, max_peers} <- check(opts, :max_peers, &int_in(&1, 1, 1_000_000)),
         {:ok, secrets} <- check(opts, :secret, &secrets/1),
         {:ok, encrypt} <- check(opts, :encrypt, &encrypt(&1, secrets)),
         {:ok, cluster} <- check(opts, :cluster, &cluster/1),
         {:ok, tags} <- check(opts, :tags, &tags/1),
         {:ok, connect_if} <- check(opts, :connect_if, &optional_mfa/1),
         {:ok, max_names} <-
           check(
             opts,
             :max_names,
             &limit(&1, 1, 100_000_000, default_max_names(secrets, max_peers))
           ),
         {:ok, skew} <- check(opts, :max_clock_skew, &limit(&1, 1_000, 86_400_000, forget)),
         {:ok, resolve} <- check(opts, :resolve_short_names, &boolean/1),
         {:ok, new_peer_rate} <- check(opts, :new_peer_rate, &int_in(&1, 1, 100_000)),
         {:ok, log_interval} <- check(opts, :log_interval, &int_in(&1, 100, 86_400_000)),
         {:ok, connect} <- check(opts, :connect, &mfa/1),
         {:ok, disconnect} <- check(opts, :disconnect, &mfa/1),
         {:ok, list_nodes} <- check(opts, :list_nodes, &mfa/1) do
      {:ok,
       %__MODULE__{
         name: name,
         port: port,
         multicast_addr: group,
         multicast_if: if(broadcast, do: mif, else: mif || if_addr),
         multicast_ttl: ttl,
         broadcast: broadcast != false,
         seeds: seeds,
         seed_refresh: seed_refresh,
         compat: compat,
         heartbeat_interval: interval,
         lost_after: lost,
         forget_after: forget,
         max_peers: max_peers,
         max_names: max_names,
         max_clock_skew: skew,
         secrets: secrets,
         encrypt: encrypt,
         cluster: cluster,
         tags: tags,
         connect_if: connect_if,
         resolve_short_names: resolve,
         new_peer_rate: new_peer_rate,
         log_interval: log_interval,
         connect: connect,
         disconnect: disconnect,
         list_nodes: list_nodes,
         notes: unknown ++ only_note ++ if_addr_note(if_addr, mif, broadcast)
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
         max_names: if(o.max_names == :infinity, do: 0, else: o.max_names),
         max_clock_skew: if(o.max_clock_skew == :infinity, do: 0, else: o.max_clock_skew),
         new_peer_rate: o.new_peer_rate,
         secrets: o.secrets,
         encrypt: o.encrypt,
         compat_libcluster: o.compat == :libcluster,
         cluster: o.cluster || "",
         tags: tag_list(o.tags),
         dist_port: NativeGossip.EPMD.registered_port() || 0
       }}
    end
  end

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

  # libcluster's Gossip: `broadcast_only: true` sends to :multicast_addr as the broadcast
  # address (a subnet's, such as 10.0.0.255, or 255.255.255.255). Without one,
  # 255.255.255.255 (libcluster would send to its default group without joining it,
  # which no node hears). A multicast group given with it is used as a group: a node
  # sending to a group it has not joined is heard by nobody that also sends only.
  defp broadcast_only(_only, {_, _, _, _} = broadcast, _given), do: {:ok, broadcast, []}
  defp broadcast_only(false, false, _given), do: {:ok, false, []}
  defp broadcast_only(true, false, nil), do: {:ok, {255, 255, 255, 255}, []}

  defp broadcast_only(true, false, given) do
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
  defp bind_address(nil, _group), do: {:ok, nil}

  defp bind_address(v, group) do
    case ip(v) do
      {:ok, {0, 0, 0, 0}} -> {:ok, nil}
      {:ok, {0, 0, 0, 0, 0, 0, 0, 0}} -> {:ok, nil}
      {:ok, ^group} -> {:ok, nil}
      {:ok, addr} when tuple_size(addr) == tuple_size(group) -> {:ok, addr}
      _ -> interface(v, group)
    end
  end

  defp if_addr_note(nil, _mif, _broadcast), do: []

  defp if_addr_note(if_addr, _mif, {_, _, _, _}),
    do: [
      "if_addr #{:inet.ntoa(if_addr)} is not used with broadcast: the socket is bound to " <>
        "the wildcard address (bound to #{:inet.ntoa(if_addr)} it would hear no broadcast), " <>
        "and the route to the broadcast address chooses the interface"
    ]

  defp if_addr_note(if_addr, mif, false) when mif not in [nil, if_addr],
    do: [
      "if_addr #{inspect_interface(if_addr)} is not used: :multicast_if " <>
        "#{inspect_interface(mif)} chooses the interface heartbeats leave from (the " <>
        "receiving socket is bound to the group: bound to a unicast address it would hear " <>
        "no multicast)"
    ]

  defp if_addr_note(_if_addr, _mif, _broadcast), do: []

  defp inspect_interface({:name, name}), do: name
  defp inspect_interface({:index, i}), do: "index #{i}"
  defp inspect_interface(ip), do: ip |> :inet.ntoa() |> List.to_string()

  defp check(opts, key, fun) do
    case fun.(Keyword.get(opts, key)) do
      {:ok, value} -> {:ok, value}
      {:error, reason} -> {:error, {:invalid_option, key, reason}}
    end
  end

  defp name(name) when is_atom(name) and name not in [nil, true, false], do: {:ok, name}
  defp name(nil), do: {:error, "is required: the topology's name, an atom such as :lan"}
  defp name(other), do: {:error, "expected an atom, got: #{inspect(other)}"}

  defp int_in(v, min, max) when is_integer(v) and v >= min and v <= max, do: {:ok, v}

  defp int_in(v, min, max),
    do: {:error, "expected an integer in #{min}..#{max}, got: #{inspect(v)}"}

  # Without a secret every name on the network can be made up, and each one admitted
  # becomes an atom, never freed: at most twice :max_peers over the VM's life. With a
  # secret names are authenticated: no bound unless one is given.
  defp default_max_names([], max_peers), do: 2 * max_peers
  defp default_max_names(_secrets, _max_peers), do: :infinity

  defp limit(nil, _min, _max, default), do: {:ok, default}
  defp limit(:infinity, _min, _max, _default), do: {:ok, :infinity}
  defp limit(v, min, max, _default) when is_integer(v) and v >= min and v <= max, do: {:ok, v}

  defp limit(v, min, max, _default),
    do: {:error, "expected :infinity or an integer in #{min}..#{max}, got: #{inspect(v)}"}

  defp timeout_at_least(nil, _min, default), do: {:ok, default}

  defp timeout_at_least(v, min, _default) when is_integer(v) and v >= min and v <= 86_400_000,
    do: {:ok, v}

  defp timeout_at_least(v, min, _default),
    do: {:error, "expected an integer of milliseconds, at least #{min}, got: #{inspect(v)}"}

  # With broadcast, the group is the broadcast address (:broadcast's, or the default
  # 255.255.255.255); :multicast_addr is not used.
  defp group(_opts, {_, _, _, _} = broadcast), do: {:ok, broadcast}
  defp group(opts, false), do: check(opts, :multicast_addr, &multicast/1)

  defp broadcast(false), do: {:ok, false}
  defp broadcast(nil), do: {:ok, false}
  defp broadcast(true), do: {:ok, {255, 255, 255, 255}}

  defp broadcast(v) do
    case ip(v) do
      {:ok, {_, _, _, _} = addr} -> {:ok, addr}
      _ -> {:error, "expected false, true or an IPv4 broadcast address, got: #{inspect(v)}"}
    end
  end

  defp multicast(v) do
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
  defp interface(nil, _group), do: {:ok, nil}

  defp interface(i, {_, _, _, _, _, _, _, _}) when is_integer(i) and i > 0, do: {:ok, {:index, i}}

  defp interface(v, group) when is_binary(v) or is_list(v) or is_tuple(v) do
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

  defp interface(v, _group),
    do:
      {:error,
       "expected an interface address, name (\"eth0\") or, for IPv6, index, got: #{inspect(v)}"}

  defp compat(nil), do: {:ok, nil}
  defp compat(false), do: {:ok, nil}
  defp compat(:libcluster), do: {:ok, :libcluster}
  defp compat(v), do: {:error, "expected :libcluster or nil, got: #{inspect(v)}"}

  defp libcluster_group(opts, :libcluster) do
    if Keyword.has_key?(opts, :multicast_addr) or Keyword.get(opts, :broadcast, false) != false or
         Keyword.get(opts, :broadcast_only, false) == true,
       do: opts,
       else: Keyword.put(opts, :multicast_addr, @libcluster_group)
  end

  defp libcluster_group(opts, nil), do: opts

  defp interface_name?(v), do: is_binary(v) and byte_size(v) in 1..15

  # Seeds: "host", "host:port", "[v6]:port", {host, port} or an address tuple; the
  # topology's port when none is given. Kept as {address tuple | host charlist, port}.
  defp seeds(list, port, group) when is_list(list) do
    port = port || @defaults[:port]

    Enum.reduce_while(list, {:ok, []}, fn entry, {:ok, acc} ->
      case seed(entry, port, group) do
        {:ok, s} -> {:cont, {:ok, acc ++ [s]}}
        {:error, reason} -> {:halt, {:error, reason}}
      end
    end)
  end

  defp seeds(v, _port, _group),
    do:
      {:error,
       "expected a list of hosts (\"10.0.0.5\", \"seed.local:#{@defaults[:port]}\"), got: #{inspect(v)}"}

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

  # What was given is described, never shown when it is a binary: it is a secret.
  defp secrets(nil), do: {:ok, []}
  defp secrets(s) when is_binary(s) and byte_size(s) > 0, do: {:ok, [s]}

  defp secrets([_ | _] = list) do
    case Enum.find_index(list, &(not (is_binary(&1) and byte_size(&1) > 0))) do
      nil ->
        {:ok, list}

      i ->
        {:error,
         "expected a non-empty binary or a list of them (the first signs), got a list " <>
           "whose element #{i + 1} is #{describe(Enum.at(list, i))}"}
    end
  end

  defp secrets(v),
    do:
      {:error,
       "expected a non-empty binary or a list of them (the first signs), got #{describe(v)}"}

  defp describe(""), do: "an empty binary"
  defp describe([]), do: "an empty list"
  defp describe(v) when is_binary(v), do: "a binary"
  defp describe(v), do: inspect(v)

  defp encrypt(false, _secrets), do: {:ok, false}
  defp encrypt(true, [_ | _]), do: {:ok, true}

  defp encrypt(true, []),
    do: {:error, "needs a :secret: heartbeats are encrypted with keys derived from it"}

  defp encrypt(v, _secrets), do: {:error, "expected true or false, got: #{inspect(v)}"}

  defp cluster(nil), do: {:ok, nil}

  defp cluster(v) when is_binary(v) and byte_size(v) in 1..@max_cluster do
    if String.valid?(v),
      do: {:ok, v},
      else: {:error, "expected a UTF-8 string, got: #{inspect(v)}"}
  end

  defp cluster(v),
    do: {:error, "expected a string of 1 to #{@max_cluster} bytes, got: #{inspect(v)}"}

  @doc false
  # A node's tags as given to :tags or NativeGossip.set_tags/2 (a map or a keyword
  # list; keys strings or atoms, values strings, atoms or numbers), as a map of strings,
  # or an error that says what is wrong.
  @spec tags(term()) :: {:ok, tags()} | {:error, String.t()}
  def tags(v) when is_map(v) or is_list(v) do
    pairs =
      if is_list(v) and not Keyword.keyword?(v) and not Enum.all?(v, &match?({_, _}, &1)),
        do: :error,
        else: Enum.map(v, fn {k, val} -> {tag_string(k), tag_string(val)} end)

    cond do
      pairs == :error or Enum.any?(pairs, fn {k, val} -> k == :error or val == :error end) ->
        {:error,
         "expected a map or keyword list of strings (atoms and numbers are turned into " <>
           "strings), got: #{inspect(v)}"}

      k = Enum.find_value(pairs, fn {k, _} -> byte_size(k) not in 1..@max_tag_key && k end) ->
        {:error, "a tag key takes 1 to #{@max_tag_key} bytes, got: #{inspect(k)}"}

      length(Enum.uniq_by(pairs, &elem(&1, 0))) != length(pairs) ->
        {:error, "a tag key appears twice: #{inspect(v)}"}

      (size = Enum.sum(Enum.map(pairs, fn {k, val} -> 3 + byte_size(k) + byte_size(val) end))) >
          @max_tags ->
        {:error,
         "the tags take #{size} bytes in a heartbeat (3 per tag besides its key and value), " <>
           "at most #{@max_tags}"}

      long = Enum.find(pairs, fn {k, val} -> 1 + byte_size(k) + byte_size(val) > 255 end) ->
        {:error, "the tag #{inspect(elem(long, 0))} takes more than 254 bytes with its value"}

      true ->
        {:ok, Map.new(pairs)}
    end
  end

  def tags(v), do: {:error, "expected a map or keyword list of strings, got: #{inspect(v)}"}

  defp tag_string(v) when is_binary(v), do: if(String.valid?(v), do: v, else: :error)
  defp tag_string(v) when is_atom(v) and v not in [nil, true, false], do: Atom.to_string(v)
  defp tag_string(v) when is_integer(v) or is_float(v), do: to_string(v)
  defp tag_string(_), do: :error

  @doc false
  # Tags as the native side takes them: a list of {key, value}, sorted by key, so that
  # every heartbeat carries them in one order.
  def tag_list(tags), do: tags |> Map.to_list() |> Enum.sort()

  defp optional_mfa(nil), do: {:ok, nil}
  defp optional_mfa(v), do: mfa(v)

  defp boolean(v) when is_boolean(v), do: {:ok, v}
  defp boolean(v), do: {:error, "expected true or false, got: #{inspect(v)}"}

  defp mfa({m, f, a} = mfa) when is_atom(m) and is_atom(f) and is_list(a), do: {:ok, mfa}

  defp mfa(other),
    do: {:error, "expected {module, function, args}, got: #{inspect(other)}"}
end
