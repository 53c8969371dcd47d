# Attacks over time (issue #14): what each costs the node it aims at. For each, a node
# with NativeGossip on host 1 (the victim), a legitimate node on host 3, and
# native-gossip-probe on host 2 sending the attack. Measured on the victim from just
# before the attack to 2 s after it: atoms made, peer events that reached the BEAM
# (the topology server's work: one per event taken from the native side), the largest
# mailbox of the topology server (sampled every 100 ms), and, 1 s into the attack,
# how long the legitimate node takes to be connected again after its topology is
# restarted (a new incarnation, as after a deploy).
#
# Then (issue #23) a node used as a reflector: see Bench.Reflect.
#
# Run with `make bench` (root; inside a private network namespace).

alias NativeGossip.{EventRecorder, TestNet, TestRig}

defmodule Bench.Attacks do
  def run(label, attack, opts) do
    rig = TestRig.start!(3)

    try do
      topology = [name: :lan, heartbeat_interval: 500, log_interval: 3_600_000] ++ opts[:topology]
      node_opts = Keyword.get(opts, :node, [])
      {v, _v_node} = TestRig.start_node!(rig, 1, node_opts)
      {l, l_node} = TestRig.start_node!(rig, 3, node_opts)
      {_, v_rec} = :peer.call(v, EventRecorder, :start_topology, [topology])
      {_, _} = :peer.call(l, EventRecorder, :start_topology, [topology])
      TestNet.wait_until(fn -> :peer.call(v, Node, :list, []) == [l_node] end, 10_000)
      server = :peer.call(v, NativeGossip.Topology, :server!, [:lan])
      if opts[:setup], do: opts[:setup].(rig)
      ctx = %{rig: rig, v: v, l: l, l_node: l_node, v_rec: v_rec}
      warm_up(v, ctx)

      atoms = :peer.call(v, :erlang, :system_info, [:atom_count])
      before = :peer.call(v, NativeGossip, :stats, [:lan])
      args = attack.(l_node)
      probe = Task.async(fn -> TestRig.probe!(rig, 2, args) end)
      side = Task.async(fn -> opts[:during].(ctx) end)
      seconds = opts[:seconds]

      mailbox =
        for _ <- 1..((seconds + 2) * 10), reduce: 0 do
          max ->
            Process.sleep(100)
            {:message_queue_len, q} = :peer.call(v, Process, :info, [server, :message_queue_len])
            max(max, q)
        end

      sent = Task.await(probe, 120_000)
      join = Task.await(side, 60_000)
      s = :peer.call(v, NativeGossip, :stats, [:lan])

      delivered =
        s.events - s.events_coalesced - s.events_dropped -
          (before.events - before.events_coalesced - before.events_dropped)

      dropped =
        for {r, n} <- s.dropped,
            (d = n - before.dropped[r]) > 0,
            r != :own_packet,
            do: "#{r} #{d}"

      "| #{label} | #{sent} | #{:peer.call(v, :erlang, :system_info, [:atom_count]) - atoms} | " <>
        "#{delivered} | #{mailbox} | #{join} | #{Enum.join(dropped, ", ")} |"
    after
      TestRig.stop(rig)
    end
  end

  # Code loaded and atoms made by the checks themselves, and one restart of the
  # legitimate node, before anything is counted.
  defp warm_up(v, ctx) do
    TestRig.warm_up(v, :lan, ctx.v_rec)
    rejoin(ctx)
  end

  @doc """
  Restarts the legitimate node's topology; ms until the victim has it (the new
  incarnation) connected again.
  """
  def rejoin(%{l: l, l_node: l_node, v: v, v_rec: rec}) do
    t = System.system_time(:microsecond)
    TestRig.restart_topology(l, :lan)

    at =
      TestNet.wait_until(
        fn ->
          :peer.call(v, EventRecorder, :events, [rec])
          |> Enum.find_value(fn {e, n, at} ->
            e == :connected and n == l_node and at > t and at
          end)
        end,
        20_000,
        "the legitimate node to connect"
      )

    "#{:erlang.float_to_binary((at - t) / 1000, decimals: 1)} ms"
  end
end

defmodule Bench.Reflect do
  @moduledoc false
  # Issue #23: a node used as a reflector. The node on host 1 has seeds, so it listens
  # for unicast heartbeats (and before #23 answered each new sender at once and sent
  # every heartbeat to every sender learned, with no limit per address). The probe on
  # host 2 sends unicast heartbeats of made-up names from its socket, whose address
  # stands for a spoofed victim's, and counts what comes back to it.
  alias NativeGossip.{EventRecorder, TestRig}

  def run(label, tags, seconds) do
    rig = TestRig.start!(3)

    try do
      {v, _} = TestRig.start_node!(rig, 1)
      port = 45_892
      seed = "#{:inet.ntoa(Enum.at(rig.hosts, 2).address)}:#{port}"

      topology = [
        name: :lan,
        heartbeat_interval: 500,
        tags: tags,
        seeds: [seed],
        log_interval: 3_600_000
      ]

      {_, _} = :peer.call(v, EventRecorder, :start_topology, [topology])
      target = "#{:inet.ntoa(Enum.at(rig.hosts, 0).address)}:#{port}"

      out =
        TestRig.probe_output!(
          rig,
          2,
          ~w(send --kind peers --peers 300 --target #{target} --rate 250 --duration #{seconds})
        )

      [_, sent, received, datagrams] =
        Regex.run(~r/sent (\d+) bytes, received (\d+) bytes in (\d+) datagrams/, out)

      [sent, received, datagrams] = Enum.map([sent, received, datagrams], &String.to_integer/1)
      ratio = :erlang.float_to_binary(received / max(sent, 1), decimals: 2)
      verdict = if received <= sent, do: "**met**", else: "**missed**"

      "| #{label} | #{sent} | #{received} (#{datagrams} datagrams) | #{ratio} | #{verdict} |"
    after
      TestRig.stop(rig)
    end
  end
end

rejoin_after = fn ms -> fn ctx -> Process.sleep(ms) && Bench.Attacks.rejoin(ctx) end end
# Seconds of each attack (bench/smoke.sh shortens it).
s = String.to_integer(System.get_env("ATTACK_SECONDS", "5"))
# The secret of the replay row, given to the probe too (it captures with it).
secret = "bench-secret-benchmark-secret-0123"

rows = [
  Bench.Attacks.run(
    "made-up names, one source, 5000/s",
    fn _ -> ~w(send --kind names --rate 5000 --duration #{s}) end,
    topology: [],
    seconds: s,
    during: rejoin_after.(1_000)
  ),
  Bench.Attacks.run(
    "made-up names from 64 sources, 200/s (`max_peers: 50`, so `max_names` 100)",
    fn _ ->
      ~w(send --kind names --sources 64 --source-base 198.51.100.100 --rate 200 --duration #{s})
    end,
    topology: [max_peers: 50],
    setup: &TestRig.add_addresses(&1, 2, 100, 64),
    seconds: s,
    during: rejoin_after.(2_000)
  ),
  Bench.Attacks.run(
    "forged goodbyes of the legitimate node, 1000/s",
    fn l -> ~w(send --kind leave --capture-name #{l} --rate 1000 --duration #{s}) end,
    topology: [],
    seconds: s,
    during: rejoin_after.(1_000)
  ),
  Bench.Attacks.run(
    "a new incarnation of one name per packet, 5000/s",
    fn _ -> ~w(send --kind incarnations --name ghost@host9 --rate 5000 --duration #{s}) end,
    topology: [],
    seconds: s,
    during: rejoin_after.(1_000)
  ),
  Bench.Attacks.run(
    "a made-up node of the legitimate node's short host, 100/s (`--sname`)",
    fn _ -> ~w(send --kind claim --name x@host3 --rate 100 --duration #{s}) end,
    topology: [],
    node: [names: :short],
    seconds: s,
    during: rejoin_after.(1_000)
  ),
  Bench.Attacks.run(
    "with a secret: its heartbeat captured, replayed 5 s later, 1000/s",
    fn l ->
      ~w(send --kind replay --capture-name #{l} --secret #{secret} --replay-after 5) ++
        ~w(--rate 1000 --duration #{s})
    end,
    topology: [
      secret: secret,
      lost_after: 1_500,
      forget_after: 3_000
    ],
    seconds: s + 5,
    during: rejoin_after.(6_000)
  )
]

tags = for i <- 1..7, into: %{}, do: {"key#{i}", String.duplicate("v", 60)}
# Seconds of each reflection row: the old code's output grew with the names it learned
# (5 a second from one source), so it is measured over a minute.
r = String.to_integer(System.get_env("REFLECT_SECONDS", "60"))

reflect = [
  Bench.Reflect.run("node without tags", %{}, r),
  Bench.Reflect.run("node with 7 tags (heartbeat ~500 bytes)", tags, r)
]

IO.puts("""
Spoofed-source unicast heartbeats (250/s for #{r} s, 300 made-up names in turn, no secret)
at a node with seeds: bytes the spoofed address received back ÷ bytes it sent (target
≤ 1; before issue #23, at commit cba2f21 with this benchmark: 1.34 without tags and 14.3
with seven, growing with every name learned):

| node | bytes sent to it | bytes sent back | ratio | ≤ 1 |
|---|---|---|---|---|
#{Enum.join(reflect, "\n")}

| attack (#{s} s, no secret unless said) | datagrams sent | atoms made | peer events into the BEAM | topology server mailbox, max | legitimate node restarted during it: connected after | dropped |
|---|---|---|---|---|---|---|
#{Enum.join(rows, "\n")}
""")
