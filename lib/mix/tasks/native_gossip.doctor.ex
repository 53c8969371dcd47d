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

  import NativeGossip.Doctor.Report
  alias NativeGossip.Doctor.{Heartbeats, Reach}

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
        &Heartbeats.heartbeats/1
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
    if Reach.epmd_less?(), do: epmd_less(), else: epmd_daemon()
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
    case Heartbeats.open(s) do
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
end
