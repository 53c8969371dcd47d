defmodule Mix.Tasks.NativeGossip.Listen do
  @shortdoc "Prints the NativeGossip heartbeats seen on a group, with each one's verdict"

  @defaults NativeGossip.Options.defaults()

  @moduledoc """
  Prints every datagram that arrives on a NativeGossip group and port: when, from
  which address, and what a topology with the same secret would make of it: the node
  it announces, or why it would be dropped.

      $ mix native_gossip.listen
      $ mix native_gossip.listen --group #{:inet.ntoa(NativeGossip.Options.default_group())} --port #{@defaults[:port]} --secret "$SECRET"
      $ mix native_gossip.listen --if eth0 --seconds 30

  Sample output:

      10:41:07.112 198.51.100.2:45892 accepted a@host2 incarnation=1795321318845766 sequence=12 [newcomer,signed] tags=%{"role" => "web"}
      10:41:07.530 198.51.100.9:51234 dropped bad_signature
      10:41:08.004 198.51.100.3:45892 dropped sealed

  It only listens (it never sends a heartbeat), and shares the port with nodes running
  on the same host. It decodes without memory, so a replayed heartbeat shows as
  accepted here, while a node drops it as `replay`.

  ## Options

    * `--group` - the IPv4 multicast group (default `#{:inet.ntoa(NativeGossip.Options.default_group())}`)
    * `--port` - the UDP port (default `#{@defaults[:port]}`)
    * `--secret` - a topology secret; repeat it to try several (without one, signed
      heartbeats show as `unexpected_signature`)
    * `--encrypt` - with `--secret`: open encrypted heartbeats (`:encrypt` topologies);
      without it they show as `sealed`, unreadable
    * `--cluster` - this task shows every label it hears; with `--cluster`, heartbeats
      of other labels show as `other_cluster` too, as a topology with that label
      would drop them
    * `--if` (or `--interface`) - the interface to listen on: a name (`eth0`) or an IPv4 address
      (default: the multicast route's)
    * `--broadcast` - listen for broadcast heartbeats (`:broadcast` topologies)
      instead of joining a group (as libcluster's `broadcast_only`: `--group` is then
      the broadcast address)
    * `--compat libcluster` - as a `compat: :libcluster` topology: libcluster Gossip
      heartbeats show as `accepted <node> (libcluster format)` (without it, as
      `dropped libcluster_format`)
    * `--topology` - the group, port, interface, secret and compat of this topology of
      `config :native_gossip, :topologies` or `config :libcluster, :topologies` (flags
      override them)
    * `--count` - stop after this many datagrams
    * `--seconds` - stop after this many seconds

  IPv6 groups are not supported by this task; `native-gossip-probe listen` (in the
  repository) covers the IPv4 group too, from outside the BEAM.
  """

  use Mix.Task

  @switches [
    group: :string,
    port: :integer,
    secret: :keep,
    encrypt: :boolean,
    cluster: :string,
    if: :string,
    interface: :string,
    broadcast: :boolean,
    compat: :string,
    topology: :string,
    count: :integer,
    seconds: :integer
  ]

  @impl Mix.Task
  def run(argv) do
    opts = NativeGossip.MixTask.prepare!(argv, @switches)
    Mix.Task.run("app.config")

    o = NativeGossip.MixTask.task_options!(opts)
    socket = open!(o)
    deadline = if s = opts[:seconds], do: System.monotonic_time(:millisecond) + s * 1000
    what = if o.broadcast, do: "broadcasts", else: :inet.ntoa(o.multicast_addr)

    Mix.shell().info(
      "listening on #{what}:#{o.port}" <>
        if(o.secrets == [],
          do: " (no secret)",
          else: " with #{length(o.secrets)} secret(s)"
        )
    )

    loop(socket, o, opts[:count], deadline)
  end

  defp open!(%{port: port} = o) do
    base = [:binary, active: false, reuseaddr: true]

    socket_opts =
      cond do
        o.broadcast ->
          base ++ [broadcast: true]

        tuple_size(o.multicast_addr) != 4 ->
          Mix.raise("--group: only IPv4 groups are supported here")

        true ->
          group = o.multicast_addr
          base ++ [ip: group, add_membership: {group, interface!(o.multicast_if)}]
      end

    case :gen_udp.open(port, socket_opts) do
      {:ok, socket} ->
        socket

      {:error, reason} ->
        Mix.raise("cannot listen on UDP port #{port}: #{:inet.format_error(reason)}")
    end
  end

  @doc false
  # The IPv4 address to join the group on, for an interface of Options.
  def interface!(nil), do: {0, 0, 0, 0}
  def interface!({_, _, _, _} = ip), do: ip

  def interface!({:name, name}) do
    NativeGossip.Options.ipv4_interface(name) ||
      Mix.raise("--if: no interface named #{inspect(name)} with an IPv4 address")
  end

  defp loop(_socket, _o, 0, _deadline), do: :ok

  defp loop(socket, o, count, deadline) do
    timeout = if deadline, do: max(deadline - System.monotonic_time(:millisecond), 0), else: 1000

    case :gen_udp.recv(socket, 2048, timeout) do
      {:ok, {ip, port, data}} ->
        Mix.shell().info(line(ip, port, data, o))
        loop(socket, o, count && count - 1, deadline)

      {:error, :timeout} ->
        if deadline && System.monotonic_time(:millisecond) >= deadline,
          do: :ok,
          else: loop(socket, o, count, deadline)

      {:error, reason} ->
        Mix.raise("receive failed: #{:inet.format_error(reason)}")
    end
  end

  @doc false
  # One output line for a datagram from `ip`:`port`, as a topology with these settings
  # (`secrets`, `encrypt`, `compat`, and the cluster label `cluster`: nil shows any
  # label) would see it.
  def line(ip, port, data, settings) do
    cluster = Map.get(settings, :cluster)
    {{_, _, _}, {h, m, s}} = :calendar.local_time()
    ms = rem(System.system_time(:millisecond), 1000)

    at = :io_lib.format("~2..0B:~2..0B:~2..0B.~3..0B", [h, m, s, ms]) |> IO.iodata_to_binary()

    from =
      if tuple_size(ip) == 4, do: "#{:inet.ntoa(ip)}:#{port}", else: "[#{:inet.ntoa(ip)}]:#{port}"

    verdict =
      case NativeGossip.MixTask.decode(data, ip, settings) do
        {:ok, %{format: :libcluster, name: name}} ->
          "accepted #{name} (libcluster format)"

        {:ok, %{name: name, cluster: label}} when cluster != nil and label != cluster ->
          "dropped other_cluster (#{name}, label #{inspect(label)})"

        {:ok, %{name: name, cluster: label, tags: tags, dist_port: dist_port} = hb} ->
          "accepted #{name} incarnation=#{hb.incarnation} sequence=#{hb.sequence} [#{Enum.join(hb.flags, ",")}]" <>
            if(label != "", do: " cluster=#{inspect(label)}", else: "") <>
            if(tags != %{}, do: " tags=#{inspect(tags)}", else: "") <>
            if(dist_port > 0, do: " dist_port=#{dist_port}", else: "")

        {:error, reason} ->
          "dropped #{reason}"
      end

    "#{at} #{from} #{verdict}"
  end
end
