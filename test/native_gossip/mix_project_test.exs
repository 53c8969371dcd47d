defmodule NativeGossip.MixProjectTest do
  # The two dependency sets of mix.exs (hex for users and publishing, path for machines
  # without hex): the same runtime dependencies, and ex_doc in both, for :dev only,
  # never at runtime.
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

  test "both sets have ex_doc for :dev only and the same runtime dependencies" do
    hex = deps("hex")
    path = deps("path", %{"LIBCLUSTER_PATH" => nil})

    for set <- [hex, path] do
      assert {:ex_doc, _, opts} = List.keyfind(set, :ex_doc, 0)
      assert opts[:only] == :dev and opts[:runtime] == false
    end

    # telemetry and rustler are optional in both.
    for set <- [hex, path], dep <- [:telemetry, :rustler] do
      assert {^dep, _, opts} = List.keyfind(set, dep, 0)
      assert opts[:optional] == true
    end

    # libcluster (optional) is in the path set only where a checkout is given.
    assert {:libcluster, "~> 3.3", [optional: true]} = List.keyfind(hex, :libcluster, 0)
    assert runtime(hex) -- [{:libcluster, "~> 3.3", [optional: true]}] == runtime(path)
    assert Enum.all?(path, fn {_, _, opts} -> opts[:path] end)

    with_checkout = deps("path", %{"LIBCLUSTER_PATH" => "/somewhere/libcluster"})

    assert {:libcluster, "~> 3.3", [path: "/somewhere/libcluster", optional: true]} =
             List.keyfind(with_checkout, :libcluster, 0)
  end
end
