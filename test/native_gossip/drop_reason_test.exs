defmodule NativeGossip.DropReasonTest do
  # Drop reasons have one home, the Rust core (reason.rs): what the Elixir side, the
  # docs and the NIF say must be that table, every reason with its text.
  use ExUnit.Case, async: true

  alias NativeGossip.{DropReason, Native}

  test "the reasons and texts compiled from reason.rs are what the loaded NIF counts" do
    assert DropReason.all() == Enum.map(Native.drop_reasons(), &elem(&1, 0))

    for {reason, text} <- Native.drop_reasons() do
      assert DropReason.explain(reason) == text
      assert String.length(text) >= 10, "#{reason} has no text"
    end
  end

  test "the stats count exactly these reasons" do
    Code.ensure_loaded!(DropReason)
    assert length(DropReason.all()) >= 16
    {:docs_v1, _, _, _, %{"en" => moduledoc}, _, _} = Code.fetch_docs(DropReason)

    for reason <- DropReason.all() do
      assert moduledoc =~ "`#{inspect(reason)}`"
    end
  end

  test "docs/PROTOCOL.md's table lists every reason, and no other" do
    table =
      Regex.scan(~r/^\| `([a-z_]+)` \|/m, File.read!("docs/PROTOCOL.md"))
      |> Enum.map(fn [_, r] -> String.to_atom(r) end)

    assert Enum.sort(table) == Enum.sort(DropReason.all())
  end
end
