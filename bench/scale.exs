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
# - the rate of messages into the BEAM (the topology's `events` counter) while all of
#   them heartbeat, in steady state (after every peer has been discovered).
#
# The made-up peers cannot be connected (they do not exist), so they are reported as
# heard with a backoff that grows to 30 s; a real peer is connected and then costs no
# messages at all.
#
# Run with `make bench` (root; inside a private network namespace).

alias NativeGossip.{TestNet, TestRig}

peers = String.to_integer(System.get_env("PEERS", "10000"))
interval = 1_500
rate = div(peers * 1000, interval)
rig = TestRig.start!(2)

try do
  topology = [
    name: :lan,
    secret: "scale-benchmark-secret-0123",
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
  duration = 40

  flood =
    Task.async(fn ->
      TestRig.probe!(
        rig,
        2,
        ~w(send --kind peers --peers #{peers} --rate #{rate} --duration #{duration} --secret scale)
      )
    end)

  discovered_at =
    TestNet.wait_until(
      fn -> stats.().peers >= peers and System.monotonic_time(:millisecond) end,
      30_000,
      "all peers"
    )

  # Steady state: let the first round of reports pass, then count for 20 s.
  Process.sleep(5_000)
  e0 = stats.().events
  Process.sleep(20_000)
  e1 = stats.().events
  :peer.call(m, :erlang, :garbage_collect, [])
  {rss1, beam1} = {rss.(), beam.()}
  sent = Task.await(flood, 120_000)
  s = stats.()
  _ = discovered_at

  per = fn bytes -> round(bytes / peers) end

  IO.puts("""
  Peer table at #{peers} authenticated peers (#{sent} heartbeats sent at #{rate}/s for #{duration} s)

  | measure | value |
  |---|---|
  | peers in the table | #{s.peers} |
  | whole OS process per peer (VmRSS growth) | #{per.(rss1 - rss0)} bytes |
  | BEAM memory allocated per peer (:erlang.memory(:total) growth) | #{per.(beam1 - beam0)} bytes |
  | messages into the BEAM, steady state | #{Float.round((e1 - e0) / 20, 1)} per second |
  | heartbeats received per second | #{rate} |
  | dropped | #{inspect(Map.reject(s.dropped, fn {_, n} -> n == 0 end))} |

  Against the targets:
  #{NativeGossip.BenchNetwork.verdicts([{"under 1 KB per peer, native and BEAM together (bytes)", per.(rss1 - rss0), 1024}, {"messages into the BEAM per second bounded by peers per interval (#{rate}/s)", Float.round((e1 - e0) / 20, 1), rate + 1}])}
  """)
after
  TestRig.stop(rig)
end
