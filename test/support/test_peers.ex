defmodule NativeGossip.TestPeers do
  @moduledoc false
  # Real BEAM nodes started with :peer, controlled over stdio rather than distribution,
  # so the test runner never joins their cluster, and started with `-connect_all false`,
  # so `global` does not complete the mesh for them: every connection between them is
  # made by NativeGossip.

  @doc "Starts a peer node `name@127.0.0.1` with this project's code; returns {peer, node}."
  def start!(name, extra_args \\ []) do
    paths = Enum.flat_map(:code.get_path(), &[~c"-pa", &1])

    {:ok, peer, node} =
      :peer.start_link(%{
        name: name,
        host: ~c"127.0.0.1",
        longnames: true,
        connection: :standard_io,
        args: extra_args ++ [~c"-connect_all", ~c"false" | paths]
      })

    {:ok, _} = :peer.call(peer, Application, :ensure_all_started, [:native_gossip])
    :ok = :peer.call(peer, Logger, :configure, [[level: :error]])
    {peer, node}
  end

  @doc "Starts a topology on a peer, under the application's supervisor (it outlives the call)."
  def start_topology(peer, opts) do
    :peer.call(peer, Supervisor, :start_child, [NativeGossip.Supervisor, {NativeGossip, opts}])
  end

  def call(peer, m, f, a), do: :peer.call(peer, m, f, a, 15_000)

  @doc """
  `NativeGossip.start_link(opts)` on the node this runs on, with what it logged:
  `{result, log}` (for `:peer.call/4`; ExUnit must be started there).
  """
  def start_link_logged(opts) do
    ExUnit.CaptureLog.with_log(fn -> NativeGossip.start_link(opts) end)
  end

  def nodes(peer), do: peer |> call(Node, :list, []) |> Enum.sort()

  @doc "Stops a peer node; a peer that is already gone is fine (for on_exit)."
  def stop(peer) do
    :peer.stop(peer)
  catch
    :exit, _ -> :ok
  end

  @doc "Waits until every peer is connected to all the others."
  def wait_for_mesh(peers, timeout \\ 5_000) do
    names = Enum.map(peers, &elem(&1, 1))

    NativeGossip.TestNet.wait_until(
      fn ->
        Enum.all?(peers, fn {peer, node} -> nodes(peer) == Enum.sort(names -- [node]) end)
      end,
      timeout,
      "a full mesh of #{inspect(names)}"
    )
  end
end
