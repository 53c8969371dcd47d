# Behaviour on a real (virtual) network, across test hosts (NativeGossip.TestRig):
#
#   1. join under 10 % and 30 % loss: a new node joins a running 3-node cluster, every
#      host dropping that share of incoming gossip at random (nftables); 20 joins each;
#   2. partition: a host's link goes down for 10 s: time until its peers report it
#      :lost, and, after the link is back, until they report it :connected again;
#   3. leave: a node stops its topology; time until its peers report it :left.
#
# Times are wall-clock (all nodes run on this machine, one clock), taken where the
# event happens: the recorder on each node stamps each event as it arrives. Default
# heartbeat interval (1500 ms) unless said otherwise.
#
# Run with `make bench` (root; inside a private network namespace).

alias NativeGossip.{EventRecorder, TestNet, TestRig}
# Helpers: test/support/bench_network.ex

import NativeGossip.BenchNetwork
trials = String.to_integer(System.get_env("TRIALS", "20"))
partitions = String.to_integer(System.get_env("PARTITIONS", "5"))

# 1. Join under 10 % and 30 % loss.
join_under = fn loss ->
  (fn ->
     rig = TestRig.start!(4)

     try do
       for i <- 1..4, do: TestRig.loss(rig, i, loss)
       topology = [name: :lan, secret: "bench-benchmark-secret-0123"]
       old = start_nodes(rig, 1..3, topology)
       wait_mesh(old)
       {peer, node} = TestRig.start_node!(rig, 4)
       id = {NativeGossip, :lan}

       for _ <- 1..trials do
         {t0, rec} = :peer.call(peer, EventRecorder, :start_topology, [topology])
         new = %{peer: peer, node: node, recorder: rec}
         # Connected: distribution's nodeup for every old node (whoever connected).
         up = Enum.map(old, &event_after(new, :nodeup, &1.node, t0))
         # Heard: the new node's own table holds every old node.
         heard = Enum.map(old, &event_after(new, :discovered, &1.node, t0))
         :ok = :peer.call(peer, EventRecorder, :stop, [rec])
         :ok = :peer.call(peer, Supervisor, :terminate_child, [NativeGossip.Supervisor, id])
         :ok = :peer.call(peer, Supervisor, :delete_child, [NativeGossip.Supervisor, id])
         Process.sleep(200)
         :peer.call(peer, Enum, :each, [Enum.map(old, & &1.node), &:erlang.disconnect_node/1])
         TestNet.wait_until(fn -> Enum.all?(old, &(node not in nodes(&1))) end, 10_000, "apart")
         {(Enum.max(up) - t0) / 1000, (Enum.max(heard) - t0) / 1000}
       end
     after
       TestRig.stop(rig)
     end
   end).()
end

joins10 = join_under.(10)
joins = join_under.(30)

# 2. Partition and heal; 3. leave.
{lost, rejoin, left} =
  (fn ->
     rig = TestRig.start!(3)

     try do
       [a, b, c] = ns = start_nodes(rig, 1..3, name: :lan, secret: "bench-benchmark-secret-0123")
       wait_mesh(ns)

       partition =
         for _ <- 1..partitions do
           # At a random point of c's heartbeat cycle, and not during a joining burst
           # (c re-joins with one after each heal).
           Process.sleep(2_000 + :rand.uniform(1_500))
           TestRig.link(rig, 3, :down)
           cut = now()
           lost = Enum.map([a, b], &event_after(&1, :lost, c.node, cut))
           Process.sleep(max(0, 10_000 - div(now() - cut, 1000)))
           TestRig.link(rig, 3, :up)
           healed = now()
           back = Enum.map([a, b], &event_after(&1, :connected, c.node, healed))
           wait_mesh(ns)
           {Enum.map(lost, &((&1 - cut) / 1000)), Enum.map(back, &((&1 - healed) / 1000))}
         end

       id = {NativeGossip, :lan}

       left =
         for _ <- 1..trials do
           stop = now()
           :ok = :peer.call(c.peer, Supervisor, :terminate_child, [NativeGossip.Supervisor, id])
           at = Enum.map([a, b], &event_after(&1, :left, c.node, stop))

           {:ok, _} =
             :peer.call(c.peer, Supervisor, :restart_child, [NativeGossip.Supervisor, id])

           Enum.each([a, b], &event_after(&1, :discovered, c.node, stop))
           Enum.map(at, &((&1 - stop) / 1000))
         end

       {Enum.flat_map(partition, &elem(&1, 0)), Enum.flat_map(partition, &elem(&1, 1)),
        List.flatten(left)}
     after
       TestRig.stop(rig)
     end
   end).()

IO.puts("""
Behaviour across test hosts (ms; default heartbeat interval 1500 ms)

| measure | samples | median | p10 | p90 | min | max |
|---|---|---|---|---|---|---|
#{row("join under 10 % loss: start_link until connected to all 3 peers", Enum.map(joins10, &elem(&1, 0)))}
#{row("join under 10 % loss: start_link until all 3 peers heard", Enum.map(joins10, &elem(&1, 1)))}
#{row("join under 30 % loss: start_link until connected to all 3 peers", Enum.map(joins, &elem(&1, 0)))}
#{row("join under 30 % loss: start_link until all 3 peers heard", Enum.map(joins, &elem(&1, 1)))}
#{row("partition: link down until peers report :lost", lost)}
#{row("heal: link up until peers report :connected", rejoin)}
#{row("leave: topology stop until peers report :left", left)}

Against the targets:
#{verdicts([{"join under 10 % loss, connected to every peer: p90 under 200 ms", stats(Enum.map(joins10, &elem(&1, 0))).p90, 200}, {"join under 30 % loss, connected to every peer: p90 under 200 ms", stats(Enum.map(joins, &elem(&1, 0))).p90, 200}, {":lost within lost_after + probe_timeout (4800 ms) of the cut (published with :dead): max", stats(lost).max, 4800}, {"connected again within 2 intervals (3000 ms) of the link's return: max", stats(rejoin).max, 3000}, {":left within 100 ms: max", stats(left).max, 100}])}
""")
