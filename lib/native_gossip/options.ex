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
    heartbeat_interval: 1_500,
    lost_after: nil,
    forget_after: nil,
    max_peers: 10_000,
    secret: nil,
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
          multicast_addr: :inet.ip4_address(),
          multicast_if: :inet.ip4_address(),
          multicast_ttl: 0..255,
          heartbeat_interval: pos_integer(),
          lost_after: pos_integer(),
          forget_after: pos_integer(),
          max_peers: pos_integer(),
          secrets: [binary()],
          resolve_short_names: boolean(),
          new_peer_rate: pos_integer(),
          log_interval: pos_integer(),
          connect: mfa_like(),
          disconnect: mfa_like(),
          list_nodes: mfa_like()
        }

  @type mfa_like :: {module(), atom(), list()}

  @enforce_keys [:name]
  defstruct [
    :name,
    :port,
    :multicast_addr,
    :multicast_if,
    :multicast_ttl,
    :heartbeat_interval,
    :lost_after,
    :forget_after,
    :max_peers,
    :secrets,
    :resolve_short_names,
    :new_peer_rate,
    :log_interval,
    :connect,
    :disconnect,
    :list_nodes
  ]

  @doc false
  def default_group, do: @default_group

  @spec validate(keyword()) :: {:ok, t()} | {:error, {:invalid_option, atom(), String.t()}}
  def validate(opts) when is_list(opts) do
    with :ok <- check_keyword(opts),
         :ok <- check_unknown(opts),
         opts = Keyword.merge(@defaults, opts),
         {:ok, name} <- check(opts, :name, &name/1),
         {:ok, port} <- check(opts, :port, &int_in(&1, 1, 65_535)),
         {:ok, group} <- check(opts, :multicast_addr, &multicast/1),
         {:ok, mif} <- check(opts, :multicast_if, &optional_ip/1),
         {:ok, if_addr} <- check(opts, :if_addr, &optional_ip/1),
         {:ok, ttl} <- check(opts, :multicast_ttl, &int_in(&1, 0, 255)),
         {:ok, interval} <- check(opts, :heartbeat_interval, &int_in(&1, 10, 3_600_000)),
         {:ok, lost} <- check(opts, :lost_after, &timeout_at_least(&1, interval, 3 * interval)),
         {:ok, forget} <-
           check(opts, :forget_after, &timeout_at_least(&1, lost, max(60_000, 2 * lost))),
         {:ok, max_peers} <- check(opts, :max_peers, &int_in(&1, 1, 1_000_000)),
         {:ok, secrets} <- check(opts, :secret, &secrets/1),
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
         multicast_if: mif || if_addr || {0, 0, 0, 0},
         multicast_ttl: ttl,
         heartbeat_interval: interval,
         lost_after: lost,
         forget_after: forget,
         max_peers: max_peers,
         secrets: secrets,
         resolve_short_names: resolve,
         new_peer_rate: new_peer_rate,
         log_interval: log_interval,
         connect: connect,
         disconnect: disconnect,
         list_nodes: list_nodes
       }}
    end
  end

  def validate(other),
    do: {:error, {:invalid_option, :opts, "expected a keyword list, got: #{inspect(other)}"}}

  @doc false
  # The map `NativeGossip.Native.start/1` takes.
  def to_native(%__MODULE__{} = o, node_name) do
    %{
      node_name: node_name,
      multicast_addr: o.multicast_addr,
      multicast_if: o.multicast_if,
      port: o.port,
      multicast_ttl: o.multicast_ttl,
      heartbeat_interval: o.heartbeat_interval,
      lost_after: o.lost_after,
      forget_after: o.forget_after,
      max_peers: o.max_peers,
      new_peer_rate: o.new_peer_rate,
      secrets: o.secrets
    }
  end

  defp check_keyword(opts) do
    if Keyword.keyword?(opts),
      do: :ok,
      else: {:error, {:invalid_option, :opts, "expected a keyword list, got: #{inspect(opts)}"}}
  end

  defp check_unknown(opts) do
    case Enum.find(Keyword.keys(opts), &(&1 not in @known)) do
      nil ->
        :ok

      key ->
        {:error, {:invalid_option, key, "unknown option; known options are: #{inspect(@known)}"}}
    end
  end

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

  defp timeout_at_least(nil, _min, default), do: {:ok, default}

  defp timeout_at_least(v, min, _default) when is_integer(v) and v >= min and v <= 86_400_000,
    do: {:ok, v}

  defp timeout_at_least(v, min, _default),
    do: {:error, "expected an integer of milliseconds, at least #{min}, got: #{inspect(v)}"}

  defp multicast(v) do
    case ip(v) do
      {:ok, {a, _, _, _} = addr} when a in 224..239 ->
        {:ok, addr}

      {:ok, {_, _, _, _}} ->
        {:error, "expected an IPv4 multicast address (224.0.0.0/4), got: #{inspect(v)}"}

      {:ok, _v6} ->
        {:error, "IPv6 groups are not supported yet; use an IPv4 group such as \"239.255.45.92\""}

      {:error, reason} ->
        {:error, reason}
    end
  end

  defp optional_ip(nil), do: {:ok, nil}

  defp optional_ip(v) do
    case ip(v) do
      {:ok, {_, _, _, _} = addr} -> {:ok, addr}
      {:ok, _v6} -> {:error, "IPv6 interfaces are not supported yet, got: #{inspect(v)}"}
      {:error, reason} -> {:error, reason}
    end
  end

  # Addresses are accepted as tuples, strings or charlists, as libcluster accepts them.
  defp ip(v) when is_binary(v), do: ip(String.to_charlist(v))

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

  defp secrets(nil), do: {:ok, []}
  defp secrets(s) when is_binary(s) and byte_size(s) > 0, do: {:ok, [s]}

  defp secrets([_ | _] = list) do
    if Enum.all?(list, &(is_binary(&1) and byte_size(&1) > 0)),
      do: {:ok, list},
      else: {:error, "expected a non-empty binary or a list of them (the first signs)"}
  end

  defp secrets(_), do: {:error, "expected a non-empty binary or a list of them (the first signs)"}

  defp boolean(v) when is_boolean(v), do: {:ok, v}
  defp boolean(v), do: {:error, "expected true or false, got: #{inspect(v)}"}

  defp mfa({m, f, a} = mfa) when is_atom(m) and is_atom(f) and is_list(a), do: {:ok, mfa}

  defp mfa(other),
    do: {:error, "expected {module, function, args}, got: #{inspect(other)}"}
end
