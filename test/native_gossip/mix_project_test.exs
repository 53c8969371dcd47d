defmodule NativeGossip.MixProjectTest do
  # The two dependency sets of mix.exs (hex for users and publishing, path for machines
  # without hex): the same runtime dependencies, and ex_doc only in the hex set, for
  # :dev, never at runtime.
  use ExUnit.Case, async: false

  defp deps(set, env \\ %{}) do
    env = Map.put(env, "NATIVE_GOSSIP_DEPS", set)
    previous = Map.new(env, fn {k, _} -> {k, System.get_env(k)} end)
    Enum.each(env, fn {k, v} -> if v, do: System.put_env(k, v), else: System.delete_env(k) end)

    try do
      NativeGossip.MixProject.project()[:deps]
    after
      Enum.each(previous, fn {k, v} ->
        if v, do: System.put_env(k, v), else: System.delete_env(k)
      end)
    end
  end

  defp runtime(deps) do
    for {name, req, opts} <- deps,
        opts[:only] == nil,
        do: {name, req, Keyword.delete(opts, :path)}
  end

  test "the hex set has ex_doc for :dev only; both sets have the same runtime dependencies" do
    hex = deps("hex")
    path = deps("path", %{"LIBCLUSTER_PATH" => nil})
    assert {:ex_doc, _, opts} = List.keyfind(hex, :ex_doc, 0)
    assert opts[:only] == :dev and opts[:runtime] == false
    refute List.keyfind(path, :ex_doc, 0)
    # libcluster (optional) is in the path set only where a checkout is given.
    assert {:libcluster, "~> 3.3", [optional: true]} = List.keyfind(hex, :libcluster, 0)
    assert runtime(hex) -- [{:libcluster, "~> 3.3", [optional: true]}] == runtime(path)
    assert Enum.all?(path, fn {_, _, opts} -> opts[:path] end)

    with_checkout = deps("path", %{"LIBCLUSTER_PATH" => "/somewhere/libcluster"})

    assert {:libcluster, "~> 3.3", [path: "/somewhere/libcluster", optional: true]} =
             List.keyfind(with_checkout, :libcluster, 0)
  end
end
