defmodule NativeGossip.TypespecsTest do
  # Every documented function of a documented module has a typespec (what dialyzer
  # checks callers against, and what the docs show). Callbacks of a behaviour take
  # theirs from the behaviour.
  use ExUnit.Case, async: false

  test "the public API has typespecs" do
    {:ok, modules} = :application.get_key(:native_gossip, :modules)

    missing =
      for module <- modules,
          {:docs_v1, _, _, _, moduledoc, _, docs} <- [Code.fetch_docs(module)],
          moduledoc != :hidden,
          specs = module |> Code.Typespec.fetch_specs() |> elem(1) |> Map.new(),
          callbacks = callbacks(module),
          {{:function, name, arity}, _, _, doc, _} <- docs,
          doc != :hidden,
          not Map.has_key?(specs, {name, arity}),
          {name, arity} not in callbacks,
          do: "#{inspect(module)}.#{name}/#{arity}"

    assert missing == []
  end

  defp callbacks(module) do
    for behaviour <- Keyword.get_values(module.module_info(:attributes), :behaviour),
        b <- behaviour,
        {:ok, cbs} = Code.Typespec.fetch_callbacks(b),
        {{name, arity}, _} <- cbs,
        do: {name, arity}
  end

  # Issue #25: @type member lacked :dist_port, which members/1 returns.
  test "a row of members/1 has exactly the keys of @type member" do
    {:ok, types} = Code.Typespec.fetch_types(NativeGossip)

    [keys] =
      for {:type, {:member, {:type, _, :map, fields}, []}} <- types,
          do: for({:type, _, :map_field_exact, [{:atom, _, k}, _]} <- fields, do: k)

    port = NativeGossip.TestNet.unique_port()
    {:ok, _} = NativeGossip.start_link(name: :typed, port: port)
    socket = NativeGossip.HeartbeatPacket.sender()

    NativeGossip.HeartbeatPacket.send(
      socket,
      port,
      NativeGossip.HeartbeatPacket.build("x@127.0.0.9")
    )

    [row] =
      NativeGossip.TestNet.wait_until(fn ->
        NativeGossip.members(:typed) |> then(&(&1 != [] && &1))
      end)

    assert Enum.sort(Map.keys(row)) == Enum.sort(keys)
  end
end
