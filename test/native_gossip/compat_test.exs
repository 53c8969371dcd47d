defmodule NativeGossip.CompatTest do
  # compat: :libcluster: libcluster Gossip heartbeats read and sent, in both of its
  # modes. Vectors are made here with :erlang.term_to_binary/1 and :crypto, and the
  # topology's own heartbeats are read back with :erlang.binary_to_term/1 and :crypto.
  use ExUnit.Case, async: false

  import NativeGossip.TestNet
  alias NativeGossip.{HeartbeatPacket, LegacyGossip, TestPeers}

  @group {233, 252, 1, 32}

  defp send_all(port, packets) do
    socket = HeartbeatPacket.sender()
    for p <- packets, do: HeartbeatPacket.send(socket, port, p, @group)
    :gen_udp.close(socket)
  end

  # The first datagram from the topology on the group that is not NativeGossip's.
  defp own_legacy_heartbeat(port) do
    {:ok, socket} =
      :gen_udp.open(port, [
        :binary,
        active: false,
        reuseaddr: true,
        ip: @group,
        add_membership: {@group, {0, 0, 0, 0}}
      ])

    try do
      Stream.repeatedly(fn -> :gen_udp.recv(socket, 2048, 5_000) end)
      |> Enum.find_value(fn
        {:ok, {_, _, "NGSP" <> _}} -> nil
        {:ok, {_, _, data}} -> data
      end)
    after
      :gen_udp.close(socket)
    end
  end

  defp member?(topology, node),
    do: Enum.any?(NativeGossip.members(topology), &(&1.node == node))

  test "plaintext: OTP's term encodings are read, and our heartbeats decode in OTP" do
    port = unique_port()
    {:ok, _} = NativeGossip.start_link(name: :lc_plain, port: port, compat: :libcluster)

    # Atoms as OTP 26+ writes them (UTF-8), and as OTP 25 did (minor_version 1).
    send_all(port, [
      "heartbeat::" <> :erlang.term_to_binary(%{node: :"lc_new@10.0.0.1"}),
      "heartbeat::" <> :erlang.term_to_binary(%{node: :"lc_old@10.0.0.2"}, minor_version: 1)
    ])

    wait_until(fn -> member?(:lc_plain, :"lc_new@10.0.0.1") end)
    wait_until(fn -> member?(:lc_plain, :"lc_old@10.0.0.2") end)

    "heartbeat::" <> term = own_legacy_heartbeat(port)
    assert :erlang.binary_to_term(term) == %{node: node()}
  end

  test "encrypted: vectors made with :crypto are read, ours decrypt with :crypto" do
    port = unique_port()
    secret = "a libcluster secret"

    {:ok, _} =
      NativeGossip.start_link(name: :lc_enc, port: port, compat: :libcluster, secret: secret)

    send_all(port, [LegacyGossip.packet(:"lc_enc@10.0.0.3", secret)])
    wait_until(fn -> member?(:lc_enc, :"lc_enc@10.0.0.3") end)

    assert {:ok, %{node: node()}} == LegacyGossip.decode(own_legacy_heartbeat(port), secret)
  end

  test "anything but %{node: atom} is dropped and counted, and creates no atom" do
    port = unique_port()
    {peer, _} = TestPeers.start!(:lc_strict)
    on_exit(fn -> TestPeers.stop(peer) end)

    {:ok, _} = TestPeers.start_topology(peer, name: :plain, port: port, compat: :libcluster)

    # Warm up the calls the test makes, so that only what the datagrams cause counts.
    _ = TestPeers.call(peer, NativeGossip, :stats, [:plain])
    _ = TestPeers.call(peer, NativeGossip, :members, [:plain])
    atoms = TestPeers.call(peer, :erlang, :system_info, [:atom_count])
    t = &("heartbeat::" <> :erlang.term_to_binary(&1))

    bad_terms =
      for i <- 1..10 do
        name = :"lc_fresh_#{i}@10.0.0.9"

        [
          t.(%{node: Atom.to_string(name)}),
          t.(%{node: name, extra: 1}),
          t.(%{"node" => name}),
          t.(node: name),
          t.({:node, name}),
          t.(%{node: [name]}),
          t.(%{node: name}) <> <<0>>
        ]
      end
      |> List.flatten()

    bad_names = for i <- 1..10, do: t.(%{node: :"no_at_sign_#{i}"})
    send_all(port, bad_terms ++ bad_names)

    dropped =
      wait_until(fn ->
        d = TestPeers.call(peer, NativeGossip, :stats, [:plain]).dropped
        d.legacy_bad_term == length(bad_terms) and d.bad_name == length(bad_names) and d
      end)

    assert dropped.legacy_bad_term == 70
    assert TestPeers.call(peer, NativeGossip, :members, [:plain]) == []
    # None of the 80 names it refused became an atom there (a little slack for the VM's
    # own work).
    assert TestPeers.call(peer, :erlang, :system_info, [:atom_count]) - atoms < 5
  end

  test "with a secret, nothing is read before decryption and padding pass" do
    port = unique_port()
    {peer, _} = TestPeers.start!(:lc_secret)
    on_exit(fn -> TestPeers.stop(peer) end)

    {:ok, _} =
      TestPeers.start_topology(peer,
        name: :enc,
        port: port,
        compat: :libcluster,
        secret: "right"
      )

    _ = TestPeers.call(peer, NativeGossip, :stats, [:enc])
    _ = TestPeers.call(peer, NativeGossip, :members, [:enc])
    atoms = TestPeers.call(peer, :erlang, :system_info, [:atom_count])

    wrong_key = for i <- 1..20, do: LegacyGossip.packet(:"lc_wrong_#{i}@10.0.0.9", "wrong")
    plaintext = for i <- 1..5, do: LegacyGossip.packet(:"lc_plain_#{i}@10.0.0.9", nil)
    send_all(port, wrong_key ++ plaintext)

    wait_until(fn ->
      TestPeers.call(peer, NativeGossip, :stats, [:enc]).dropped.legacy_bad_ciphertext >= 24
    end)

    assert TestPeers.call(peer, NativeGossip, :members, [:enc]) == []
    # None of the 25 names it refused became an atom there.
    assert TestPeers.call(peer, :erlang, :system_info, [:atom_count]) - atoms < 5
  end

  test "compat: :libcluster defaults to libcluster's group; an explicit group wins" do
    assert {:ok, %{multicast_addr: {233, 252, 1, 32}, compat: :libcluster}} =
             NativeGossip.Options.validate(name: :a, compat: :libcluster)

    assert {:ok, %{multicast_addr: {230, 1, 1, 251}}} =
             NativeGossip.Options.validate(
               name: :a,
               compat: :libcluster,
               multicast_addr: "230.1.1.251"
             )

    assert {:error, {:invalid_option, :compat, _}} =
             NativeGossip.Options.validate(name: :a, compat: :gossip)
  end
end
