defmodule NativeGossip.MixProjectTest do
  # The two dependency sets of mix.exs (hex for users and publishing, path for machines
  # without hex): the same runtime dependencies, and ex_doc only in the hex set, for
  # :dev, never at runtime.
  use ExUnit.Case, async: false

  defp deps(set) do
    previous = System.get_env("NATIVE_GOSSIP_DEPS")
    System.put_env("NATIVE_GOSSIP_DEPS", set)

    try do
      NativeGossip.MixProject.project()[:deps]
    after
      if previous,
        do: System.put_env("NATIVE_GOSSIP_DEPS", previous),
        else: System.delete_env("NATIVE_GOSSIP_DEPS")
    end
  end

  defp runtime(deps) do
    for {name, req, opts} <- deps,
        opts[:only] == nil,
        do: {name, req, Keyword.delete(opts, :path)}
  end

  test "the hex set has ex_doc for :dev only; both sets have the same runtime dependencies" do
    hex = deps("hex")
    path = deps("path")
    assert {:ex_doc, _, opts} = List.keyfind(hex, :ex_doc, 0)
    assert opts[:only] == :dev and opts[:runtime] == false
    refute List.keyfind(path, :ex_doc, 0)
    assert runtime(hex) == runtime(path)
    assert Enum.all?(path, fn {_, _, opts} -> opts[:path] end)
  end
end
