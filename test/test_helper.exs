# Every test sends real multicast. They must run where no packet can leave the
# machine: inside the private network namespace that `make test` creates
# (test/support/private_net.sh). Refuse to run anywhere else.
NativeGossip.TestNet.ensure_private!()

{_, 0} = System.cmd("epmd", ["-daemon"])
# epmd -daemon returns before epmd listens: give it a moment if the first try fails.
{:ok, _} =
  Enum.reduce_while(1..50, nil, fn _, _ ->
    case Node.start(:"runner@127.0.0.1", :longnames) do
      {:ok, pid} ->
        {:halt, {:ok, pid}}

      error ->
        Process.sleep(100)
        {:cont, error}
    end
  end)

# Tests across test hosts need root inside that namespace (to make more namespaces).
exclude =
  if NativeGossip.TestRig.available?() do
    []
  else
    IO.puts("Skipping the :multihost tests: making test hosts needs root (run make test as root)")
    [:multihost]
  end

# The real libcluster is there only with LIBCLUSTER_PATH (see mix.exs): without it, its
# tests are skipped, and the rest use a stand-in of its state struct.
exclude = if Code.ensure_loaded?(Cluster.Supervisor), do: exclude, else: [:libcluster | exclude]

ExUnit.start(capture_log: true, exclude: exclude)
