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
      {[name: :lan, multicast_addr: "fd00::1"], :multicast_addr, "ff00::/8"},
      {[name: :lan, multicast_if: {1, 2, 3}], :multicast_if, "IP address"},
      {[name: :lan, if_addr: :eth0], :if_addr, "interface address, name"},
      {[name: :lan, multicast_if: "a-name-longer-than-15"], :multicast_if, "IP address"},
      {[name: :lan, multicast_if: "fd00::1"], :multicast_if, "address family"},
      {[name: :lan, multicast_if: 3], :multicast_if, "for IPv6, index"},
      {[name: :lan, broadcast: "ff15::1"], :broadcast, "IPv4 broadcast"},
      {[name: :lan, broadcast: 1], :broadcast, "IPv4 broadcast"},
      {[name: :lan, seeds: "10.0.0.1"], :seeds, "a list of hosts"},
      {[name: :lan, seeds: [:host]], :seeds, "a host"},
      {[name: :lan, seeds: ["fd00::1"]], :seeds, "address family"},
      {[name: :lan, seeds: [{"h", 0}]], :seeds, "1..65535"},
      {[name: :lan, seed_refresh: 10], :seed_refresh, "1000..86400000"},
      {[name: :lan, multicast_ttl: 256], :multicast_ttl, "0..255"},
      {[name: :lan, heartbeat_interval: 0], :heartbeat_interval, "10..3600000"},
      {[name: :lan, heartbeat_interval: 1.5], :heartbeat_interval, "integer"},
      {[name: :lan, heartbeat_interval: 1000, lost_after: 500], :lost_after, "at least 1000"},
      {[name: :lan, lost_after: 10_000, forget_after: 5_000], :forget_after, "at least 10000"},
      {[name: :lan, max_peers: 0], :max_peers, "1..1000000"},
      {[name: :lan, max_names: 0], :max_names, ":infinity or an integer in 1..100000000"},
      {[name: :lan, max_clock_skew: 10], :max_clock_skew, "1000..86400000"},
      {[name: :lan, secret: ""], :secret, "got an empty binary"},
      {[name: :lan, secret: ["ok", 1]], :secret, "element 2 is 1"},
      {[name: :lan, secret: ["ok", ""]], :secret, "element 2 is an empty binary"},
      {[name: :lan, secret: :atom], :secret, "got :atom"},
      {[name: :lan, secret: []], :secret, "got an empty list"},
      {[name: :lan, multicast_addr: "not-an-ip"], :multicast_addr, ~s(got: "not-an-ip")},
      {[name: :lan, seeds: [{"h", 70_000}]], :seeds, "1..65535"},
      # Found by options_property_test.exs: binaries that are not UTF-8 raised.
      {[name: :lan, multicast_addr: <<255, 1>>], :multicast_addr, "IP address"},
      {[name: :lan, broadcast: <<200>>], :broadcast, "IPv4 broadcast"},
      {[name: :lan, seeds: [<<255, 1>>]], :seeds, "host name"},
      {[name: :lan, connect: &String.upcase/1], :connect, "{module, function, args}"},
      {[name: :lan, list_nodes: {:erlang, :nodes}], :list_nodes, "{module, function, args}"},
      {[name: :lan, disconnect: {"m", :f, []}], :disconnect, "{module, function, args}"},
      {[name: :lan, broadcast_only: 1], :broadcast_only, "true or false"},
      {[name: :lan, encrypt: true], :encrypt, "needs a :secret"},
      {[name: :lan, secret: "s", encrypt: :yes], :encrypt, "true or false"},
      {[name: :lan, cluster: ""], :cluster, "1 to 64 bytes"},
      {[name: :lan, cluster: String.duplicate("x", 65)], :cluster, "1 to 64 bytes"},
      {[name: :lan, cluster: :blue], :cluster, "1 to 64 bytes"},
      {[name: :lan, cluster: <<0xFF>>], :cluster, "UTF-8"},
      {[name: :lan, tags: "role=web"], :tags, "map or keyword list"},
      {[name: :lan, tags: [:web]], :tags, "map or keyword list"},
      {[name: :lan, tags: %{"role" => %{}}], :tags, "map or keyword list"},
      {[name: :lan, tags: %{"" => "x"}], :tags, "1 to 64 bytes"},
      {[name: :lan, tags: %{String.duplicate("k", 65) => "x"}], :tags, "1 to 64 bytes"},
      {[name: :lan, tags: [{"role", "a"}, {:role, "b"}]], :tags, "appears twice"},
      {[name: :lan, tags: %{"k" => String.duplicate("v", 300)}], :tags, "more than 254 bytes"},
      {[name: :lan, tags: Map.new(1..50, &{"key#{&1}", "value"})], :tags, "at most 512"},
      {[name: :lan, connect_if: &Kernel.is_atom/1], :connect_if, "{module, function, args}"},
      {[name: :lan, no_such_option: true], :no_such_option, "unknown option"}
    ]

    for {{opts, key, text}, i} <- Enum.with_index(@cases) do
      test "#{i}: #{String.slice(inspect(opts), 0, 120)} -> #{key}" do
        assert {:error, {:invalid_option, unquote(key), reason}} =
                 NativeGossip.start_link(unquote(Macro.escape(opts)))

        assert reason =~ unquote(text)
      end
    end

    test "tags, label, encryption and connect_if: accepted forms" do
      {:ok, o} =
        Options.validate(
          name: :lan,
          secret: "s",
          encrypt: true,
          cluster: "blue",
          tags: [role: :web, version: "1.4.2", shard: 3],
          connect_if: {Kernel, :is_atom, []}
        )

      assert o.tags == %{"role" => "web", "version" => "1.4.2", "shard" => "3"}
      assert {o.encrypt, o.cluster, o.connect_if} == {true, "blue", {Kernel, :is_atom, []}}
      {:ok, native} = Options.to_native(o, "a@h")
      # Sorted, so that every heartbeat carries them in one order.
      assert native.tags == [{"role", "web"}, {"shard", "3"}, {"version", "1.4.2"}]
      assert {native.cluster, native.encrypt} == {"blue", true}
      {:ok, d} = Options.validate(name: :lan)
      assert {d.tags, d.cluster, d.encrypt, d.connect_if} == {%{}, nil, false, nil}
      assert {:ok, %{"ü" => "ö"}} = Options.tags(%{"ü" => "ö"})
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
    assert o.multicast_if == nil
    assert o.multicast_ttl == 1
    assert o.broadcast == false
    assert o.seeds == []
    assert o.seed_refresh == 30_000
    assert o.heartbeat_interval == 1_500
    assert o.lost_after == 4_500
    assert o.forget_after == 60_000
    assert o.secrets == []
    # Without a secret, at most twice :max_peers names ever become atoms.
    assert o.max_names == 20_000
    assert o.max_clock_skew == 60_000
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
    # With a secret names are authenticated: no cap unless asked; timestamps checked
    # within :forget_after.
    assert o.max_names == :infinity
    assert o.max_clock_skew == 600_000

    assert {:ok, %{max_names: 7, max_clock_skew: :infinity} = o} =
             Options.validate(name: :lan, max_names: 7, max_clock_skew: :infinity)

    # :infinity crosses as nil: no bound, no check.
    assert {:ok, %{max_names: 7, max_clock_skew: nil}} = Options.to_native(o, "a@h")

    # :multicast_if wins over libcluster's bind address :if_addr, and says so.
    assert {:ok, %{multicast_if: {127, 0, 0, 2}, notes: [note]}} =
             Options.validate(name: :lan, if_addr: "127.0.0.1", multicast_if: "127.0.0.2")

    assert note =~ "if_addr 127.0.0.1 is not used: :multicast_if 127.0.0.2 chooses"
  end

  # Issue #24: libcluster's Gossip keys with libcluster's meaning.
  test "libcluster's keys: broadcast_only sends to multicast_addr, if_addr is the bind address" do
    # broadcast_only: true uses :multicast_addr as the broadcast address...
    for addr <- ["198.51.100.255", ~c"10.0.0.255", {255, 255, 255, 255}] do
      assert {:ok, %{broadcast: true, multicast_addr: {_, _, _, 255}, notes: []}} =
               Options.validate(name: :lan, broadcast_only: true, multicast_addr: addr)
    end

    assert {:ok, %{multicast_addr: {198, 51, 100, 255}}} =
             Options.validate(name: :lan, broadcast_only: true, multicast_addr: "198.51.100.255")

    # ... 255.255.255.255 without one, also with compat (not libcluster's default group)...
    assert {:ok, %{broadcast: true, multicast_addr: {255, 255, 255, 255}}} =
             Options.validate(name: :lan, broadcast_only: true, compat: :libcluster)

    # ... a group given with it stays a group, with a note; :broadcast given wins.
    assert {:ok, %{broadcast: false, multicast_addr: {233, 252, 1, 32}, notes: [note]}} =
             Options.validate(name: :lan, broadcast_only: true, multicast_addr: "233.252.1.32")

    assert note =~ "joins that group"

    assert {:ok, %{broadcast: true, multicast_addr: {10, 1, 1, 255}}} =
             Options.validate(
               name: :lan,
               broadcast_only: true,
               broadcast: "10.1.1.255",
               multicast_addr: "10.0.0.255"
             )

    assert {:error, {:invalid_option, :multicast_addr, msg}} =
             Options.validate(name: :lan, broadcast_only: true, multicast_addr: "nope")

    assert msg =~ "broadcast address to send to"

    # if_addr: the wildcard (libcluster's default and example) and the group are the
    # default bind; libcluster's own examples validate as they are, with no note.
    for if_addr <- ["0.0.0.0", {0, 0, 0, 0}, "239.255.45.92"] do
      assert {:ok, %{multicast_if: nil, notes: []}} =
               Options.validate(name: :lan, if_addr: if_addr)
    end

    assert {:ok, %{multicast_if: {127, 0, 0, 1}, notes: []}} =
             Options.validate(
               name: :lan,
               port: 45_892,
               if_addr: "0.0.0.0",
               multicast_if: "127.0.0.1",
               multicast_addr: "233.252.1.32",
               multicast_ttl: 1,
               secret: "somepassword"
             )

    assert {:ok, %{broadcast: true, multicast_addr: {255, 255, 255, 255}, notes: []} = o} =
             Options.validate(
               name: :lan,
               port: 45_892,
               if_addr: "0.0.0.0",
               multicast_addr: "255.255.255.255",
               broadcast_only: true
             )

    assert {:ok, %{multicast_if: "0.0.0.0"}} = Options.to_native(o, "a@h")

    # An address of the host with broadcast: not bound (it would hear no broadcast).
    assert {:ok, %{notes: [note]}} =
             Options.validate(name: :lan, if_addr: "127.0.0.1", broadcast_only: true)

    assert note =~ "not used with broadcast"
  end

  test "an unknown key: rejected standalone with the nearest key; noted as a strategy" do
    assert {:error, {:invalid_option, :multicast_adr, msg}} =
             Options.validate(name: :lan, multicast_adr: "239.1.1.1")

    assert msg =~ "unknown option (did you mean :multicast_addr?)"

    assert {:ok, %{multicast_addr: {239, 255, 45, 92}, notes: [note, other]}} =
             Options.validate(
               [name: :lan, multicast_adr: "239.1.1.1", zzz: 1, multicast_adr: "x"],
               :strategy
             )

    assert note ==
             "unknown key :multicast_adr under config: ignored (did you mean :multicast_addr?)"

    assert other == "unknown key :zzz under config: ignored"
  end

  test "IPv6 groups, interfaces by name or index, broadcast, seeds" do
    assert {:ok, o} = Options.validate(name: :lan, multicast_addr: "ff02::4e47", multicast_if: 2)
    assert o.multicast_addr == {0xFF02, 0, 0, 0, 0, 0, 0, 0x4E47}
    assert o.multicast_if == {:index, 2}

    assert {:ok, %{multicast_if: {:name, "eth0"}}} = Options.validate(name: :lan, if_addr: "eth0")

    # broadcast: true is the limited broadcast address; the group is not used then.
    assert {:ok, %{broadcast: true, multicast_addr: {255, 255, 255, 255}}} =
             Options.validate(name: :lan, broadcast: true)

    # libcluster's name for it.
    assert {:ok, %{broadcast: true, multicast_addr: {255, 255, 255, 255}}} =
             Options.validate(name: :lan, broadcast_only: true)

    assert {:ok, %{broadcast: true, multicast_addr: {10, 0, 0, 255}}} =
             Options.validate(name: :lan, broadcast: "10.0.0.255")

    assert {:ok, %{seeds: seeds}} =
             Options.validate(
               name: :lan,
               port: 5000,
               seeds: [
                 "10.0.0.1",
                 "10.0.0.2:6000",
                 "seed.example",
                 "seed.example:7000",
                 {{10, 0, 0, 3}, 8000}
               ]
             )

    assert seeds == [
             {{10, 0, 0, 1}, 5000},
             {{10, 0, 0, 2}, 6000},
             {~c"seed.example", 5000},
             {~c"seed.example", 7000},
             {{10, 0, 0, 3}, 8000}
           ]

    assert {:ok,
            %{
              seeds: [{{0xFD00, 0, 0, 0, 0, 0, 0, 1}, 45_892}, {{0xFD00, 0, 0, 0, 0, 0, 0, 2}, 9}]
            }} =
             Options.validate(
               name: :lan,
               multicast_addr: "ff15::1",
               seeds: ["fd00::1", "[fd00::2]:9"]
             )
  end

  test "at start: interfaces by name resolve on this host, seed names resolve off the server" do
    {:ok, o} = Options.validate(name: :lan, multicast_if: "lo")
    assert {:ok, %{multicast_if: "127.0.0.1", multicast_ifindex: 0}} = Options.to_native(o, "a@h")

    {:ok, o} = Options.validate(name: :lan, multicast_addr: "ff15::1", multicast_if: "lo")
    {:ok, index} = :net.if_name2index(~c"lo")

    assert {:ok, %{multicast_if: "0.0.0.0", multicast_ifindex: ^index}} =
             Options.to_native(o, "a@h")

    {:ok, o} = Options.validate(name: :lan, multicast_if: "nosuch0")
    assert {:error, {:interface_unavailable, message}} = Options.to_native(o, "a@h")
    assert message =~ "no interface named"

    {:ok, o} =
      Options.validate(name: :lan, seeds: ["10.0.0.1:7", "localhost", "no-such-host.invalid"])

    assert {:ok, %{seeds: ["10.0.0.1:7"], unicast: true}} = Options.to_native(o, "a@h")
    assert Options.resolve_seeds(o) == [{{10, 0, 0, 1}, 7}, {{127, 0, 0, 1}, 45_892}]
  end

  describe "options_from_env/1" do
    doctest NativeGossip, only: [options_from_env: 1]

    test "every variable, and what a release would start with" do
      vars = %{
        "T_SECRET" => "one, secret,with commas",
        "T_PORT" => "45900",
        "T_MULTICAST_ADDR" => "239.1.2.3",
        "T_MULTICAST_IF" => "eth0",
        "T_MULTICAST_TTL" => "2",
        "T_BROADCAST" => "",
        "T_SEEDS" => "10.0.0.5, seed.local:45892",
        "T_HEARTBEAT_INTERVAL" => "500"
      }

      for {k, v} <- vars, do: System.put_env(k, v)
      on_exit(fn -> Enum.each(Map.keys(vars), &System.delete_env/1) end)
      opts = NativeGossip.options_from_env("T_")

      assert opts == [
               secret: "one, secret,with commas",
               port: 45_900,
               multicast_addr: "239.1.2.3",
               multicast_if: "eth0",
               multicast_ttl: 2,
               seeds: ["10.0.0.5", "seed.local:45892"],
               heartbeat_interval: 500
             ]

      assert {:ok, o} = Options.validate([name: :lan] ++ opts)
      assert o.seeds == [{{10, 0, 0, 5}, 45_900}, {~c"seed.local", 45_892}]

      # A rotation list is a variable of its own, one secret a line.
      System.delete_env("T_SECRET")
      System.put_env("T_SECRETS", "new,1\nold\n")
      on_exit(fn -> System.delete_env("T_SECRETS") end)
      assert NativeGossip.options_from_env("T_")[:secret] == ["new,1", "old"]
      System.put_env("T_SECRET", "s")

      assert_raise ArgumentError, ~r/T_SECRET .* or T_SECRETS .* not both/, fn ->
        NativeGossip.options_from_env("T_")
      end

      System.delete_env("T_SECRETS")
      System.put_env("T_PORT", "fourty")

      assert_raise ArgumentError, ~r/T_PORT must be an integer/, fn ->
        NativeGossip.options_from_env("T_")
      end
    end
  end

  describe "the schema, the one statement of the options" do
    alias NativeGossip.Options.Schema

    test "the README's options table is the schema's, row for row" do
      readme = File.read!(Path.expand("../../README.md", __DIR__))
      [_, section] = String.split(readme, "\n## Options\n", parts: 2)
      rows = for "| `:" <> _ = row <- String.split(section, "\n"), do: row
      expected = Schema.table_rows()

      assert Enum.take(rows, length(expected)) == expected,
             "README.md's options table differs from NativeGossip.Options.Schema; its rows " <>
               "should be:\n" <> Enum.join(expected, "\n")
    end

    test "a default the docs state is the default validation gives" do
      for {key, o} <- Schema.options(), o[:default] != nil do
        assert o[:default_doc] == "`#{inspect(o[:default])}`", "#{key}"
        {:ok, options} = NativeGossip.Options.validate(name: :x)
        field = Keyword.get(o, :field, key)
        if field, do: assert(Map.fetch!(options, field) == o[:default], "#{key}")
      end
    end

    test "every option is in the typespec, the docs and the struct, and checked" do
      {:ok, types} = Code.Typespec.fetch_types(NativeGossip)

      [option] = for {:type, {:option, _, _} = t} <- types, do: Code.Typespec.type_to_quoted(t)

      typed = for {:{}, _, [k, _]} <- flatten_union(option), do: k
      typed = typed ++ for {k, _} <- flatten_union(option), is_atom(k), do: k
      assert Enum.sort(typed) == Enum.sort(Schema.keys())

      {:docs_v1, _, _, _, _, _, docs} = Code.fetch_docs(NativeGossip)
      [doc] = for {{:type, :option, 0}, _, _, %{"en" => doc}, _} <- docs, do: doc
      for key <- Schema.keys(), do: assert(doc =~ "* `#{inspect(key)}` - ")

      assert length(Schema.checks()) == length(Schema.keys())
      fields = Map.keys(%NativeGossip.Options{name: :x}) -- [:__struct__, :notes]
      assert Enum.sort(fields) == Enum.sort(Keyword.keys(Schema.fields()))
    end

    defp flatten_union({:"::", _, [_, union]}), do: flatten_union(union)
    defp flatten_union({:|, _, [a, b]}), do: flatten_union(a) ++ flatten_union(b)
    defp flatten_union(t), do: [t]
  end
end
