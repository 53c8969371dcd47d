defmodule NativeGossip.Doctor.Reach do
  @moduledoc false
  # Whether each node heard can be connected to from here: its name resolves, and its
  # distribution port (through epmd, or as its heartbeats say) accepts a connection.

  import NativeGossip.Doctor.Report

  # As a topology with :resolve_short_names does: each short host name heard is mapped,
  # in this VM only, to the address its heartbeats come from (the first node heard of
  # a host claims it).
  def map_short_hosts(nodes) do
    Enum.reduce(nodes, NativeGossip.ShortNames.new(node()), fn {name, ip, _}, names ->
      if NativeGossip.NodeName.connectable?(name),
        do: NativeGossip.ShortNames.learn(names, String.to_atom(name), ip),
        else: names
    end)
  end

  def check_node(name, ip, dist_port, s) do
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

  def epmd_less?, do: :net_kernel.epmd_module() == NativeGossip.EPMD

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
