# Two BEAM nodes on one machine join with NativeGossip: what the macOS jobs of
# .github/workflows/ci.yml run (`make loopback-join`), and `make test` runs on Linux
# inside a private network namespace. Each node is an OS process (:peer, -connect_all
# false, so NativeGossip makes the connection). Heartbeats go out of the interface
# whose address is JOIN_IF (default 127.0.0.1, loopback) with a multicast TTL of 0, so
# none leaves the machine. Exits 0 once each node is connected to the other, 1 after
# 15 s.
#
#   MIX_ENV=test mix run --no-start .ci/loopback-join.exs

alias NativeGossip.TestPeers

{:ok, if_addr} = :inet.parse_address(String.to_charlist(System.get_env("JOIN_IF", "127.0.0.1")))

opts = [
  name: :join,
  secret: "loopback-join",
  multicast_if: if_addr,
  multicast_ttl: 0,
  heartbeat_interval: 200
]

nodes =
  for name <- [:join_a, :join_b] do
    {peer, node} = TestPeers.start!(name)
    {:ok, _} = TestPeers.start_topology(peer, opts)
    {peer, node}
  end

[{pa, a}, {pb, b}] = nodes
deadline = System.monotonic_time(:millisecond) + 15_000

joined? = fn ->
  b in TestPeers.call(pa, Node, :list, []) and a in TestPeers.call(pb, Node, :list, [])
end

result =
  Enum.find_value(Stream.repeatedly(fn -> :tick end), fn _ ->
    cond do
      joined?.() -> :ok
      System.monotonic_time(:millisecond) > deadline -> :timeout
      true -> Process.sleep(20) && nil
    end
  end)

for {peer, _} <- nodes, do: :peer.stop(peer)

case result do
  :ok ->
    IO.puts("loopback-join: #{a} and #{b} joined over #{:inet.ntoa(if_addr)} (TTL 0)")

  :timeout ->
    IO.puts(:stderr, "loopback-join: #{a} and #{b} did not join within 15 s")
    System.halt(1)
end
