# Failure detection (issue #26): how long a node that vanishes stays in the cluster.
#
# Four hosts on a bridge, one node each, in a mesh (a topology with a secret). A
# trial cuts host 4's link (ip link set down: no reset reaches anyone) and measures,
# on each of the three survivors, the time from the cut to distribution's :nodedown
# for node 4 (wall-clock, one machine, stamped where it happens by a recorder on each
# node); then the link comes back and the next trial waits for the mesh. Series:
#
#   - NativeGossip's failure detection, defaults (heartbeat 1500 ms: lost after 4.5 s);
#   - the same at a heartbeat interval of 500 ms (lost after 1.5 s);
#   - detection off, the BEAM alone: net_ticktime at its default (60 s) and at 10 s.
#
# Then false disconnects: the fault matrix of NativeGossip.FaultMatrix (faults that
# leave the distribution connection working), each kept FAULT_SECONDS on three nodes
# with detection on, counting every :nodedown.
#
#   TRIALS=7 FAULT_SECONDS=30 mix run --no-start bench/failover.exs   (make bench)
#   SERIES=on,on500,off10 to run some series only (off60 takes about 8 min).

alias NativeGossip.{EventRecorder, FaultMatrix, TestNet, TestRig}
import NativeGossip.BenchNetwork, only: [now: 0, row: 2, wait_mesh: 1]

trials = String.to_integer(System.get_env("TRIALS", "7"))
fault_seconds = String.to_integer(System.get_env("FAULT_SECONDS", "30"))
series = String.split(System.get_env("SERIES", "on,on500,off60,off10"), ",")
secret = "bench-failover-secret-0123"

# When survivor `n` saw :nodedown of `node` after `since` (µs), waiting up to `timeout`.
down_at = fn n, node, since, timeout ->
  TestNet.wait_until(
    fn ->
      :peer.call(n.peer, EventRecorder, :events, [n.recorder])
      |> Enum.find_value(fn {e, x, at} -> e == :nodedown and x == node and at > since and at end)
    end,
    timeout,
    ":nodedown of #{node} at #{n.node}"
  )
end

# Each node has heard every other one (a node can be connected by a peer before it has
# heard it; one never heard is never reported lost).
wait_heard = fn ns ->
  for n <- ns do
    others = Enum.sort(for m <- ns, m != n, do: m.node)

    TestNet.wait_until(
      fn ->
        heard =
          for m <- :peer.call(n.peer, NativeGossip, :members, [:lan]),
              m.state == :alive,
              do: m.node

        Enum.sort(heard) == others
      end,
      10_000,
      "#{n.node} to hear every other node"
    )
  end
end

# One series: a rig of four hosts with `topology` and the VM arguments `erl`.
measure = fn label, topology, erl, timeout ->
  rig = TestRig.start!(4)

  try do
    ns =
      for i <- 1..4 do
        {peer, node} = TestRig.start_node!(rig, i, erl_args: erl)
        # Quiet: net_kernel's "not responding" reports would land in the output.
        :ok = :peer.call(peer, :logger, :set_primary_config, [:level, :none])
        {_t0, rec} = :peer.call(peer, EventRecorder, :start_topology, [topology])
        %{i: i, peer: peer, node: node, recorder: rec}
      end

    [a, b, c, d] = ns
    heard = fn -> wait_heard.(ns) end
    wait_mesh(ns)
    heard.()

    times =
      for _ <- 1..trials do
        cut = now()
        TestRig.link(rig, 4, :down)
        took = for n <- [a, b, c], do: (down_at.(n, d.node, cut, timeout) - cut) / 1000
        TestRig.link(rig, 4, :up)
        wait_mesh(ns)
        heard.()
        took
      end

    row(label, List.flatten(times))
  after
    TestRig.stop(rig)
  end
end

rows =
  for s <- series do
    case s do
      "on" ->
        measure.(
          "NativeGossip detection, heartbeat 1500 ms (lost after 4.5 s)",
          [name: :lan, secret: secret],
          [],
          30_000
        )

      "on500" ->
        measure.(
          "NativeGossip detection, heartbeat 500 ms (lost after 1.5 s)",
          [name: :lan, secret: secret, heartbeat_interval: 500],
          [],
          30_000
        )

      "off60" ->
        measure.(
          "detection off: the BEAM's net_ticktime 60 s (default)",
          [name: :lan, secret: secret, failure_detection: false],
          [],
          120_000
        )

      "off10" ->
        measure.(
          "detection off: net_ticktime 10 s",
          [name: :lan, secret: secret, failure_detection: false],
          [~c"-kernel", ~c"net_ticktime", ~c"10"],
          60_000
        )
    end
  end

IO.puts(
  "Time from a host's link cut to :nodedown on each of 3 survivors (ms), #{trials} trials\n"
)

IO.puts("| series | n | median | p10 | p90 | min | max |")
IO.puts("|---|---|---|---|---|---|---|")
Enum.each(rows, &IO.puts/1)

# False disconnects under the fault matrix.
rig = TestRig.start!(3)

{disconnects, seconds} =
  try do
    ns =
      for i <- 1..3 do
        {peer, node} = TestRig.start_node!(rig, i)
        :ok = :peer.call(peer, :logger, :set_primary_config, [:level, :none])
        topology = [name: :lan, secret: secret, heartbeat_interval: 500]
        {_t0, rec} = :peer.call(peer, EventRecorder, :start_topology, [topology])
        %{i: i, peer: peer, node: node, recorder: rec}
      end

    wait_mesh(ns)
    wait_heard.(ns)
    t0 = System.monotonic_time(:millisecond)

    for {name, make, undo} <- FaultMatrix.faults(rig, ns) do
      make.()
      Process.sleep(fault_seconds * 1000)
      undo.()
      IO.puts(:stderr, "fault done: #{name}")
    end

    downs =
      for n <- ns,
          {:nodedown, _, _} <- :peer.call(n.peer, EventRecorder, :events, [n.recorder]),
          do: 1

    {length(downs), (System.monotonic_time(:millisecond) - t0) / 1000}
  after
    TestRig.stop(rig)
  end

IO.puts(
  "\nFalse disconnects under the fault matrix (6 faults, #{fault_seconds} s each, 3 nodes, " <>
    "heartbeat 500 ms): #{disconnects} :nodedown in #{round(seconds)} s " <>
    "(#{Float.round(disconnects * 3600 / seconds, 1)} per hour)."
)
