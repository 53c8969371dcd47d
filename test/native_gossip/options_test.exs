defmodule NativeGossip.OptionsTest do
  use ExUnit.Case, async: true

  alias NativeGossip.Options

  describe "start_link/1 with a bad option" do
    # Each bad value returns its documented error without starting anything.
    @cases [
      {[], :name, "is required"},
      {[name: "lan"], :name, "expected an atom"},
      {[name: :lan, port: 0], :port, "1..65535"},
      {[name: :lan, port: 70_000], :port, "1..65535"},
      {[name: :lan, multicast_addr: {10, 0, 0, 1}], :multicast_addr, "multicast"},
      {[name: :lan, multicast_addr: "not an address"], :multicast_addr, "IP address"},
      {[name: :lan, multicast_addr: "ff15::1"], :multicast_addr, "IPv6"},
      {[name: :lan, multicast_if: {1, 2, 3}], :multicast_if, "IP address"},
      {[name: :lan, if_addr: :eth0], :if_addr, "IP address"},
      {[name: :lan, multicast_ttl: 256], :multicast_ttl, "0..255"},
      {[name: :lan, heartbeat_interval: 0], :heartbeat_interval, "10..3600000"},
      {[name: :lan, heartbeat_interval: 1.5], :heartbeat_interval, "integer"},
      {[name: :lan, heartbeat_interval: 1000, lost_after: 500], :lost_after, "at least 1000"},
      {[name: :lan, lost_after: 10_000, forget_after: 5_000], :forget_after, "at least 10000"},
      {[name: :lan, max_peers: 0], :max_peers, "1..1000000"},
      {[name: :lan, secret: ""], :secret, "non-empty binary"},
      {[name: :lan, secret: ["ok", 1]], :secret, "non-empty binary"},
      {[name: :lan, secret: :atom], :secret, "non-empty binary"},
      {[name: :lan, connect: &String.upcase/1], :connect, "{module, function, args}"},
      {[name: :lan, list_nodes: {:erlang, :nodes}], :list_nodes, "{module, function, args}"},
      {[name: :lan, disconnect: {"m", :f, []}], :disconnect, "{module, function, args}"},
      {[name: :lan, broadcast_only: true], :broadcast_only, "unknown option"}
    ]

    for {{opts, key, text}, i} <- Enum.with_index(@cases) do
      test "#{i}: #{inspect(opts)} -> #{key}" do
        assert {:error, {:invalid_option, unquote(key), reason}} =
                 NativeGossip.start_link(unquote(Macro.escape(opts)))

        assert reason =~ unquote(text)
      end
    end

    test "not a keyword list" do
      assert {:error, {:invalid_option, :opts, _}} = NativeGossip.start_link(:lan)
      assert {:error, {:invalid_option, :opts, _}} = NativeGossip.start_link([:lan])
    end
  end

  test "defaults, derived timeouts and accepted forms" do
    assert {:ok, o} = Options.validate(name: :lan)
    assert o.port == 45_892
    assert o.multicast_addr == {239, 255, 45, 92}
    assert o.multicast_if == {0, 0, 0, 0}
    assert o.multicast_ttl == 1
    assert o.heartbeat_interval == 1_500
    assert o.lost_after == 4_500
    assert o.forget_after == 60_000
    assert o.secrets == []
    assert o.connect == {:net_kernel, :connect_node, []}
    assert o.list_nodes == {:erlang, :nodes, [:connected]}

    assert {:ok, o} =
             Options.validate(
               name: :lan,
               multicast_addr: "239.1.2.3",
               if_addr: ~c"127.0.0.1",
               secret: ["new", "old"],
               heartbeat_interval: 100_000
             )

    assert o.multicast_addr == {239, 1, 2, 3}
    assert o.multicast_if == {127, 0, 0, 1}
    assert o.secrets == ["new", "old"]
    assert o.lost_after == 300_000
    assert o.forget_after == 600_000

    # :multicast_if wins over its libcluster-style alias :if_addr.
    assert {:ok, %{multicast_if: {127, 0, 0, 2}}} =
             Options.validate(name: :lan, if_addr: "127.0.0.1", multicast_if: "127.0.0.2")
  end
end
