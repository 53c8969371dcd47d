defmodule NativeGossip.MultihostDoctorTest do
  # `mix native_gossip.doctor` as a user runs it: an OS process (`elixir -S mix ...`) on
  # a test host beside a healthy cluster of `--sname` nodes on two other hosts, whose
  # host names resolve nowhere (as on a LAN without DNS, where the topology's
  # :resolve_short_names makes them connect).
  use ExUnit.Case, async: false

  alias NativeGossip.{EventRecorder, TestRig}

  @moduletag :multihost
  @moduletag timeout: 180_000

  @secret "doctor-test-secret-0123456789"
  @topology [name: :lan, secret: @secret, heartbeat_interval: 200]

  # Runs the doctor on host `i` of `rig`, under the host name `host<i>` (other hosts'
  # names resolve nowhere), distributed as `doctor@host<i>` with `cookie` or not distributed.
  defp doctor(rig, i, args, cookie \\ nil, erl_flags \\ "") do
    host = Enum.at(rig.hosts, i - 1)
    dist = if cookie, do: "--sname doctor --cookie #{cookie} ", else: ""
    argv = Enum.map_join(args, " ", &("'" <> &1 <> "'"))

    {out, status} =
      System.cmd(
        "ip",
        ["netns", "exec", host.netns, "unshare", "--uts", "sh", "-c"] ++
          ["hostname #{host.hostname} && exec elixir #{dist}-S mix native_gossip.doctor #{argv}"],
        stderr_to_stdout: true,
        env: [{"MIX_ENV", "test"}, {"ERL_FLAGS", erl_flags}]
      )

    {status, out}
  end

  # A firewall on host `i`: every incoming TCP connection dropped but epmd's.
  defp firewall(rig, i) do
    host = Enum.at(rig.hosts, i - 1)
    nft = &System.cmd("ip", ["netns", "exec", host.netns, "nft" | &1], stderr_to_stdout: true)
    {_, 0} = nft.(~w(add table inet ngfw))

    {_, 0} =
      nft.(["add", "chain", "inet", "ngfw", "in", "{ type filter hook input priority 0; }"])

    {_, 0} = nft.(~w(add rule inet ngfw in tcp dport != 4369 drop))
  end

  defp start_nodes(rig, opts, topology \\ @topology) do
    ns =
      for i <- 1..2 do
        {peer, node} = TestRig.start_node!(rig, i, opts)
        {_t0, _} = :peer.call(peer, EventRecorder, :start_topology, [topology])
        %{peer: peer, node: node}
      end

    TestRig.wait_for_mesh(ns)
    cookie = :peer.call(hd(ns).peer, :erlang, :get_cookie, [])
    {Enum.map(ns, & &1.node), cookie}
  end

  test "a healthy cluster of --sname nodes without DNS is healthy to the doctor; an idle host's epmd is not a problem" do
    rig = TestRig.start_in_test!(3)
    {[a, b], cookie} = start_nodes(rig, names: :short)

    # Not distributed, on a host where no node runs yet (so no epmd): notes, no problem.
    {status, out} = doctor(rig, 3, ["--secret", @secret, "--seconds", "2"])
    assert status == 0, out
    assert out =~ "note    epmd is not running on this host: normal while no node runs here"
    assert out =~ "note    heard #{a} from 198.51.100.1"
    assert out =~ "no problem found"
    refute out =~ "PROBLEM"

    # Distributed with the cluster's cookie: it maps the peers' short host names as a
    # topology does, and connects to both.
    {status, out} = doctor(rig, 3, ["--secret", @secret, "--seconds", "2"], cookie)
    assert status == 0, out
    assert out =~ "ok      this VM is distributed as doctor@host3"
    assert out =~ "ok      heard 2 node(s)"
    assert out =~ "ok      heard #{a} from 198.51.100.1 and connected to it"
    assert out =~ "ok      heard #{b} from 198.51.100.2 and connected to it"
    assert out =~ "no problem found"

    # As a topology with resolve_short_names: false would see it: the hosts do not resolve.
    {status, out} =
      doctor(rig, 3, ["--secret", @secret, "--seconds", "2", "--no-resolve-short-names"], cookie)

    assert status != 0
    assert out =~ "PROBLEM heard #{a} from 198.51.100.1, but its host host1 does not resolve here"

    # A firewall on host 2 that lets only epmd in: its distribution port is unreachable.
    firewall(rig, 2)
    {status, out} = doctor(rig, 3, ["--secret", @secret, "--seconds", "2"], cookie)
    assert status != 0
    assert out =~ "ok      heard #{a} from 198.51.100.1 and connected to it"
    assert out =~ ~r/PROBLEM #{b}'s distribution port \d+ is not reachable from here/
    assert out =~ "a firewall drops it"
  end

  test "without epmd: the doctor says its own port, and reaches each node at the port its heartbeats give" do
    rig = TestRig.start_in_test!(3)
    no_epmd = [~c"-start_epmd", ~c"false", ~c"-epmd_module", ~c"Elixir.NativeGossip.EPMD"]
    {[a, b], cookie} = start_nodes(rig, names: :short, erl_args: no_epmd)
    ebin = Path.join(Mix.Project.build_path(), "lib/native_gossip/ebin")
    flags = "-start_epmd false -epmd_module Elixir.NativeGossip.EPMD -pa #{ebin}"

    {status, out} = doctor(rig, 3, ["--secret", @secret, "--seconds", "2"], cookie, flags)
    assert status == 0, out

    assert out =~
             ~r/ok      distribution without epmd \(NativeGossip.EPMD\): this node listens on port \d+/

    assert out =~
             ~r/ok      heard #{a} from 198.51.100.1 \(distribution port \d+\) and connected to it/

    assert out =~
             ~r/ok      heard #{b} from 198.51.100.2 \(distribution port \d+\) and connected to it/

    firewall(rig, 2)
    {status, out} = doctor(rig, 3, ["--secret", @secret, "--seconds", "2"], cookie, flags)
    assert status != 0

    assert out =~
             ~r/PROBLEM #{b}'s distribution port \d+ \(from its heartbeats\) is not reachable/
  end

  # Issue #23: the doctor connects only where an authenticated, fresh heartbeat from
  # its sender's own address says.
  test "with a secret: a node's heartbeat replayed from another host is refused, and the doctor connects where the node is" do
    rig = TestRig.start_in_test!(4)
    {[a, b], cookie} = start_nodes(rig, names: :short)

    args = ~w(send --kind replay --capture-name #{a} --secret #{@secret} --rate 300 --duration 6)
    replayer = Task.async(fn -> TestRig.probe!(rig, 4, args) end)
    Process.sleep(1_000)
    {status, out} = doctor(rig, 3, ["--secret", @secret, "--seconds", "2"], cookie)
    assert Task.await(replayer, 30_000) > 500
    assert out =~ "ok      heard #{a} from 198.51.100.1 and connected to it"
    assert out =~ "ok      heard #{b} from 198.51.100.2 and connected to it"
    refute out =~ "198.51.100.4"
    # The replays are a problem to report, by their reason.
    assert out =~ ~r/PROBLEM \d+ datagram\(s\) would be dropped: foreign_source/
    assert status != 0
  end

  test "without a secret: the doctor does not connect where only a heartbeat says, and says so" do
    rig = TestRig.start_in_test!(3)
    topology = Keyword.delete(@topology, :secret)
    {[a, _b], cookie} = start_nodes(rig, [names: :short], topology)
    {status, out} = doctor(rig, 3, ["--seconds", "2"], cookie)
    assert status == 0, out

    assert out =~
             "note    heard #{a} from 198.51.100.1; not connecting: without a secret the " <>
               "address of its host host1 comes only from an unauthenticated heartbeat"

    refute out =~ "connected to it"
  end
end
