# Flood: 100,000 datagrams/s of random junk for 10 s, sent from another test host by
# native-gossip-probe, at the group and port of a node running NativeGossip (with a
# secret) and, on the same host in a second VM, at a plain Elixir gen_udp receiver in
# active mode (NativeGossip.BaselineReceiver, the approach of the pure-Elixir
# strategies). Sampled every 100 ms on both VMs: total memory and the receiving
# process's mailbox. 3 s into the flood, a legitimate node on a third host starts a
# topology; measured: time until it is connected to the NativeGossip node. Last, the
# sender alone for 3 s, to a port nobody listens on: what it reaches without a VM to
# feed.
#
# Run with `make bench` (root; inside a private network namespace).

alias NativeGossip.{BaselineReceiver, EventRecorder, TestNet, TestRig}

rate = String.to_integer(System.get_env("FLOOD_RATE", "100000"))
seconds = String.to_integer(System.get_env("FLOOD_SECONDS", "10"))
rig = TestRig.start!(3)

defmodule Bench.Flood do
  # Floods for `seconds`, sampling `{memory, mailbox}` of `pid` on `peer` every 100 ms.
  def run(rig, rate, seconds, peer, pid, during \\ fn -> nil end) do
    sample = fn ->
      {:peer.call(peer, :erlang, :memory, [:total]),
       elem(:peer.call(peer, Process, :info, [pid, :message_queue_len]), 1)}
    end

    os_pid = :peer.call(peer, :os, :getpid, [])

    cpu = fn -> NativeGossip.BenchNetwork.cpu_ticks(os_pid) end

    {mem0, _} = sample.()
    cpu0 = cpu.()
    t0 = System.monotonic_time(:millisecond)

    flood =
      Task.async(fn ->
        TestRig.probe!(rig, 2, ~w(send --kind random --rate #{rate} --duration #{seconds}))
      end)

    side = Task.async(during)

    samples =
      Stream.repeatedly(fn ->
        Process.sleep(100)
        sample.()
      end)
      |> Enum.take_while(fn _ ->
        System.monotonic_time(:millisecond) - t0 < (seconds + 2) * 1000
      end)

    sent = Task.await(flood, 60_000)

    %{
      cpu: (cpu.() - cpu0) / 100,
      sent: sent,
      memory: (samples |> Enum.map(&elem(&1, 0)) |> Enum.max()) - mem0,
      mailbox: samples |> Enum.map(&elem(&1, 1)) |> Enum.max(),
      side: Task.await(side, 60_000)
    }
  end
end

try do
  topology = [name: :lan, secret: "flood-benchmark-secret-0123", log_interval: 3_600_000]
  {v, v_node} = TestRig.start_node!(rig, 1, name: "victim")
  {b, _} = TestRig.start_node!(rig, 1, name: "baseline")
  {l, _} = TestRig.start_node!(rig, 3, name: "legit")

  # Phase 1: NativeGossip alone receives the flood; 3 s in, a legitimate node starts.
  {_t0, _} = :peer.call(v, EventRecorder, :start_topology, [topology])
  server = :peer.call(v, NativeGossip.Topology, :server!, [:lan])
  before = :peer.call(v, NativeGossip, :stats, [:lan])

  join = fn ->
    Process.sleep(3_000)
    {t0, rec} = :peer.call(l, EventRecorder, :start_topology, [topology])

    at =
      TestNet.wait_until(
        fn ->
          :peer.call(l, EventRecorder, :events, [rec])
          |> Enum.find_value(fn {e, n, at} -> e == :nodeup and n == v_node and at end)
        end,
        20_000,
        "the legitimate node to connect"
      )

    (at - t0) / 1000
  end

  ng = Bench.Flood.run(rig, rate, seconds, v, server, join)
  v_stats = :peer.call(v, NativeGossip, :stats, [:lan])
  ng_received = v_stats.received - before.received

  :ok =
    :peer.call(v, Supervisor, :terminate_child, [NativeGossip.Supervisor, {NativeGossip, :lan}])

  :ok =
    :peer.call(l, Supervisor, :terminate_child, [NativeGossip.Supervisor, {NativeGossip, :lan}])

  # Phase 2: the Elixir baseline alone receives the same flood.
  {:ok, baseline} = :peer.call(b, BaselineReceiver, :start, [[]])
  bl = Bench.Flood.run(rig, rate, seconds, b, baseline)
  # (Its backlog is drained before it can answer.)
  bl_received = :peer.call(b, GenServer, :call, [baseline, :received, 120_000], 130_000)

  # Phase 3: the sender alone, to a port no VM listens on (its rate with nothing else
  # to do on the machine but deliver to the kernel).
  alone =
    div(
      TestRig.probe!(rig, 2, ~w(send --kind random --rate #{rate} --duration 3 --port 45999)),
      3
    )

  mb = fn bytes -> :erlang.float_to_binary(bytes / 1_000_000, decimals: 1) end

  lost = fn sent, received ->
    :erlang.float_to_binary(max(0.0, 1 - received / sent) * 100, decimals: 1)
  end

  IO.puts("""
  Flood of random datagrams for #{seconds} s from another host, at a target of #{rate}/s

  | receiver | sent (per s) | received | lost (%) | CPU of its VM (s) | memory growth, max (MB) | mailbox, max (messages) |
  |---|---|---|---|---|---|---|
  | NativeGossip (native thread, secret) | #{ng.sent} (#{div(ng.sent, seconds)}) | #{ng_received} | #{lost.(ng.sent, ng_received)} | #{ng.cpu} | #{mb.(ng.memory)} | #{ng.mailbox} |
  | gen_udp active mode (Elixir baseline) | #{bl.sent} (#{div(bl.sent, seconds)}) | #{bl_received} | #{lost.(bl.sent, bl_received)} | #{bl.cpu} | #{mb.(bl.memory)} | #{bl.mailbox} |

  The same sender alone (3 s to a port no VM listens on): #{alone} datagrams per second.
  A legitimate node started 3 s into the flood was connected #{:erlang.float_to_binary(ng.side, decimals: 1)} ms after its start.
  NativeGossip dropped: #{inspect(Map.reject(v_stats.dropped, fn {_, n} -> n == 0 end))}

  Against the targets (NativeGossip):
  #{NativeGossip.BenchNetwork.verdicts([{"flood rate reached, per second (at least #{rate})", div(ng.sent, seconds), {:at_least, rate}}, {"memory growth under 10 MB", ng.memory / 1_000_000, 10}, {"mailbox under 100 messages", ng.mailbox, 100}, {"a legitimate node connected within 1 s (ms)", ng.side, 1000}])}
  """)
after
  TestRig.stop(rig)
end
