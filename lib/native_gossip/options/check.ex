defmodule NativeGossip.Options.Check do
  @moduledoc false
  # The check of each option, named after it (NativeGossip.Options.Schema's `check`):
  # `check(value, checked)`, where `value` is what was given (or the schema's default)
  # and `checked` the options checked before it (its `needs`, and `:given`, the keyword
  # list as given). It returns `{:ok, value}`, `{:ok, value, more}` (`more`: a map of
  # other checked values it settles, such as `:notes`), or `{:error, reason}` with a
  # sentence a person can act on (`{:error, {:invalid_option, key, reason}}` when the
  # fault is another key's).

  alias NativeGossip.Options.Network

  @default_group {239, 255, 45, 92}

  # libcluster's Gossip default group (3.3.0 and later): with compat: :libcluster and no
  # :multicast_addr, the group a libcluster topology with default options uses.
  @libcluster_group {233, 252, 1, 32}

  # What the wire format takes: the label, a tag's key, and all the tag records of a
  # heartbeat (3 bytes each besides key and value). Read from wire/mod.rs, their one home,
  # when this module is compiled (as NativeGossip.DropReason reads reason.rs), so that
  # a limit only the native side knows cannot come back as a message of another shape.
  @wire Path.expand("../../../native/native_gossip_core/src/wire/mod.rs", __DIR__)
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

  @type result ::
          {:ok, term()}
          | {:ok, term(), map()}
          | {:error, String.t() | {:invalid_option, atom(), String.t()}}

  # One function per option.

  @doc false
  def name(name, _) when is_atom(name) and name not in [nil, true, false], do: {:ok, name}
  def name(nil, _), do: {:error, "is required: the topology's name, an atom such as :lan"}
  def name(other, _), do: {:error, "expected an atom, got: #{inspect(other)}"}

  @doc false
  def port(v, _), do: int_in(v, 1, 65_535)

  @doc false
  def compat(nil, _), do: {:ok, nil}
  def compat(false, _), do: {:ok, nil}
  def compat(:libcluster, _), do: {:ok, :libcluster}
  def compat(v, _), do: {:error, "expected :libcluster or nil, got: #{inspect(v)}"}

  @doc false
  def broadcast_only(v, _), do: boolean(v)

  @doc false
  # :broadcast, and libcluster's broadcast_only with it (which needs :multicast_addr as
  # given: the broadcast address to send to).
  def broadcast(v, checked) do
    with {:ok, broadcast} <- Network.broadcast(v),
         {:ok, broadcast, note} <-
           Network.broadcast_only(
             checked.broadcast_only,
             broadcast,
             checked.given[:multicast_addr]
           ) do
      {:ok, broadcast, %{notes: note}}
    end
  end

  @doc false
  # With broadcast, the group is the broadcast address (:broadcast's, or the default
  # 255.255.255.255); :multicast_addr is not used. Not given: the default group, or
  # libcluster's with compat: :libcluster.
  def multicast_addr(_v, %{broadcast: {_, _, _, _} = broadcast}), do: {:ok, broadcast}
  def multicast_addr(nil, %{compat: :libcluster}), do: {:ok, @libcluster_group}
  def multicast_addr(nil, _), do: {:ok, @default_group}
  def multicast_addr(v, _), do: Network.multicast(v)

  @doc false
  def multicast_if(v, checked), do: Network.interface(v, checked.multicast_addr)

  @doc false
  def if_addr(v, checked), do: Network.bind_address(v, checked.multicast_addr)

  @doc false
  def multicast_ttl(v, _), do: int_in(v, 0, 255)

  @doc false
  def seeds(v, checked), do: Network.seeds(v, checked.port, checked.multicast_addr)

  @doc false
  def seed_refresh(v, _), do: int_in(v, 1_000, 86_400_000)

  @doc false
  def heartbeat_interval(v, _), do: int_in(v, 10, 3_600_000)

  @doc false
  def lost_after(v, %{heartbeat_interval: i}), do: timeout_at_least(v, i, 3 * i)

  @doc false
  def forget_after(v, %{lost_after: lost}),
    do: timeout_at_least(v, lost, max(60_000, 2 * lost))

  @doc false
  def failure_detection(v, _), do: boolean(v)

  @doc false
  def probe_timeout(v, _), do: int_in(v, 10, 60_000)

  @doc false
  def indirect_probes(v, _), do: int_in(v, 0, 16)

  @doc false
  def max_peers(v, _), do: int_in(v, 1, 1_000_000)

  @doc false
  def max_names(v, %{secret: secrets, max_peers: max_peers}),
    do: limit(v, 1, 100_000_000, default_max_names(secrets, max_peers))

  @doc false
  def max_clock_skew(v, %{forget_after: forget}), do: limit(v, 1_000, 86_400_000, forget)

  @doc false
  def secret(v, _), do: secrets(v)

  @doc false
  def encrypt(v, %{secret: secrets}), do: encrypt_with(v, secrets)

  @doc false
  def cluster(v, _), do: cluster(v)

  @doc false
  def tags(v, _), do: tags(v)

  @doc false
  def connect_if(v, _), do: optional_mfa(v)

  @doc false
  def resolve_short_names(v, _), do: boolean(v)

  @doc false
  def new_peer_rate(v, _), do: int_in(v, 1, 100_000)

  @doc false
  def log_interval(v, _), do: int_in(v, 100, 86_400_000)

  @doc false
  def connect(v, _), do: mfa(v)

  @doc false
  def disconnect(v, _), do: mfa(v)

  @doc false
  def list_nodes(v, _), do: mfa(v)

  @doc false
  # The notes about :if_addr once every option is checked (see bind_address/2).
  def if_addr_notes(%{if_addr: if_addr, multicast_if: mif, broadcast: broadcast}),
    do: Network.if_addr_note(if_addr, mif, broadcast)

  # How they check (those of addresses are NativeGossip.Options.Network's).

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

  defp encrypt_with(false, _secrets), do: {:ok, false}
  defp encrypt_with(true, [_ | _]), do: {:ok, true}

  defp encrypt_with(true, []),
    do: {:error, "needs a :secret: heartbeats are encrypted with keys derived from it"}

  defp encrypt_with(v, _secrets), do: {:error, "expected true or false, got: #{inspect(v)}"}

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
  @spec tags(term()) :: {:ok, NativeGossip.Options.tags()} | {:error, String.t()}
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

  defp optional_mfa(nil), do: {:ok, nil}
  defp optional_mfa(v), do: mfa(v)

  defp boolean(v) when is_boolean(v), do: {:ok, v}
  defp boolean(v), do: {:error, "expected true or false, got: #{inspect(v)}"}

  defp mfa({m, f, a} = mfa) when is_atom(m) and is_atom(f) and is_list(a), do: {:ok, mfa}

  defp mfa(other),
    do: {:error, "expected {module, function, args}, got: #{inspect(other)}"}
end
