defmodule NativeGossip.ShortNamesTest do
  # Who a short host name points to in this VM's host table, under forged claims.
  # Host names here are made up for the test and released at its end.
  use ExUnit.Case, async: false

  alias NativeGossip.ShortNames

  @a {198, 51, 100, 2}
  @b {198, 51, 100, 3}
  @evil {198, 51, 100, 66}

  defp resolves(host) do
    case :inet_hosts.gethostbyname(String.to_charlist(host)) do
      {:ok, {:hostent, _, _, :inet, 4, [ip]}} -> ip
      _ -> nil
    end
  end

  setup do
    host = "sn#{System.unique_integer([:positive])}"
    %{host: host, app: :"app@#{host}", x: :"x@#{host}"}
  end

  test "the first node claims its host; a forged name of that host cannot move it", ctx do
    t = ShortNames.new(:me@here, 60_000)
    t = ShortNames.learn(t, ctx.app, @a)
    assert resolves(ctx.host) == @a
    # Before: the latest heartbeat of any node on that host moved the whole host.
    t = ShortNames.learn(t, ctx.x, @evil)
    assert resolves(ctx.host) == @a
    # Once connected, not even a heartbeat of its own name from elsewhere moves it.
    t = ShortNames.connected(t, ctx.app)
    t = ShortNames.learn(t, ctx.app, @evil)
    assert resolves(ctx.host) == @a
    # Disconnected, it may move (a restarted node with a new address).
    t = ShortNames.disconnected(t, ctx.app)
    t = ShortNames.learn(t, ctx.app, @b)
    assert resolves(ctx.host) == @b
    t = ShortNames.release(t, ctx.app)
    assert resolves(ctx.host) == nil
    assert ShortNames.size(t) == 0
  end

  test "a claim never proven gives way to another node of the host after its time", ctx do
    t = ShortNames.new(:me@here, 0)
    # A made-up name heard first does not keep the real node out for ever.
    t = ShortNames.learn(t, ctx.x, @evil)
    assert resolves(ctx.host) == @evil
    t = ShortNames.learn(t, ctx.app, @a)
    assert resolves(ctx.host) == @a
    # The real node connects: now it keeps the host.
    t = ShortNames.connected(t, ctx.app)
    t = ShortNames.learn(t, ctx.x, @evil)
    assert resolves(ctx.host) == @a
    # The forged one's end does not unmap the real one's host.
    t = ShortNames.release(t, ctx.x)
    assert resolves(ctx.host) == @a
    ShortNames.release(t, ctx.app)
  end

  test "this node's own host and names that are not short are never mapped", ctx do
    t = ShortNames.new(:"me@#{ctx.host}")
    t = ShortNames.learn(t, ctx.x, @evil)
    t = ShortNames.learn(t, :"y@#{ctx.host}.example.com", @evil)
    t = ShortNames.learn(t, :"z@198.51.100.9", @evil)
    assert ShortNames.size(t) == 0
    assert resolves(ctx.host) == nil
  end

  test "churn leaves nothing behind, and a call costs the same at 20,000 hosts as at 100" do
    prefix = "churn#{System.unique_integer([:positive])}h"
    node = fn i -> :"n@#{prefix}#{i}" end
    ip = fn i -> {10, div(i, 65_536), rem(div(i, 256), 256), rem(i, 256)} end
    t = ShortNames.new(:me@here)
    fill = fn t, range -> Enum.reduce(range, t, &ShortNames.learn(&2, node.(&1), ip.(&1))) end

    cost = fn t, i ->
      {:reductions, r0} = Process.info(self(), :reductions)
      t = ShortNames.learn(t, node.(i), ip.(i))
      {:reductions, r1} = Process.info(self(), :reductions)
      {r1 - r0, t}
    end

    # The least of five calls at each size: a single call's count can include a garbage
    # collection (it once read 3788 against 170).
    least = fn t, from ->
      Enum.reduce(from..(from + 4), {nil, t}, fn i, {m, t} ->
        {r, t} = cost.(t, i)
        {min(m || r, r), t}
      end)
    end

    t = fill.(t, 1..100)
    {small, t} = least.(t, 100_001)
    t = fill.(t, 101..20_000)
    {large, t} = least.(t, 100_011)
    # Reductions, not time: the old code walked every host on each call (~20,000 here).
    assert large < small * 3, "#{small} reductions at 100 hosts, #{large} at 20,000"

    t =
      Enum.reduce(
        Enum.to_list(1..20_000) ++
          Enum.to_list(100_001..100_005) ++ Enum.to_list(100_011..100_015),
        t,
        &ShortNames.release(&2, node.(&1))
      )

    assert ShortNames.size(t) == 0
    assert t.hosts == %{} and t.by_address == %{}
    assert resolves("#{prefix}1") == nil
  end
end
