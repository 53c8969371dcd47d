defmodule NativeGossip.EPMDTest do
  # NativeGossip.EPMD's answers, in this VM (the multi-host test runs it as the epmd
  # module of real nodes with no epmd).
  use ExUnit.Case, async: false

  alias NativeGossip.EPMD

  test "answers for nodes learned from heartbeats, by host name or address, until forgotten" do
    # Not the epmd module of this VM: learning is a no-op, nothing is known.
    assert :ets.whereis(EPMD) == :undefined
    assert EPMD.learn(:app@host2, {198, 51, 100, 2}, 9100) == :ok
    assert EPMD.known() == []

    {:ok, owner} = EPMD.start_link()
    on_exit(fn -> Process.exit(owner, :kill) end)
    :ok = EPMD.learn(:app@host2, {198, 51, 100, 2}, 9100)
    :ok = EPMD.learn(:"app@198.51.100.3", {198, 51, 100, 3}, 9200)

    # Address and port at once (no port_please round trip), for the host of the name.
    assert EPMD.address_please(~c"app", ~c"host2", :inet) == {:ok, {198, 51, 100, 2}, 9100, 6}

    assert EPMD.address_please(~c"app", ~c"198.51.100.3", :inet) ==
             {:ok, {198, 51, 100, 3}, 9200, 6}

    assert EPMD.port_please(~c"app", {198, 51, 100, 2}) == {:port, 9100, 6}
    assert EPMD.port_please(~c"app", ~c"host2", 1000) == {:port, 9100, 6}
    # Another name on that host, another family: not known from heartbeats.
    assert {:error, _} = EPMD.address_please(~c"other", ~c"no-such-host.invalid", :inet)
    assert EPMD.address_please(~c"app", ~c"localhost", :inet) == {:ok, {127, 0, 0, 1}}

    assert Enum.sort(EPMD.known()) == [
             {~c"app@198.51.100.3", {198, 51, 100, 3}, 9200},
             {~c"app@host2", {198, 51, 100, 2}, 9100}
           ]

    # A new port for the node replaces the old; forgotten, it is asked of epmd again.
    :ok = EPMD.learn(:app@host2, {198, 51, 100, 2}, 9101)
    assert EPMD.port_please(~c"app", {198, 51, 100, 2}) == {:port, 9101, 6}
    :ok = EPMD.forget(:app@host2)
    assert EPMD.known() == [{~c"app@198.51.100.3", {198, 51, 100, 3}, 9200}]

    log =
      ExUnit.CaptureLog.capture_log(fn ->
        refute match?({:port, _, _}, EPMD.port_please(~c"app", {127, 0, 0, 1}, 500))
      end)

    assert log =~ "no heartbeat has told where app@127.0.0.1 listens"

    # Registering needs no daemon; the port goes into this node's heartbeats.
    assert {:ok, creation} = EPMD.register_node(~c"me", 9300, :inet_tcp)
    assert creation > 3
    assert EPMD.registered_port() == 9300
  after
    :persistent_term.erase({NativeGossip.EPMD, :port})
  end

  test "an address heard only in heartbeats never replaces a proven one; a name holds few rows; forget removes them all" do
    {:ok, owner} = EPMD.start_link()
    on_exit(fn -> Process.exit(owner, :kill) end)
    genuine = {198, 51, 100, 3}
    :ok = EPMD.learn(:p@host3, genuine, 9100)
    # The connection ran over the genuine address: proven.
    :ok = EPMD.prove(:p@host3, genuine)

    # 10,000 forged heartbeats from as many addresses, each with another port.
    for i <- 1..10_000,
        do: :ok = EPMD.learn(:p@host3, {10, div(i, 256), rem(i, 256), 1}, 6666)

    assert EPMD.address_please(~c"p", ~c"host3", :inet) == {:ok, genuine, 9100, 6}
    {proven, unproven} = EPMD.entry(:p@host3)
    assert proven == {genuine, 9100}
    assert length(unproven) == 4
    assert :ets.info(EPMD, :size) == 1 + 1 + 4

    # Forgotten: every row goes.
    :ok = EPMD.forget(:p@host3)
    assert :ets.info(EPMD, :size) == 0

    # With a secret, an authenticated heartbeat's address is proven at once and a new
    # one (the peer moved) replaces it.
    :ok = EPMD.learn(:p@host3, genuine, 9100, true)
    :ok = EPMD.learn(:p@host3, {10, 0, 0, 9}, 6666)
    :ok = EPMD.learn(:p@host3, {198, 51, 100, 4}, 9101, true)
    assert EPMD.address_please(~c"p", ~c"host3", :inet) == {:ok, {198, 51, 100, 4}, 9101, 6}
    assert :ets.lookup(EPMD, {~c"p", genuine}) == []
  end
end
