defmodule NativeGossip.AwaitMembersTest do
  # Issue #23: each waiter of await_members/3 rescanned every peer on every batch of
  # events (waiters x peers), which a sender cycling names through a full table turned
  # into topology-server CPU. Now each event moves each waiter's count by what changed.
  use ExUnit.Case, async: false

  import NativeGossip.TestNet
  alias NativeGossip.HeartbeatPacket

  @secret "await-members-secret-0123456789"

  # Never connects (a connect attempt per peer would dominate the cost): :connect_if
  # is called as Kernel.==(node, tags), which is false.
  @never {Kernel, :==, []}

  test "an event costs the topology server the same with 2,000 peers as with 20, with 50 waiters" do
    port = unique_port()

    start_supervised!(
      {NativeGossip,
       name: :aw,
       port: port,
       secret: @secret,
       connect_if: @never,
       max_peers: 10_000,
       log_interval: 3_600_000}
    )

    server = NativeGossip.Topology.server!(:aw)
    socket = HeartbeatPacket.sender()
    name = fn i -> "w#{i}@127.0.0.#{rem(i, 200) + 2}" end

    send_peer = fn i ->
      HeartbeatPacket.send(socket, port, HeartbeatPacket.build(name.(i), secret: @secret))
    end

    waiters =
      for _ <- 1..50,
          do: Task.async(fn -> NativeGossip.await_members(:aw, 1_000_000, :infinity) end)

    wait_until(fn -> length(:sys.get_state(server).waiters) == 50 end)

    known? = fn i ->
      Map.has_key?(:sys.get_state(server).connector.status, String.to_atom(name.(i)))
    end

    fill = fn range ->
      Enum.each(range, send_peer)
      wait_until(fn -> known?.(range.last) and NativeGossip.stats(:aw).peers >= range.last end)
    end

    # The server's reductions for one new peer's event, the least of five.
    cost = fn from ->
      for i <- from..(from + 4) do
        Process.sleep(20)
        {:reductions, r0} = Process.info(server, :reductions)
        send_peer.(i)
        Process.sleep(50)
        wait_until(fn -> known?.(i) end)
        {:reductions, r1} = Process.info(server, :reductions)
        r1 - r0
      end
      |> Enum.min()
    end

    fill.(1..20)
    small = cost.(100_001)
    fill.(21..2_000)
    large = cost.(100_011)
    # Before, each event cost 50 waiters x 2,000 peers in the scan alone.
    assert large < small * 3, "#{small} reductions with 20 peers, #{large} with 2,000"

    for t <- waiters, do: Task.shutdown(t, :brutal_kill)
  end
end
