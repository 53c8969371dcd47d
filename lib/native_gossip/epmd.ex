defmodule NativeGossip.EPMD do
  @moduledoc """
  Distribution without epmd: an epmd module that answers "where does node X listen?"
  from NativeGossip heartbeats, which carry each node's distribution port.

  Normally a node registers its distribution port with epmd, a daemon on TCP 4369 of
  every host, and a node that connects to `app@host2` first asks epmd on `host2` for
  the port. With this module nothing of that is needed: the node registers with no one,
  its topology's heartbeats say which port it listens on, and a connect to a node heard
  that way goes straight to the address its heartbeats come from and the port they
  name, without any round trip. For a node no heartbeat has told about, it falls back
  to what `:erl_epmd` does (ask epmd on that host), so nodes that run epmd are still
  reached.

  ## Use

  Start the VM with these two flags (`-start_epmd false` keeps `erl` from starting the
  daemon):

      -start_epmd false -epmd_module Elixir.NativeGossip.EPMD

  In a release, put them in `rel/vm.args.eex`. With `iex -S mix`, the module must be on
  the code path when distribution starts, which is before Mix adds the project's paths:

      ERL_FLAGS="-start_epmd false -epmd_module Elixir.NativeGossip.EPMD -pa _build/dev/lib/native_gossip/ebin" \\
        iex --sname a -S mix

  Then start a topology as usual (`{NativeGossip, name: :lan, secret: ...}`). Short
  names work across hosts without DNS too: the host part of a node heard by a
  heartbeat maps to the heartbeat's address.

  The listen port is chosen by the OS unless set as usual (`-kernel
  inet_dist_listen_min 9100 inet_dist_listen_max 9100`, or `ERL_DIST_PORT`); a fixed
  port helps firewalls, and nothing else needs opening.

  ## What it answers

    * `register_node/3`: succeeds without any daemon, and remembers this node's port
      for the heartbeats (`registered_port/0`);
    * `address_please/3`: for a node heard (name and host as in its node name), the
      address of its heartbeats and its port at once; otherwise as `:erl_epmd`;
    * `port_please/3`: for a node heard, its port; otherwise asks epmd on the host as
      `:erl_epmd` does, and logs a warning when that fails too (no heartbeat and no
      epmd know the node);
    * `names/1`, `listen_port_please/2`: as `:erl_epmd`.
  """

  @table __MODULE__
  @port_key {__MODULE__, :port}
  # Most unproven addresses kept per node name (see learn/4).
  @max_unproven 4
  # The version of the distribution protocol epmd reports (OTP R6 and later).
  @version 6

  @doc false
  # Started by the kernel's distribution supervisor: owns the table of nodes heard.
  def start_link, do: :proc_lib.start_link(__MODULE__, :init_owner, [self()])

  @doc false
  def init_owner(parent) do
    _ =
      if :ets.whereis(@table) == :undefined,
        do: :ets.new(@table, [:named_table, :public, :set, read_concurrency: true])

    :proc_lib.init_ack(parent, {:ok, self()})
    owner_loop()
  end

  defp owner_loop do
    receive do
      _ -> owner_loop()
    end
  end

  @doc false
  def register_node(name, port), do: register_node(name, port, :inet_tcp)

  @doc false
  # No daemon to register with: the port goes into the heartbeats. The creation tells
  # this run of the node apart from an earlier one of the same name.
  def register_node(_name, port, _driver) do
    :persistent_term.put(@port_key, port)
    {:ok, :rand.uniform(0xFFFF_FFF0) + 3}
  end

  @doc """
  The distribution port this node registered through this module, or nil (distribution
  not started, or started with another epmd module).
  """
  @spec registered_port() :: :inet.port_number() | nil
  def registered_port, do: :persistent_term.get(@port_key, nil)

  @doc false
  def address_please(name, host, family) do
    case lookup(name, host) do
      {ip, port} when tuple_size(ip) == 4 and family == :inet -> {:ok, ip, port, @version}
      {ip, port} when tuple_size(ip) == 8 and family == :inet6 -> {:ok, ip, port, @version}
      _ -> :erl_epmd.address_please(name, host, family)
    end
  end

  @doc false
  def port_please(name, host), do: port_please(name, host, :infinity)

  @doc false
  def port_please(name, host, timeout) do
    case lookup(name, host) do
      {_ip, port} ->
        {:port, port, @version}

      nil ->
        case :erl_epmd.port_please(name, host, timeout) do
          {:port, _, _} = found ->
            found

          other ->
            :logger.warning(
              ~c"NativeGossip.EPMD: no heartbeat has told where ~ts@~ts listens, and " ++
                ~c"asking epmd there gives ~0p: is a topology running on both nodes (one " ++
                ~c"group, port and secret)?",
              [name, host_string(host), other]
            )

            other
        end
    end
  end

  @doc false
  def names, do: names(:net_adm.localhost())

  @doc false
  def names(host), do: :erl_epmd.names(host)

  @doc false
  def listen_port_please(name, host), do: :erl_epmd.listen_port_please(name, host)

  # The table, per node name {name, host}: one row {{name, host}, answer, proven,
  # unproven}, where `proven` is the {ip, port} a distribution connection (or, with a
  # secret, an authenticated heartbeat bound to its source) proved, or nil, and
  # `unproven` at most @max_unproven other {ip, port} heard, newest first; `answer` is
  # what address_please/3 says: the proven one if any, else the newest unproven. Plus
  # one row {{name, ip}, ip, port} per address of those (a connect by address). So a
  # name costs at most 1 + @max_unproven addresses, however many sources send it, and
  # an unproven address never replaces a proven one.

  @doc false
  # A node's distribution address and port, from its heartbeats (the topology calls it):
  # `proven` when the heartbeat was authenticated and bound to its source address. A
  # no-op unless this module is the VM's epmd module.
  @spec learn(node(), :inet.ip_address(), :inet.port_number(), boolean()) :: :ok
  def learn(node, ip, port, proven \\ false) do
    if :ets.whereis(@table) != :undefined do
      {name, host} = split(node)
      {old_proven, unproven} = entry(name, host)

      if proven do
        put(name, host, {ip, port}, List.keydelete(unproven, ip, 0))
      else
        case old_proven do
          {^ip, _} ->
            :ok

          _ ->
            put(name, host, old_proven, bounded([{ip, port} | List.keydelete(unproven, ip, 0)]))
        end
      end
    end

    :ok
  end

  @doc false
  # A distribution connection with `node` runs over `ip`: the address is proven. Its
  # port is the one its heartbeats from that address gave (nothing to prove otherwise).
  @spec prove(node(), :inet.ip_address()) :: :ok
  def prove(node, ip) do
    if :ets.whereis(@table) != :undefined do
      {name, host} = split(node)

      case entry(name, host) do
        {{^ip, _}, _} ->
          :ok

        {_old, unproven} ->
          case List.keyfind(unproven, ip, 0) do
            {^ip, port} -> put(name, host, {ip, port}, List.keydelete(unproven, ip, 0))
            nil -> :ok
          end
      end
    end

    :ok
  end

  @doc false
  # Every row of a node name goes.
  @spec forget(node()) :: :ok
  def forget(node) do
    if :ets.whereis(@table) != :undefined do
      {name, host} = split(node)
      {proven, unproven} = entry(name, host)
      for {ip, _} <- List.wrap(proven) ++ unproven, do: :ets.delete(@table, {name, ip})
      :ets.delete(@table, {name, host})
    end

    :ok
  end

  @doc false
  # Rows held for a node name (for tests): {proven, unproven}.
  @spec entry(charlist() | node(), charlist()) ::
          {{:inet.ip_address(), :inet.port_number()} | nil,
           [{:inet.ip_address(), :inet.port_number()}]}
  def entry(node) when is_atom(node) do
    {name, host} = split(node)
    entry(name, host)
  end

  def entry(name, host) do
    case :ets.whereis(@table) != :undefined and :ets.lookup(@table, {name, host}) do
      [{_, _answer, proven, unproven}] -> {proven, unproven}
      _ -> {nil, []}
    end
  end

  defp bounded(list), do: Enum.take(list, @max_unproven)

  defp put(name, host, proven, unproven) do
    {old_proven, old_unproven} = entry(name, host)
    kept = Enum.map(List.wrap(proven) ++ unproven, &elem(&1, 0))

    for {ip, _} <- List.wrap(old_proven) ++ old_unproven,
        ip not in kept,
        do: :ets.delete(@table, {name, ip})

    answer = proven || List.first(unproven)
    rows = for {ip, port} <- List.wrap(proven) ++ unproven, do: {{name, ip}, ip, port}
    true = :ets.insert(@table, [{{name, host}, answer, proven, unproven} | rows])
    :ok
  end

  @doc false
  # The nodes this module can answer for: {node name, address, port}.
  @spec known() :: [{charlist(), :inet.ip_address(), :inet.port_number()}]
  def known do
    if :ets.whereis(@table) == :undefined,
      do: [],
      else:
        for(
          {{name, host}, {ip, port}, _, _} <- :ets.tab2list(@table),
          is_list(host),
          do: {name ++ ~c"@" ++ host, ip, port}
        )
  end

  defp split(node) do
    [name, host] = node |> Atom.to_charlist() |> :string.split(~c"@")
    {name, host}
  end

  defp lookup(name, host) do
    with tid when tid != :undefined <- :ets.whereis(@table),
         [row] <- :ets.lookup(@table, {to_charlist(name), normalize(host)}) do
      case row do
        {_, {ip, port}, _, _} -> {ip, port}
        {_, ip, port} -> {ip, port}
      end
    else
      _ -> nil
    end
  end

  defp normalize(host) when is_tuple(host), do: host
  defp normalize(host), do: to_charlist(host)

  defp host_string(host) when is_tuple(host), do: :inet.ntoa(host)
  defp host_string(host), do: host
end
