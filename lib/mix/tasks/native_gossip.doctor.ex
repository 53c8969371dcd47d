defmodule Mix.Tasks.NativeGossip.Doctor do
  @shortdoc "Checks what usually keeps NativeGossip nodes from finding each other"

  @moduledoc """
  Checks, on this host, what usually goes wrong when nodes do not find each other, and
  says how to fix each problem it finds:

    * the VM is not distributed (then the connection checks are skipped);
    * epmd is not running while this VM is distributed through it (on a host where no
      node runs yet that is normal, and only noted); run with
      `-epmd_module Elixir.NativeGossip.EPMD` and the doctor checks that mode instead:
      each node heard must say its distribution port, and that port must be reachable;
    * this host's name does not resolve (only noted with short names resolved from
      heartbeats, the default);
    * no interface that is up and can multicast, or no multicast route (the group
      cannot be joined);
    * the UDP port is held by a program that did not set SO_REUSEADDR;
    * nothing heard on the group for a few seconds (a firewall dropping the port, a
      network that does not carry multicast: use `:seeds`), or heartbeats dropped
      (another secret, no secret, another protocol on the port);
    * for each node heard: a name in the other style (`--sname` against `--name`), a
      host part that does not resolve here (a short one is mapped to the address its
      heartbeats come from, as a topology does), epmd or the distribution port unreachable
      (a firewall), or a refused connection with both reachable (a cookie mismatch).

  Run it distributed, with the cookie of your nodes, to check connections too:

      $ elixir --sname doctor --cookie "$COOKIE" -S mix native_gossip.doctor
      $ mix native_gossip.doctor --port #{NativeGossip.Options.defaults()[:port]} --secret "$SECRET" --seconds 10
      $ mix native_gossip.doctor --topology lan   # options of config :native_gossip, :topologies
      $ mix native_gossip.doctor --topology gossip_example --compat libcluster

  After listening it sends one heartbeat to the group, to check the path out of this
  host: a goodbye in a name no node uses, signed with the first `--secret` (every node
  of that secret accepts it and changes nothing; it is not sent when heartbeats heard
  here would be dropped, so that nodes of another secret do not log it). It exits with
  an error when it found a problem.

  ## Options

    * `--topology` - take group, port, interface, secret and compat from this topology
      of `config :native_gossip, :topologies`, or of `config :libcluster, :topologies`
      (a `NativeGossip.Strategy` topology, with libcluster's meaning of each key; or a
      `Cluster.Strategy.Gossip` one, checked as `compat: :libcluster` would see it)
    * `--compat libcluster` - as a `compat: :libcluster` topology: libcluster Gossip
      heartbeats are decoded and their nodes checked, not reported as dropped; a mixed
      cluster in the middle of a migration passes
    * `--group`, `--port`, `--if` (or `--interface`), `--secret` (once per secret), `--encrypt`,
      `--cluster`, `--broadcast` (libcluster's `broadcast_only`: `--group` is then the
      broadcast address, 255.255.255.255 without it) - the topology's options, for a topology started in a
      supervision tree (`{NativeGossip, ...}`) rather than from config; they override
      `--topology`'s. Heartbeats of another cluster label are listed with their label
    * `--no-resolve-short-names` - check as a topology with `resolve_short_names: false`
      would: a `--sname` peer's host must then resolve here (by default the doctor maps
      it to the address its heartbeats come from, as a topology does)
    * `--seconds` - how long to listen for heartbeats (default 5)
  """

  use Mix.Task

  @switches [
    topology: :string,
    group: :string,
    port: :integer,
    if: :string,
    interface: :string,
    secret: :keep,
    encrypt: :boolean,
    cluster: :string,
    compat: :string,
    broadcast: :boolean,
    resolve_short_names: :boolean,
    seconds: :integer
  ]

  @impl Mix.Task
  def run(argv) do
    opts = NativeGossip.MixTask.prepare!(argv, @switches)
    Mix.Task.run("app.config")

    settings = settings(opts)

    problems =
      [
        &distribution/1,
        &epmd/1,
        &host_name/1,
        &interfaces/1,
        &group_and_port/1,
        &heartbeats/1
      ]
      |> Enum.flat_map(& &1.(settings))
      |> Enum.count(&(&1 == :problem))

    if problems > 0 do
      Mix.raise("mix native_gossip.doctor found #{problems} problem(s), described above")
    else
      info("no problem found")
    end
  end

  defp settings(opts) do
    o = NativeGossip.MixTask.task_options!(opts)

    if tuple_size(o.multicast_addr) != 4,
      do: Mix.raise("--group: only IPv4 groups are checked by this task")

    %{
      group: o.multicast_addr,
      broadcast: o.broadcast,
      port: o.port,
      interface: o.multicast_if,
      secrets: o.secrets,
      encrypt: o.encrypt,
      compat: o.compat,
      ttl: o.multicast_ttl,
      max_clock_skew: o.max_clock_skew,
      seeds: o.seeds,
      cluster: o.cluster || "",
      resolve_short_names: o.resolve_short_names,
      seconds: opts[:seconds] || 5
    }
  end

  defp info(text), do: Mix.shell().info(text)

  defp ok(text), do: [info("ok      " <> text) && :ok]

  defp problem(text, fix) do
    info("PROBLEM " <> text)
    info("        fix: " <> fix)
    [:problem]
  end

  defp note(text), do: [info("note    " <> text) && :ok]

  defp distribution(_s) do
    if Node.alive?() do
      ok("this VM is distributed as #{node()}")
    else
      note(
        "this VM is not distributed, so connections are not checked; run " <>
          "`elixir --sname doctor --cookie <your cookie> -S mix native_gossip.doctor`"
      )
    end
  end

  defp epmd(_s) do
    if epmd_less?(), do: epmd_less(), else: epmd_daemon()
  end

  defp epmd_less do
    case NativeGossip.EPMD.registered_port() do
      nil ->
        note(
          "this VM runs with -epmd_module Elixir.NativeGossip.EPMD but is not distributed: " <>
            "start it with --sname or --name to check connections"
        )

      port ->
        ok(
          "distribution without epmd (NativeGossip.EPMD): this node listens on port #{port}, " <>
            "and learns the others' ports from their heartbeats"
        )
    end
  end

  defp epmd_daemon do
    case {:erl_epmd.names(), Node.alive?()} do
      {{:ok, names}, _} ->
        ok("epmd is running (#{length(names)} node name(s) registered on this host)")

      # Not distributed: no epmd is normal on a host where no node runs yet.
      {{:error, _}, false} ->
        note(
          "epmd is not running on this host: normal while no node runs here (the first " <>
            "node started with --sname or --name starts it)"
        )

      {{:error, reason}, true} ->
        problem(
          "this VM is distributed through epmd, but no epmd answers on this host " <>
            "(#{epmd_error(reason)})",
          "start it with `epmd -daemon`; a VM started with -start_epmd false needs one " <>
            "started apart, or -epmd_module Elixir.NativeGossip.EPMD"
        )
    end
  end

  defp epmd_error(:address), do: "nothing accepts connections on TCP port 4369"
  defp epmd_error(reason), do: :inet.format_error(reason) |> List.to_string()

  defp host_name(s) do
    {:ok, host} = :inet.gethostname()

    case :inet.gethostbyname(host) do
      {:ok, _} ->
        ok("this host's name #{host} resolves")

      {:error, _} when s.resolve_short_names ->
        note(
          "this host's name #{host} does not resolve here: NativeGossip nodes with " <>
            ":resolve_short_names (the default) learn it from this host's heartbeats; " <>
            "other tools may need it in /etc/hosts"
        )

      {:error, _} ->
        problem(
          "this host's name #{host} does not resolve here",
          "nodes started with --sname use it: add it to /etc/hosts, or start nodes with " <>
            "--name <name>@<address>"
        )
    end
  end

  defp interfaces(s) do
    {:ok, ifs} = :inet.getifaddrs()

    usable =
      for {name, props} <- ifs,
          flags = Keyword.get(props, :flags, []),
          :up in flags and :multicast in flags and :loopback not in flags,
          do: List.to_string(name)

    cond do
      match?({:name, _}, s.interface) and
          elem(s.interface, 1) not in Enum.map(ifs, &List.to_string(elem(&1, 0))) ->
        problem(
          "no interface named #{elem(s.interface, 1)} on this host",
          "set :multicast_if to one of: #{Enum.map_join(ifs, ", ", &List.to_string(elem(&1, 0)))}"
        )

      usable == [] ->
        note(
          "no interface other than loopback is up and able to multicast: only nodes on " <>
            "this host can be found (bring the network interface up with " <>
            "`ip link set <interface> up`; without multicast, use :seeds)"
        )

      true ->
        ok("interfaces up and able to multicast: #{Enum.join(usable, ", ")}")
    end
  end

  defp group_and_port(s) do
    case open(s) do
      {:ok, socket} ->
        :gen_udp.close(socket)

        ok(
          "can bind UDP port #{s.port} and #{if s.broadcast, do: "receive broadcasts", else: "join #{:inet.ntoa(s.group)}"}"
        )

      {:error, :eaddrinuse} ->
        problem(
          "UDP port #{s.port} is held by a program that did not set SO_REUSEADDR",
          "find it with `ss -ulpn 'sport = :#{s.port}'`, or choose another :port"
        )

      {:error, reason} when reason in [:enodev, :eaddrnotavail, :enetunreach, :einval] ->
        problem(
          "cannot join #{:inet.ntoa(s.group)} (#{:inet.format_error(reason)}): no multicast " <>
            "route, or the interface has no such address",
          "add a route (`ip route add 224.0.0.0/4 dev <interface>`) or set :multicast_if " <>
            "to the interface"
        )

      {:error, reason} ->
        problem(
          "cannot listen on #{:inet.ntoa(s.group)}:#{s.port}: #{:inet.format_error(reason)}",
          "check the :multicast_addr, :port and :multicast_if options"
        )
    end
  end

  defp open(%{broadcast: true} = s),
    do: :gen_udp.open(s.port, [:binary, active: false, reuseaddr: true, broadcast: true])

  defp open(s) do
    interface =
      case s.interface do
        {:name, name} -> NativeGossip.Options.ipv4_interface(name) || {0, 0, 0, 0}
        other -> Mix.Tasks.NativeGossip.Listen.interface!(other)
      end

    :gen_udp.open(s.port, [
      :binary,
      active: false,
      reuseaddr: true,
      ip: s.group,
      add_membership: {s.group, interface}
    ])
  end

  defp where(%{broadcast: true}), do: "broadcasts"
  defp where(s), do: :inet.ntoa(s.group)

  defp heartbeats(s) do
    case open(s) do
      {:ok, socket} ->
        info("...     listening on #{where(s)}:#{s.port} for #{s.seconds} s")
        deadline = System.monotonic_time(:millisecond) + s.seconds * 1000
        {heard, _last} = listen(socket, s, deadline, {%{}, %{}})
        sent = send_check(socket, s, heard)
        :gen_udp.close(socket)
        verdicts(heard, s) ++ sent

      {:error, _} ->
        # Already reported by group_and_port/1.
        []
    end
  end

  # Each datagram gets the verdict a topology would give it: with a secret, the source
  # and clock checks of NativeGossip.MixTask.decode/3, and here the replay check (per
  # name, the highest {incarnation, sequence} accepted, kept in `last`).
  defp listen(socket, s, deadline, {acc, last}) do
    left = deadline - System.monotonic_time(:millisecond)

    with true <- left > 0,
         {:ok, {ip, _port, data}} <- :gen_udp.recv(socket, 2048, left) do
      {key, last} =
        case NativeGossip.MixTask.decode(data, ip, s) do
          {:ok, %{cluster: label}} when label != s.cluster ->
            {{:other_cluster, label}, last}

          # libcluster's format (with --compat) has no sequence to check for replays.
          {:ok, %{format: :libcluster, name: name}} ->
            {{:libcluster, name, ip}, last}

          {:ok, %{name: name} = hb} ->
            order = {hb.incarnation, hb.sequence}

            case last do
              %{^name => seen} when seen >= order -> {{:dropped, :replay}, last}
              _ -> {{:node, name, ip, hb.dist_port}, Map.put(last, name, order)}
            end

          {:error, reason} ->
            {{:dropped, reason}, last}
        end

      listen(socket, s, deadline, {Map.update(acc, key, 1, &(&1 + 1)), last})
    else
      _ -> {acc, last}
    end
  end

  defp verdicts(heard, s) when map_size(heard) == 0 do
    problem(
      "heard no datagram on #{where(s)}:#{s.port} in #{s.seconds} s",
      "either no other node runs here, or a firewall drops UDP port #{s.port} " <>
        "(`nft list ruleset`, `iptables -L`), or the network does not carry multicast " <>
        "between hosts (switches with IGMP snooping and no querier, clouds, containers: " <>
        "use :seeds, or :broadcast)"
    )
  end

  defp verdicts(heard, s) do
    # Per name, the address it was heard from most (a name heard from several is
    # checked where most of its heartbeats came from).
    nodes = most_heard(heard, fn {:node, name, ip, dist_port} -> {name, ip, dist_port} end)

    # With --compat: nodes heard only in libcluster's format (a compat node sends both
    # formats, and is known by its native heartbeats, as a topology does).
    native = MapSet.new(nodes, &elem(&1, 0))

    old =
      heard
      |> most_heard(fn {:libcluster, name, ip} -> {name, ip, 0} end)
      |> Enum.reject(&MapSet.member?(native, elem(&1, 0)))

    heard_ok =
      ok(
        "heard #{length(nodes)} node(s)" <>
          if(old == [], do: "", else: ", and #{length(old)} in libcluster's format (compat)")
      )

    labels =
      for {{:other_cluster, label}, n} <- heard do
        note(
          "#{n} heartbeat(s) of the cluster label #{inspect(label)} (#{if label == "", do: "none", else: "another"} " <>
            "than this topology's #{inspect(s.cluster)}): kept apart on purpose; give " <>
            "--cluster to check that cluster"
        )
      end

    drops =
      for {{:dropped, reason}, n} <- heard do
        problem(
          "#{n} datagram(s) would be dropped: #{reason}",
          NativeGossip.DropReason.explain(reason)
        )
      end

    checked = Enum.take(nodes ++ old, 20)
    # Only for its effect on this VM's resolver; and only from authenticated heartbeats
    # (without a secret, anyone could have sent that address).
    _ =
      if s.resolve_short_names and Node.alive?() and s.secrets != [],
        do: map_short_hosts(checked)

    checks =
      Enum.flat_map(checked, fn {name, ip, dist_port} -> check_node(name, ip, dist_port, s) end)

    List.flatten([heard_ok | labels] ++ drops ++ checks)
  end

  # The rows of `heard` that `row` takes (a function clause), per name the one heard
  # most often, most heard first.
  defp most_heard(heard, row) do
    heard
    |> Enum.flat_map(fn {key, n} ->
      try do
        [{row.(key), n}]
      rescue
        FunctionClauseError -> []
      end
    end)
    |> Enum.sort_by(&elem(&1, 1), :desc)
    |> Enum.map(&elem(&1, 0))
    |> Enum.uniq_by(&elem(&1, 0))
  end

  # One heartbeat sent to the group (a goodbye in a name no node uses, which every node
  # of this secret accepts and ignores), and heard back on `socket` through this host's
  # multicast loopback: the path out of this host works. Not sent when heartbeats heard
  # here would be dropped (another secret: those nodes would log this one too).
  defp send_check(socket, s, heard) do
    if Enum.any?(heard, &match?({{:dropped, _}, _}, &1)) do
      note("no heartbeat sent to check the path: fix the drops above first")
    else
      {:ok, host} = :inet.gethostname()
      name = "native_gossip_doctor#{System.unique_integer([:positive])}@#{host}"

      case NativeGossip.Native.goodbye(name, s.secrets, s.encrypt, s.cluster) do
        {:ok, packet} -> send_and_hear(socket, s, packet)
        {:error, why} -> note("no heartbeat sent to check the path (#{why})")
      end
    end
  end

  defp send_and_hear(socket, s, packet) do
    interface =
      case s.interface do
        {:name, name} -> NativeGossip.Options.ipv4_interface(name) || {0, 0, 0, 0}
        other -> Mix.Tasks.NativeGossip.Listen.interface!(other)
      end

    {:ok, out} =
      :gen_udp.open(0, [
        :binary,
        broadcast: s.broadcast,
        multicast_if: interface,
        multicast_ttl: s.ttl,
        multicast_loop: true
      ])

    result = :gen_udp.send(out, s.group, s.port, packet)
    :gen_udp.close(out)
    to = "#{:inet.ntoa(s.group)}:#{s.port}"

    case result do
      :ok ->
        if hear(socket, packet, System.monotonic_time(:millisecond) + 1000),
          do: ok("sent a heartbeat to #{to} and heard it back: the path out of this host works"),
          else:
            note(
              "sent a heartbeat to #{to} but did not hear it back on this host (multicast " <>
                "loopback off, or an interface that drops it)"
            )

      {:error, reason} ->
        problem(
          "cannot send to #{to}: #{:inet.format_error(reason)}",
          "check that the host has a route to #{:inet.ntoa(s.group)} (`ip route get " <>
            "#{:inet.ntoa(s.group)}`), that the interface is up, and that no firewall " <>
            "rejects outgoing UDP; with broadcast, use the subnet's broadcast address"
        )
    end
  end

  defp hear(socket, packet, deadline) do
    left = deadline - System.monotonic_time(:millisecond)

    case left > 0 && :gen_udp.recv(socket, 2048, left) do
      {:ok, {_ip, _port, ^packet}} -> true
      {:ok, _other} -> hear(socket, packet, deadline)
      _ -> false
    end
  end

  # As a topology with :resolve_short_names does: each short host name heard is mapped,
  # in this VM only, to the address its heartbeats come from (the first node heard of
  # a host claims it).
  defp map_short_hosts(nodes) do
    Enum.reduce(nodes, NativeGossip.ShortNames.new(node()), fn {name, ip, _}, names ->
      if NativeGossip.NodeName.connectable?(name),
        do: NativeGossip.ShortNames.learn(names, String.to_atom(name), ip),
        else: names
    end)
  end

  defp check_node(name, ip, dist_port, s) do
    [short, host] = String.split(name, "@", parts: 2)
    from = :inet.ntoa(ip)

    cond do
      not Node.alive?() ->
        note("heard #{name} from #{from}")

      epmd_less?() and dist_port > 0 and s.secrets == [] ->
        declined(name, from, "its distribution port #{dist_port}")

      epmd_less?() and dist_port > 0 ->
        # As a topology here would: the heartbeat says where the node listens.
        NativeGossip.EPMD.learn(String.to_atom(name), ip, dist_port, true)
        reach_port(name, from, ip, dist_port)

      epmd_less?() ->
        problem(
          "heard #{name} from #{from}, whose heartbeats do not say its distribution port, " <>
            "and this VM runs without epmd",
          "start #{name} with -epmd_module Elixir.NativeGossip.EPMD too, or run epmd on " <>
            "its host (nodes with epmd are reached through it)"
        )

      not NativeGossip.NodeName.connectable?(name) ->
        style = if NativeGossip.NodeName.long_host?(host), do: "--name", else: "--sname"

        problem(
          "heard #{name}, named in the other style than this VM (#{style})",
          "start every node with --sname, or every node with --name"
        )

      s.secrets == [] and s.resolve_short_names and NativeGossip.NodeName.short_host?(host) and
          match?({:error, _}, :inet.gethostbyname(String.to_charlist(host))) ->
        declined(name, from, "the address of its host #{host}")

      match?({:error, _}, :inet.gethostbyname(String.to_charlist(host))) ->
        problem(
          "heard #{name} from #{from}, but its host #{host} does not resolve here" <>
            if(s.resolve_short_names, do: "", else: " (checked with resolve_short_names off)"),
          "add #{host} to DNS or /etc/hosts, or keep :resolve_short_names on (the default)"
        )

      true ->
        reach(name, short, host, from)
    end
  end

  # Without a secret the doctor does not connect where only a heartbeat says to go.
  defp declined(name, from, what) do
    note(
      "heard #{name} from #{from}; not connecting: without a secret #{what} comes only " <>
        "from an unauthenticated heartbeat, which anyone on the network can send (give " <>
        "--secret, or make #{name}'s host resolve)"
    )
  end

  defp reach(name, short, host, from) do
    node = String.to_atom(name)

    case :erl_epmd.port_please(String.to_charlist(short), String.to_charlist(host), 2000) do
      {:port, port, _version} ->
        cond do
          Node.connect(node) ->
            ok("heard #{name} from #{from} and connected to it")

          match?({:ok, _}, tcp(host, port)) ->
            problem(
              "#{name} is reachable (epmd and its distribution port #{port}) but refused " <>
                "the connection",
              "a cookie mismatch: start every node with the same --cookie (or RELEASE_COOKIE)"
            )

          true ->
            problem(
              "#{name}'s distribution port #{port} is not reachable from here",
              "a firewall drops it: open the distribution ports (inet_dist_listen_min/max)"
            )
        end

      _ ->
        problem(
          "heard #{name} from #{from}, but epmd on #{host} (TCP 4369) does not answer for it",
          "a firewall drops TCP 4369, or the node is not running any more"
        )
    end
  end

  defp reach_port(name, from, ip, port) do
    cond do
      Node.connect(String.to_atom(name)) ->
        ok("heard #{name} from #{from} (distribution port #{port}) and connected to it")

      match?({:ok, _}, tcp(ip, port)) ->
        problem(
          "#{name} is reachable (distribution port #{port}) but refused the connection",
          "a cookie mismatch: start every node with the same --cookie (or RELEASE_COOKIE)"
        )

      true ->
        problem(
          "#{name}'s distribution port #{port} (from its heartbeats) is not reachable from here",
          "a firewall drops it: fix the port (-kernel inet_dist_listen_min/max) and open it"
        )
    end
  end

  defp epmd_less?, do: :net_kernel.epmd_module() == NativeGossip.EPMD

  defp tcp(host, port) when is_tuple(host) do
    with {:ok, s} <- :gen_tcp.connect(host, port, [], 2000) do
      :gen_tcp.close(s)
      {:ok, port}
    end
  end

  defp tcp(host, port) do
    with {:ok, s} <- :gen_tcp.connect(String.to_charlist(host), port, [], 2000) do
      :gen_tcp.close(s)
      {:ok, port}
    end
  end
end
