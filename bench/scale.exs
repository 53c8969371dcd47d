# Scale of the peer table: 10,000 distinct authenticated peers, simulated by
# native-gossip-probe (`send --kind peers`: valid signed heartbeats from PEERS made-up
# nodes, each heartbeating in turn at the default 1500 ms interval), heard by one node
# running NativeGossip. Measured on that node:
#
# - native memory per peer: growth of the OS process's resident memory (VmRSS) minus
#   the growth of the BEAM's own allocations (`:erlang.memory(:total)`), divided by the
#   number of peers;
# - BEAM memory per peer: growth of `:erlang.memory(:total)` (atoms included), divided
#   by the number of peers;
# - in steady state (from WAIT s after every peer is in the table, for WINDOW s): the
#   heartbeats the node received per second (its `received` counter) and the messages
#   into the BEAM per second (its `events` counter).
#
# The made-up peers (`peer<i>@probe`) have short names and the measured node a long
# one, so they can never be connected: each is reported once, then held for the
# connect backoff's longest gap (30 s) before it is reported again. The window spans
# two such gaps, and the target is that bound: at most one message per peer per 30 s,
# whatever the heartbeat rate. A real peer is connected at its first report and from
# then on costs no message at all.
#
# Run with `make bench` (root; inside a private network namespace).

alias NativeGossip.{TestNet, TestRig}

peers = String.to_integer(System.get_env("PEERS", "10000"))
wait_s = String.to_integer(System.get_env("WAIT", "5"))
window_s = String.to_integer(System.get_env("WINDOW", "60"))
# The connect backoff's longest gap (NativeGossip.Connector), between two reports of a
# peer that cannot be connected.
hold_s = 30
secret = "scale-benchmark-secret-0123"
interval = 1_500
rate = div(peers * 1000, interval)
rig = TestRig.start!(2)

try do
  topology = [
    name: :lan,
    secret: secret,
    max_peers: peers * 2,
    log_interval: 3_600_000
  ]

  {m, _} = TestRig.start_node!(rig, 1, name: "measured")

  {:ok, _} =
    :peer.call(m, Supervisor, :start_child, [NativeGossip.Supervisor, {NativeGossip, topology}])

  os_pid = :peer.call(m, :os, :getpid, [])

  rss = fn ->
    [_, kb] = Regex.run(~r/VmRSS:\s+(\d+) kB/, File.read!("/proc/#{os_pid}/status"))
    String.to_integer(kb) * 1024
  end

  beam = fn -> :peer.call(m, :erlang, :memory, [:total]) end
  stats = fn -> :peer.call(m, NativeGossip, :stats, [:lan]) end

  :peer.call(m, :erlang, :garbage_collect, [])
  Process.sleep(1_000)
  {rss0, beam0} = {rss.(), beam.()}
  # Sending lasts until the window has closed: discovery (a few seconds), the wait,
  # the window, and a margin.
  duration = wait_s + window_s + 15

  flood =
    Task.async(fn ->
      TestRig.probe!(
        rig,
        2,
        ~w(send --kind peers --peers #{peers} --rate #{rate} --duration #{duration} --secret #{secret})
      )
    end)

  discovered_at =
    TestNet.wait_until(
      fn -> stats.().peers >= peers and System.monotonic_time(:millisecond) end,
      30_000,
      "all peers"
    )

  # Steady state: let the first round of reports pass, then count over the window.
  Process.sleep(wait_s * 1_000)
  s0 = stats.()
  t0 = System.monotonic_time(:millisecond)
  Process.sleep(window_s * 1_000)
  s1 = stats.()
  window = (System.monotonic_time(:millisecond) - t0) / 1_000
  :peer.call(m, :erlang, :garbage_collect, [])
  {rss1, beam1} = {rss.(), beam.()}
  sent = Task.await(flood, (duration + 60) * 1_000)
  s = stats.()
  _ = discovered_at
  received_rate = (s1.received - s0.received) / window
  message_rate = (s1.events - s0.events) / window
  bound = peers / hold_s

  per = fn bytes -> round(bytes / peers) end

  IO.puts("""
  Peer table at #{peers} authenticated peers (#{sent} heartbeats sent at #{rate}/s for #{duration} s; steady state counted over #{Float.round(window, 1)} s, from #{wait_s} s after all #{peers} were in the table)

  | measure | value |
  |---|---|
  | peers in the table | #{s.peers} |
  | whole OS process per peer (VmRSS growth) | #{per.(rss1 - rss0)} bytes |
  | BEAM memory allocated per peer (:erlang.memory(:total) growth) | #{per.(beam1 - beam0)} bytes |
  | heartbeats received per second, steady state | #{Float.round(received_rate, 1)} |
  | messages into the BEAM per second, steady state | #{Float.round(message_rate, 1)} |
  | messages into the BEAM per 1000 heartbeats received | #{Float.round(1000 * message_rate / max(received_rate, 1), 2)} |
  | dropped | #{inspect(Map.reject(s.dropped, fn {_, n} -> n == 0 end))} |

  Against the targets:
  #{NativeGossip.BenchNetwork.verdicts([{"under 1 KB per peer, native and BEAM together (bytes)", per.(rss1 - rss0), 1024}, {"heartbeats received per second: at least 95 % of those sent (#{rate}/s)", Float.round(received_rate, 1), {:at_least, 0.95 * rate}}, {"messages into the BEAM per second: at most one per peer per #{hold_s} s (#{Float.round(bound, 1)}/s, + 5 %)", Float.round(message_rate, 1), 1.05 * bound}])}
  """)
after
  TestRig.stop(rig)
end
