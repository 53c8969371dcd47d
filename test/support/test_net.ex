defmodule NativeGossip.TestNet do
  @moduledoc false
  # Guards and helpers for tests that send packets: they may only run inside a
  # network namespace of our own, whose interfaces are loopback and those the tests
  # create (named "ng*").

  @doc "Halts the VM unless this is a private namespace made by test/support/private_net.sh."
  def ensure_private! do
    {:ok, ifs} = :inet.getifaddrs()
    foreign = for {name, _} <- ifs, name != ~c"lo", not List.starts_with?(name, ~c"ng"), do: name

    if System.get_env("NATIVE_GOSSIP_NETNS") != "1" or foreign != [] do
      IO.puts(:stderr, """
      Refusing to run: these tests send multicast, and this shell is not in a private
      network namespace (interfaces seen: #{inspect(Enum.map(ifs, &elem(&1, 0)))}).
      Run `make test`, or: test/support/private_net.sh mix test
      """)

      System.halt(2)
    end
  end

  @doc """
  A UDP port no other test of this run uses, and no socket the OS numbers itself: below
  the ephemeral ranges of Linux (32768-60999) and macOS (49152-65535). Ports from
  46000 up were inside Linux's, and the answer socket of a topology with a secret (an
  ephemeral port) once took the port a later test's topology then could not bind
  (`:port_in_use`, a CI run of 2026-12-06).
  """
  def unique_port, do: 20_000 + rem(System.unique_integer([:positive, :monotonic]), 10_000)

  @doc """
  Polls `fun` every 5 ms until it returns a truthy value; fails after `timeout` ms,
  saying `what` (a string, or a function that makes one then).
  """
  def wait_until(fun, timeout \\ 5_000, what \\ "condition") do
    deadline = System.monotonic_time(:millisecond) + timeout
    do_wait(fun, deadline, what)
  end

  defp do_wait(fun, deadline, what) do
    case fun.() do
      result when result not in [nil, false] ->
        result

      _ ->
        if System.monotonic_time(:millisecond) > deadline do
          ExUnit.Assertions.flunk(
            "timed out waiting for #{if is_function(what, 0), do: what.(), else: what}"
          )
        else
          Process.sleep(5)
          do_wait(fun, deadline, what)
        end
    end
  end
end
