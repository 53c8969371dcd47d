defmodule NativeGossip.ShapeTest do
  # The shape a maintainer can live in (issue #25): no production file over 400 lines
  # and no function over 60, in Rust and Elixir, unless the file (or the comment just
  # above the function) says why: "Longer than 400 lines because ..." /
  # "Longer than 60 lines because ...". Tests (test modules, tests.rs) do not count.
  use ExUnit.Case, async: true

  @root Path.expand("../..", __DIR__)
  @max_file 400
  @max_fun 60

  defp files do
    elixir = Path.wildcard(Path.join(@root, "lib/**/*.ex"))

    rust =
      Path.wildcard(Path.join(@root, "native/*/src/**/*.rs"))
      |> Enum.reject(&String.ends_with?(Path.basename(&1), "tests.rs"))

    elixir ++ rust
  end

  # A Rust file's production lines: those before its test module.
  defp production(path) do
    lines = path |> File.read!() |> String.split("\n")

    if String.ends_with?(path, ".rs"),
      do: Enum.take_while(lines, &(not String.starts_with?(&1, "#[cfg(test)]"))),
      else: lines
  end

  @rust_fn ~r/^(\s*)(pub(\([a-z]+\))? )?(const )?(unsafe )?fn \w+/
  @elixir_fn ~r/^(\s*)(def|defp|defmacro|defmacrop) [\w?!]+/

  # {name line, length} of each function: from its head to the line that closes it at
  # its indentation (`}` or `end`); one-line Elixir functions (`, do:`) and Rust
  # declarations without a body are left out.
  defp functions(lines, rust?) do
    indexed = Enum.with_index(lines, 1)

    for {line, at} <- indexed,
        [_, indent | _] <- [Regex.run(if(rust?, do: @rust_fn, else: @elixir_fn), line)],
        body?(lines, at, rust?),
        close = if(rust?, do: indent <> "}", else: indent <> "end"),
        {_, end_at} <- [Enum.find(Enum.drop(indexed, at), fn {l, _} -> l == close end)] do
      {line, at, end_at - at + 1}
    end
  end

  defp body?(lines, at, true = _rust?) do
    head = lines |> Enum.drop(at - 1) |> Enum.take_while(&(not String.contains?(&1, "{")))
    not Enum.any?(head, &String.ends_with?(String.trim_trailing(&1), ";"))
  end

  defp body?(lines, at, false) do
    head =
      lines
      |> Enum.drop(at - 1)
      |> Enum.reduce_while([], fn l, acc ->
        if String.contains?(l, "do:") or Regex.match?(~r/\sdo$/, l),
          do: {:halt, [l | acc]},
          else: {:cont, [l | acc]}
      end)

    Regex.match?(~r/\sdo$/, hd(head))
  end

  defp says_why?(lines, at, what) do
    lines
    |> Enum.take(at - 1)
    |> Enum.reverse()
    |> Enum.take_while(&Regex.match?(~r/^\s*(#|\/\/|@|#\[)/, &1))
    |> Enum.any?(&String.contains?(&1, what))
  end

  test "no production file over #{@max_file} lines unless it says why" do
    long =
      for path <- files(),
          lines = production(path),
          length(lines) > @max_file,
          not Enum.any?(lines, &String.contains?(&1, "Longer than #{@max_file} lines because")),
          do: "#{Path.relative_to(path, @root)}: #{length(lines)} lines"

    assert long == []
  end

  test "no function over #{@max_fun} lines unless the comment above it says why" do
    long =
      for path <- files(),
          lines = production(path),
          {head, at, length} <- functions(lines, String.ends_with?(path, ".rs")),
          length > @max_fun,
          not says_why?(lines, at, "Longer than #{@max_fun} lines because"),
          do: "#{Path.relative_to(path, @root)}:#{at}: #{String.trim(head)} (#{length} lines)"

    assert long == []
  end

  test "the check finds a long function and a long file" do
    long_fn = ["  def f do"] ++ List.duplicate("    :ok", 70) ++ ["  end"]
    assert [{_, 1, 72}] = functions(long_fn, false)
    assert [] = functions(["  def f, do: :ok"], false)
    rust = ["pub fn f() {"] ++ List.duplicate("    x();", 61) ++ ["}"]
    assert [{_, 1, 63}] = functions(rust, true)
    assert [] = functions(["    fn g(&self) -> u8;"], true)
  end
end
