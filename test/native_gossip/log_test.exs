defmodule NativeGossip.LogTest do
  # What a node at log level :info says about its cluster: one line when its topology
  # connects its first peer and one when it loses its last, nothing per peer or packet.
  use ExUnit.Case, async: false

  import ExUnit.CaptureLog
  import NativeGossip.TestNet
  alias NativeGossip.TestPeers

  test "info lines for the first peer connected and the last one gone, none per peer" do
    port = unique_port()
    Logger.configure(level: :info)
    on_exit(fn -> Logger.configure(level: :warning) end)
    opts = [name: :logged, port: port, secret: "log-test-secret-0123456789"]

    {peers, log} =
      with_log(fn ->
        {:ok, _} = NativeGossip.start_link(opts)

        peers =
          for name <- [:log_a, :log_b] do
            {peer, node} = TestPeers.start!(name)
            {:ok, _} = TestPeers.start_topology(peer, Keyword.put(opts, :name, :peer_topology))
            {peer, node}
          end

        wait_until(fn -> Enum.sort(Node.list()) == Enum.sort(Enum.map(peers, &elem(&1, 1))) end)
        Enum.each(peers, fn {p, _} -> TestPeers.stop(p) end)
        wait_until(fn -> Node.list() == [] end)
        Process.sleep(100)
        peers
      end)

    [{_, first} | _] = peers
    assert length(Regex.scan(~r/connected to its first peer/, log)) == 1

    assert log =~
             ~r/topology :logged connected to its first peer, (#{first}|#{elem(List.last(peers), 1)})/

    assert length(Regex.scan(~r/has no connected peer any more/, log)) == 1
    # The second peer's connection and the first one's loss say nothing at :info.
    refute log =~ "[debug]"
    GenServer.stop(NativeGossip.Topology.server!(:logged))
  end
end
