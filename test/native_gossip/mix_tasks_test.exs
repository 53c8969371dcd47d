defmodule NativeGossip.MixTasksTest do
  # mix native_gossip.listen and mix native_gossip.doctor, run in this VM against real
  # datagrams on the private namespace's loopback.
  use ExUnit.Case, async: false

  import NativeGossip.TestNet
  alias NativeGossip.HeartbeatPacket

  setup do
    Mix.shell(Mix.Shell.Process)
    on_exit(fn -> Mix.shell(Mix.Shell.IO) end)
    :ok
  end

  defp lines do
    receive do
      {:mix_shell, :info, [line]} -> [line | lines()]
    after
      0 -> []
    end
  end

  test "listen prints each datagram's sender and verdict" do
    port = unique_port()

    # Mix.Shell.Process sends the task's output to the test process (its caller).
    listener =
      Task.async(fn ->
        Mix.Tasks.NativeGossip.Listen.run(
          ~w(--port #{port} --secret right --count 4 --seconds 10)
        )
      end)

    # Let it join the group, then send one of each kind.
    Process.sleep(300)
    socket = HeartbeatPacket.sender()
    send_one = &HeartbeatPacket.send(socket, port, &1)
    send_one.(HeartbeatPacket.build("good@10.0.0.1", secret: "right", joining: true, sequence: 7))
    send_one.(HeartbeatPacket.build("forged@10.0.0.1", secret: "wrong"))
    send_one.(HeartbeatPacket.build("plain@10.0.0.1"))
    send_one.(String.duplicate("junk", 12))
    Task.await(listener, 15_000)

    assert [header | out] = lines()
    assert header =~ "listening on 239.255.45.92:#{port} with 1 secret(s)"
    assert [good, forged, plain, junk] = out
    assert good =~ ~r/^\d\d:\d\d:\d\d\.\d{3} 127\.0\.0\.1:\d+ accepted good@10\.0\.0\.1 /
    assert good =~ "sequence=7 [joining,signed]"
    assert forged =~ "dropped bad_signature"
    assert plain =~ "dropped missing_signature"
    assert junk =~ "dropped bad_magic"
  end
end
