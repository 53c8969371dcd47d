# What one topology costs its VM on a quiet machine (a diagnostic beside
# bench/formation_cpu.exs, not part of `make bench`): how long starting a topology
# takes (Supervisor.start_child/2, the first heartbeat sent inside it; 6 starts), and
# the topology server's reductions per peer for a discovery (half of them peers this
# node leads), a `nodeup` and a turn, with PEERS made-up peers replayed into the
# running server (connect attempts hang, so nothing leaves the namespace but the
# topology's own heartbeats on its loopback). A made-up peer has no entry in
# net_kernel's table of connections, so its `nodeup` asks net_kernel for the
# connection's address (a real one reads the table): a few reductions more, and its
# time here is mostly that call's wait, which is why only reductions are printed.
# Needs a distributed node and epmd:
#
#   MIX_ENV=test test/support/private_net.sh bash -c \
#     'epmd -daemon; sleep 0.3; mix run --no-compile --no-start bench/server_cost.exs'

defmodule Bench.ServerCost do
  @moduledoc false
  # The topology's connect function: an attempt that never ends (and sends nothing).
  def hang(_node), do: Process.sleep(:infinity)
end

Logger.configure(level: :info)
{:ok, _} = Node.start(:"a@127.0.0.1", :longnames)
{:ok, _} = Application.ensure_all_started(:native_gossip)

topology = [
  name: :lan,
  secret: "formation-benchmark-secret-0123",
  connect: {Bench.ServerCost, :hang, []}
]

id = {NativeGossip, :lan}

starts =
  for _ <- 1..6 do
    {us, {:ok, _}} =
      :timer.tc(fn ->
        Supervisor.start_child(NativeGossip.Supervisor, {NativeGossip, topology})
      end)

    Process.sleep(100)
    :ok = Supervisor.terminate_child(NativeGossip.Supervisor, id)
    :ok = Supervisor.delete_child(NativeGossip.Supervisor, id)
    us
  end

IO.puts("start_child: #{Enum.map_join(starts, ", ", &"#{&1} µs")}")

{:ok, _} = Supervisor.start_child(NativeGossip.Supervisor, {NativeGossip, topology})
pid = NativeGossip.Topology.server!(:lan)
n = String.to_integer(System.get_env("PEERS", "31"))
names = for i <- 1..n, do: "p#{i}@10.0.#{div(i, 200)}.#{rem(i, 200) + 1}"

report = fn name, lead ->
  %{
    kind: :discovered,
    name: name,
    address: {{10, 0, 0, 9}, 45892},
    incarnation: 1,
    lead: lead,
    tags: %{},
    dist_port: 40000,
    proven: true,
    held: 0
  }
end

reductions = fn -> pid |> Process.info(:reductions) |> elem(1) end

measure = fn label, f ->
  r0 = reductions.()
  f.()
  # Everything sent has been handled once the server answers.
  _ = :sys.get_state(pid)
  IO.puts("#{label}: #{div(reductions.() - r0, n)} reductions per peer")
end

measure.("discovered (half led)", fn ->
  for {name, i} <- Enum.with_index(names) do
    :sys.replace_state(
      pid,
      &NativeGossip.Topology.Report.apply(report.(name, rem(i, 2) == 0), &1)
    )
  end
end)

measure.("nodeup", fn -> for name <- names, do: send(pid, {:nodeup, String.to_atom(name), []}) end)

measure.("turn", fn ->
  for name <- names, do: send(pid, {:native_gossip_turn, String.to_atom(name)})
end)
