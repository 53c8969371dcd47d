defmodule NativeGossip.Doctor.Heartbeats do
  @moduledoc false
  # The doctor's listening check: what is heard on the group, with the verdict a
  # topology would give each datagram, and whether what this host sends is heard back.

  import NativeGossip.Doctor.Report
  alias NativeGossip.Doctor.Reach

  def open(%{broadcast: true} = s),
    do: :gen_udp.open(s.port, [:binary, active: false, reuseaddr: true, broadcast: true])

  def open(s) do
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

  def where(%{broadcast: true}), do: "broadcasts"
  def where(s), do: :inet.ntoa(s.group)

  def heartbeats(s) do
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
        do: Reach.map_short_hosts(checked)

    checks =
      Enum.flat_map(checked, fn {name, ip, dist_port} ->
        Reach.check_node(name, ip, dist_port, s)
      end)

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
end
