defmodule NativeGossip.TestRig do
  @moduledoc false
  # Test hosts made of network namespaces (see ../shared/notes/network-sandbox.md):
  # N host namespaces, each with its own address 198.51.100.<i>/24 and host name
  # `host<i>`, joined by a bridge in a namespace of its own. A BEAM node runs in a host
  # as a separate OS process started with :peer (controlled over stdio, so the test
  # runner is never part of the cluster), with `-connect_all false`, so every connection
  # between nodes is made by NativeGossip.
  #
  # Must run inside test/support/private_net.sh (as root there): namespace names live in
  # its private /run/netns, and `stop/1` removes everything a rig made, including the
  # daemons (epmd) started inside the hosts. Call `stop/1` from on_exit.

  defstruct [:id, :bridge, router: nil, hosts: []]

  @type host :: %{
          index: pos_integer(),
          netns: String.t(),
          veth: String.t(),
          address: :inet.ip4_address(),
          address6: :inet.ip6_address(),
          segment: 0 | 1,
          hostname: String.t()
        }
  @type t :: %__MODULE__{id: String.t(), bridge: String.t(), hosts: [host()]}

  @doc "Whether rigs can be made here (root inside a private namespace)."
  def available? do
    System.get_env("NATIVE_GOSSIP_NETNS") == "1" and
      match?({"0\n", 0}, System.cmd("id", ["-u"])) and
      System.find_executable("ip") != nil
  end

  @doc """
  Makes `n` hosts on one bridge. `down: [i, ...]` leaves those hosts' links down and
  without a multicast route (an interface that comes up later: `link(rig, i, :up)`).

  Every host also has an IPv6 address, `fd00:4e47::<i>` (`fd00:4e47:1::<i>` on the
  second segment). `split: k` puts hosts 1..k on one segment (198.51.100.0/24) and the
  others on a second bridge (203.0.113.0/24, `203.0.113.<i>`), joined by a router
  namespace that forwards unicast only: no multicast crosses between the two.
  """
  @spec start!(pos_integer(), keyword()) :: t()
  def start!(n, opts \\ []) do
    # Only inside test/support/private_net.sh: the rig's namespace names then live in a
    # private /run/netns, and everything it starts dies with that namespace.
    unless System.get_env("NATIVE_GOSSIP_NETNS") == "1" do
      raise "test hosts are made only inside test/support/private_net.sh (make test, make bench)"
    end

    down = Keyword.get(opts, :down, [])
    id = "ng#{rem(System.unique_integer([:positive]), 100)}"
    bridge = "#{id}br"
    ip!(["netns", "add", bridge])
    ip!(["-n", bridge, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"])
    ip!(["-n", bridge, "link", "set", "br0", "up"])
    rig = %__MODULE__{id: id, bridge: bridge}
    split = Keyword.get(opts, :split)
    rig = if split, do: add_router(rig), else: rig
    segment = fn i -> if split && i > split, do: 1, else: 0 end
    %{rig | hosts: Enum.map(1..n, &add_host(rig, &1, &1 not in down, segment.(&1)))}
  end

  @segments [
    %{bridge: "br0", v4: "198.51.100", v6: "fd00:4e47:"},
    %{bridge: "br1", v4: "203.0.113", v6: "fd00:4e47:1:"}
  ]

  @doc "Like `start!/2`, from a test: the rig is stopped when the test ends."
  def start_in_test!(n, opts \\ []) do
    rig = start!(n, opts)
    ExUnit.Callbacks.on_exit(fn -> stop(rig) end)
    rig
  end

  # A veth pair: `inner` moved into namespace `netns`, `outer` plugged into `bridge`.
  defp plug(rig, netns, inner, outer, bridge) do
    ip!(["link", "add", inner, "type", "veth", "peer", "name", outer])
    ip!(["link", "set", inner, "netns", netns])
    ip!(["link", "set", outer, "netns", rig.bridge])
    ip!(["-n", rig.bridge, "link", "set", outer, "master", bridge])
    ip!(["-n", rig.bridge, "link", "set", outer, "up"])
  end

  # A second bridge and a router namespace with a leg on each (.254), forwarding.
  defp add_router(rig) do
    router = "#{rig.id}rt"
    ip!(["-n", rig.bridge, "link", "add", "br1", "type", "bridge", "mcast_snooping", "0"])
    ip!(["-n", rig.bridge, "link", "set", "br1", "up"])
    ip!(["netns", "add", router])

    for {seg, k} <- Enum.with_index(@segments) do
      leg = "#{rig.id}r#{k}"
      plug(rig, router, leg, "#{rig.id}q#{k}", seg.bridge)
      ip!(["-n", router, "addr", "add", "#{seg.v4}.254/24", "dev", leg])
      ip!(["-n", router, "link", "set", leg, "up"])
    end

    cmd!("ip", ~w(netns exec #{router} sysctl -qw net.ipv4.ip_forward=1))
    %{rig | router: router}
  end

  defp add_host(rig, i, up?, segment) do
    seg = Enum.at(@segments, segment)
    netns = "#{rig.id}h#{i}"
    veth = "#{rig.id}v#{i}"
    {:ok, address} = :inet.parse_address(~c"#{seg.v4}.#{i}")
    {:ok, address6} = :inet.parse_address(~c"#{seg.v6}:#{i}")
    ip!(["netns", "add", netns])
    plug(rig, netns, veth, "#{rig.id}p#{i}", seg.bridge)
    ip!(["-n", netns, "addr", "add", "#{seg.v4}.#{i}/24", "dev", veth])
    ip!(["-n", netns, "-6", "addr", "add", "#{:inet.ntoa(address6)}/64", "dev", veth, "nodad"])
    ip!(["-n", netns, "link", "set", "lo", "up"])

    host = %{
      index: i,
      netns: netns,
      veth: veth,
      address: address,
      address6: address6,
      segment: segment,
      hostname: "host#{i}"
    }

    if up?, do: link_up(host)
    if rig.router, do: ip!(["-n", netns, "route", "add", "default", "via", "#{seg.v4}.254"])
    host
  end

  # A multicast route can only be added to a link that is up, and some kernels drop it
  # when the link goes down: (re)add it with the link.
  defp link_up(host) do
    ip!(["-n", host.netns, "link", "set", host.veth, "up"])
    ip!(["-n", host.netns, "route", "replace", "224.0.0.0/4", "dev", host.veth])
  end

  @doc """
  Starts a BEAM node on host `i`. Options: `name:` (default "n"), `names: :long`
  (`n@198.51.100.<i>`, default) or `:short` (`n@host<i>`, with no DNS or hosts-file
  entry for any other host), `hostname:` (instead of `host<i>`: a host that comes back
  under a new name, as a pod does), `erl_args:` (more arguments for `erl`, charlists).
  Returns `{peer, node}`.
  """
  def start_node!(%__MODULE__{} = rig, i, opts \\ []) do
    host = Enum.at(rig.hosts, i - 1)
    host = %{host | hostname: Keyword.get(opts, :hostname, host.hostname)}
    name = opts |> Keyword.get(:name, "n") |> to_string() |> String.to_atom()
    paths = Enum.flat_map(:code.get_path(), &[~c"-pa", &1])

    {host_part, longnames} =
      case Keyword.get(opts, :names, :long) do
        :long -> {~c"#{:inet.ntoa(host.address)}", true}
        :short -> {String.to_charlist(host.hostname), false}
      end

    # ip netns exec <host> unshare --uts sh -c 'hostname <host>; exec erl "$@"' sh <erl args>
    exec =
      {String.to_charlist(System.find_executable("ip")),
       [
         ~c"netns",
         ~c"exec",
         String.to_charlist(host.netns),
         String.to_charlist(System.find_executable("unshare")),
         ~c"--uts",
         ~c"sh",
         ~c"-c",
         String.to_charlist("hostname #{host.hostname} && exec erl \"$@\""),
         ~c"sh"
       ]}

    {:ok, peer, node} =
      :peer.start(%{
        name: name,
        host: host_part,
        longnames: longnames,
        exec: exec,
        connection: :standard_io,
        args: [~c"-connect_all", ~c"false" | Keyword.get(opts, :erl_args, [])] ++ paths,
        wait_boot: 30_000
      })

    {:ok, _} = :peer.call(peer, Application, :ensure_all_started, [:native_gossip])
    :ok = :peer.call(peer, Logger, :configure, [[level: :error]])
    {peer, node}
  end

  @doc """
  Loads on node `peer` the code and makes the atoms that checks of topology `name`
  use the first time (modules are loaded lazily, and loading one makes atoms; the keys
  of stats/1 and members/1), so that a count of atoms afterwards counts only traffic.
  """
  def warm_up(peer, name, recorder) do
    call = fn m, f, a -> :peer.call(peer, m, f, a, 30_000) end
    modules = call.(Application, :spec, [:native_gossip, :modules])
    # Also the standard library's modules that the topology's paths use (MapSet: on
    # OTP 27 / Elixir 1.18, loading it with :sets and its Enumerable implementation
    # during a count made ~115 atoms).
    stdlib = [:inet_db, :inet_parse, :inet, MapSet, :sets, Enumerable.MapSet, Protocol]
    for m <- modules ++ stdlib, do: call.(Code, :ensure_loaded, [m])
    _ = call.(Enum, :to_list, [call.(MapSet, :new, [[1]])])
    _ = {call.(NativeGossip, :stats, [name]), call.(NativeGossip, :members, [name])}
    _ = {call.(:erlang, :memory, [:total]), call.(Map, :new, [[]])}
    _ = call.(Process, :info, [call.(:erlang, :whereis, [:init]), :message_queue_len])
    _ = call.(NativeGossip.EventRecorder, :events, [recorder])
    # A failed connect loads the code of that path (some 60 atoms on OTP 25-27), as the
    # first connect attempt to a made-up name would, in the middle of a count.
    # A name of the node's own style (the other style is refused with an error log).
    made_up =
      if call.(:net_kernel, :longnames, []),
        do: :"warm-up@198.51.100.250",
        else: :"warm-up@made-up-host"

    _ = call.(:net_kernel, :connect_node, [made_up])
    :ok
  end

  @doc "Stops and starts again topology `name` on node `peer`: a new incarnation."
  def restart_topology(peer, name) do
    id = {NativeGossip, name}
    :ok = :peer.call(peer, Supervisor, :terminate_child, [NativeGossip.Supervisor, id])
    {:ok, _} = :peer.call(peer, Supervisor, :restart_child, [NativeGossip.Supervisor, id])
  end

  @doc "The nodes `n` (a map with `:peer`) is connected to, sorted."
  def nodes(n), do: n.peer |> :peer.call(Node, :list, []) |> Enum.sort()

  @doc "Waits until each of `ns` (maps with `:peer` and `:node`) is connected to all others."
  def wait_for_mesh(ns, timeout \\ 10_000) do
    all = ns |> Enum.map(& &1.node) |> Enum.sort()

    NativeGossip.TestNet.wait_until(
      fn -> Enum.all?(ns, fn n -> nodes(n) == all -- [n.node] end) end,
      timeout,
      "a full mesh of #{inspect(all)}"
    )
  end

  @doc "Takes host `i`'s link down (a partition) or back up."
  def link(%__MODULE__{} = rig, i, :down) do
    host = Enum.at(rig.hosts, i - 1)
    ip!(["-n", host.netns, "link", "set", host.veth, "down"])
  end

  def link(%__MODULE__{} = rig, i, :up), do: link_up(Enum.at(rig.hosts, i - 1))

  @doc """
  Removes host `i`'s multicast route: a multicast send from it fails (no route), while
  broadcast on its /24 still works (a network that does not route multicast).
  """
  def without_multicast_route(%__MODULE__{} = rig, i) do
    host = Enum.at(rig.hosts, i - 1)
    ip!(["-n", host.netns, "route", "del", "224.0.0.0/4"])
  end

  @doc "Drops `percent` % of the gossip datagrams arriving at host `i` (nftables), at random."
  def loss(%__MODULE__{} = rig, i, percent, port \\ 45_892) do
    host = Enum.at(rig.hosts, i - 1)
    nft = fn args -> cmd!("ip", ["netns", "exec", host.netns, "nft" | args]) end

    System.cmd("ip", ["netns", "exec", host.netns, "nft", "delete", "table", "inet", "ngloss"],
      stderr_to_stdout: true
    )

    nft.(["add", "table", "inet", "ngloss"])
    nft.(["add", "chain", "inet", "ngloss", "in", "{ type filter hook input priority 0; }"])

    # (nft takes "< 100" as out of range: all of it is a plain drop.)
    cond do
      percent >= 100 ->
        nft.(~w(add rule inet ngloss in udp dport #{port} counter drop))

      percent > 0 ->
        nft.(
          ~w(add rule inet ngloss in udp dport #{port} numgen random mod 100 < #{percent} counter drop)
        )

      true ->
        :ok
    end
  end

  @doc """
  Drops every gossip datagram arriving at host `i` from host `from` (nftables): a path
  that carries TCP but not that host's heartbeats. Undone by `loss(rig, i, 0)`.
  """
  def drop_from(%__MODULE__{} = rig, i, from) do
    host = Enum.at(rig.hosts, i - 1)
    source = rig.hosts |> Enum.at(from - 1) |> Map.fetch!(:address) |> :inet.ntoa()
    loss(rig, i, 0)

    cmd!("ip", [
      "netns",
      "exec",
      host.netns,
      "nft" | ~w(add rule inet ngloss in ip saddr #{source} udp dport 45892 counter drop)
    ])
  end

  @doc "Datagrams the loss rule of host `i` dropped so far."
  def dropped(%__MODULE__{} = rig, i) do
    host = Enum.at(rig.hosts, i - 1)

    {out, 0} =
      System.cmd("ip", ["netns", "exec", host.netns, "nft", "list", "table", "inet", "ngloss"])

    [_, n] = Regex.run(~r/counter packets (\d+)/, out)
    String.to_integer(n)
  end

  @doc """
  Runs native-gossip-probe on host `i` (built by `make test`; see
  native/native_gossip_probe). Returns the number of datagrams it reports sent.
  """
  def probe!(%__MODULE__{} = rig, i, args) do
    host = Enum.at(rig.hosts, i - 1)
    path = Path.expand("target/release/native-gossip-probe")

    unless File.exists?(path),
      do: raise("#{path} is missing: build it with cargo build --release -p native_gossip_probe")

    case System.cmd("ip", ["netns", "exec", host.netns, path | args], stderr_to_stdout: true) do
      {out, 0} ->
        [_, n] = Regex.run(~r/sent (\d+) /, out)
        String.to_integer(n)

      {out, status} ->
        raise "native-gossip-probe #{Enum.join(args, " ")} failed (#{status}): #{out}"
    end
  end

  @doc """
  `NativeGossip.start_link(opts)` from a process that traps exits, for `:peer.call/4`: a
  start that fails exits its linked caller (OTP's start_link), and since OTP 26 that
  kills the process `:peer.call` runs in (the call then returns `:badarg`).
  """
  def start_link_trapping(opts) do
    Process.flag(:trap_exit, true)
    NativeGossip.start_link(opts)
  end

  @doc "Runs native-gossip-probe in host `i` with `args`; returns its output (it must succeed)."
  def probe_output!(%__MODULE__{} = rig, i, args) do
    host = Enum.at(rig.hosts, i - 1)
    path = Path.expand("target/release/native-gossip-probe")

    case System.cmd("ip", ["netns", "exec", host.netns, path | args], stderr_to_stdout: true) do
      {out, 0} ->
        out

      {out, status} ->
        raise "native-gossip-probe #{Enum.join(args, " ")} failed (#{status}): #{out}"
    end
  end

  @doc """
  Adds `n` more addresses to host `i`'s interface, 198.51.100.<first> onwards (a host
  that sends from many source addresses). Returns the first one as a string.
  """
  def add_addresses(%__MODULE__{} = rig, i, first, n) when first + n <= 254 do
    host = Enum.at(rig.hosts, i - 1)

    for k <- first..(first + n - 1),
        do: ip!(["-n", host.netns, "addr", "add", "198.51.100.#{k}/24", "dev", host.veth])

    "198.51.100.#{first}"
  end

  @doc """
  Gives host `i` a second interface, on segment `segment`'s bridge (a rig made with
  `split:`), with the address `<segment>.<100 + i>`. Its multicast route stays on its
  first interface. Returns `{interface name, address}`.
  """
  def add_leg(%__MODULE__{router: router} = rig, i, segment) when router != nil do
    host = Enum.at(rig.hosts, i - 1)
    seg = Enum.at(@segments, segment)
    leg = "#{rig.id}l#{i}"
    plug(rig, host.netns, leg, "#{rig.id}m#{i}", seg.bridge)
    address = "#{seg.v4}.#{100 + i}"
    ip!(["-n", host.netns, "addr", "add", "#{address}/24", "dev", leg])
    ip!(["-n", host.netns, "link", "set", leg, "up"])
    {leg, address}
  end

  @doc "Deletes host `i`'s interface (an interface removed at run time)."
  def remove_link(%__MODULE__{} = rig, i) do
    host = Enum.at(rig.hosts, i - 1)
    ip!(["-n", host.netns, "link", "del", host.veth])
  end

  @doc "Kills a node's OS process with SIGKILL (no goodbye, no clean-up)."
  def kill(peer) do
    pid = :peer.call(peer, :os, :getpid, [])
    cmd!("kill", ["-9", to_string(pid)])
  end

  @doc "Removes every namespace, link and process the rig made. Idempotent."
  def stop(%__MODULE__{} = rig) do
    for ns <- [rig.bridge | Enum.map(rig.hosts, & &1.netns)] ++ List.wrap(rig.router) do
      {pids, _} = System.cmd("ip", ["netns", "pids", ns], stderr_to_stdout: true)

      for pid <- String.split(pids), Integer.parse(pid) != :error do
        System.cmd("kill", ["-9", pid], stderr_to_stdout: true)
      end

      # Deleting a host namespace deletes its end of the veth, and with it the other end.
      System.cmd("ip", ["netns", "del", ns], stderr_to_stdout: true)
    end

    :ok
  end

  defp ip!(args), do: cmd!("ip", args)

  defp cmd!(cmd, args) do
    case System.cmd(cmd, args, stderr_to_stdout: true) do
      {_, 0} -> :ok
      {out, status} -> raise "#{cmd} #{Enum.join(args, " ")} failed (#{status}): #{out}"
    end
  end
end
