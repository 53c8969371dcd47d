defmodule NativeGossip.OptionsPropertyTest do
  # Option validation never raises, whatever it is given: each option key gets random
  # terms of every kind (a small generator of our own, seeded: the seed is printed on
  # failure by ExUnit), and validate/1 answers {:ok, options} or
  # {:error, {:invalid_option, key, reason}} with a sentence.
  use ExUnit.Case, async: true

  alias NativeGossip.Options

  @keys [:name | Keyword.keys(Options.defaults())] ++ [:no_such_option]

  # A random term of depth at most `depth`.
  defp term(0), do: leaf()

  defp term(depth) do
    case :rand.uniform(8) do
      1 -> Enum.map(1..:rand.uniform(4), fn _ -> term(depth - 1) end)
      2 -> List.to_tuple(Enum.map(1..:rand.uniform(4), fn _ -> term(depth - 1) end))
      3 -> Map.new(1..:rand.uniform(3), fn _ -> {term(depth - 1), term(depth - 1)} end)
      4 -> [{Enum.random([:a, :role, "k"]), term(depth - 1)}]
      _ -> leaf()
    end
  end

  defp leaf do
    Enum.random([
      fn -> Enum.random([nil, true, false, :infinity, :libcluster, :lan, :"", :eth0]) end,
      fn -> :rand.uniform(200_000) - 100_000 end,
      fn -> Enum.random([0, 1, 65_535, 65_536, -1, 10, 1_000, 86_400_001, 2 ** 70]) end,
      fn -> :rand.uniform() * 1000 end,
      fn -> :crypto.strong_rand_bytes(:rand.uniform(70) - 1) end,
      fn ->
        Enum.random(["", "eth0", "10.0.0.1", "ff02::1", "239.1.1.1", "h:1", "[::1]:9", "ü"])
      end,
      fn -> Enum.random([~c"10.0.0.1", ~c"not an ip", [300, 1]]) end,
      fn -> Enum.random([{10, 0, 0, 1}, {239, 1, 2, 3}, {1, 2, 3}, {65_536, 0, 0, 0}]) end,
      fn -> Enum.random([{:m, :f, []}, {"m", :f, []}, {:m, :f}, &Kernel.is_atom/1]) end,
      fn -> Enum.random([self(), make_ref()]) end
    ]).()
  end

  test "validate/1 never raises, and every refusal names its key and says why" do
    :rand.seed(:exsss, {101, 202, 303})

    for _ <- 1..3_000 do
      key = Enum.random(@keys)
      opts = [name: :lan] |> Keyword.put(key, term(3))

      case Options.validate(opts) do
        {:ok, %Options{}} ->
          :ok

        {:error, {:invalid_option, k, reason}} ->
          assert is_atom(k) and is_binary(reason) and reason != "", inspect(opts)

        other ->
          flunk("validate(#{inspect(opts)}) returned #{inspect(other)}")
      end
    end
  end

  test "tags/1 (set_tags) never raises either" do
    :rand.seed(:exsss, {7, 8, 9})

    for _ <- 1..2_000 do
      v = term(3)

      case Options.tags(v) do
        {:ok, tags} -> assert is_map(tags)
        {:error, reason} -> assert is_binary(reason)
      end
    end
  end
end
