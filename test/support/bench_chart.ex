defmodule NativeGossip.BenchChart do
  @moduledoc false
  # The formation chart of bench/formation.exs as a standalone SVG (no dependencies):
  # median with min-max whiskers per series; log2 x axis (nodes), log10 y axis (ms).

  @doc "`series` is `[{label, color, [{nodes, %{median:, min:, max:}}]}]`."
  def formation_svg(series, sizes) do
    {w, h, left, right, top, bottom} = {900, 440, 70, 300, 40, 50}

    values =
      Enum.flat_map(series, fn {_, _, pts} ->
        Enum.flat_map(pts, fn {_, s} -> [s.min, s.max] end)
      end)

    {ylo, yhi} =
      {floor(:math.log10(max(Enum.min(values), 0.1))), ceil(:math.log10(Enum.max(values)))}

    {xlo, xhi} = {:math.log2(hd(sizes)), :math.log2(List.last(sizes))}
    x = fn n -> left + (:math.log2(n) - xlo) / max(xhi - xlo, 1) * (w - left - right) end

    y = fn v ->
      top + (1 - (:math.log10(max(v, 0.1)) - ylo) / max(yhi - ylo, 1)) * (h - top - bottom)
    end

    f = fn v -> :erlang.float_to_binary(v / 1, decimals: 1) end

    grid =
      for e <- ylo..yhi do
        v = :math.pow(10, e)

        ~s(<line x1="#{left}" x2="#{w - right}" y1="#{f.(y.(v))}" y2="#{f.(y.(v))}" stroke="#ddd"/>) <>
          ~s(<text x="#{left - 8}" y="#{f.(y.(v) + 4)}" text-anchor="end" font-size="12">#{round(v)}</text>)
      end

    xticks =
      for n <- sizes do
        ~s(<text x="#{f.(x.(n))}" y="#{h - bottom + 18}" text-anchor="middle" font-size="12">#{n}</text>)
      end

    lines =
      for {{label, color, pts}, i} <- Enum.with_index(series) do
        path = Enum.map_join(pts, " ", fn {n, s} -> "#{f.(x.(n))},#{f.(y.(s.median))}" end)

        whiskers =
          for {n, s} <- pts do
            ~s(<line x1="#{f.(x.(n))}" x2="#{f.(x.(n))}" y1="#{f.(y.(s.min))}" y2="#{f.(y.(s.max))}" stroke="#{color}"/>) <>
              ~s(<circle cx="#{f.(x.(n))}" cy="#{f.(y.(s.median))}" r="3" fill="#{color}"/>)
          end

        ~s(<polyline points="#{path}" fill="none" stroke="#{color}" stroke-width="2"/>) <>
          Enum.join(whiskers) <>
          ~s(<rect x="#{w - right + 15}" y="#{top + i * 22}" width="12" height="12" fill="#{color}"/>) <>
          ~s(<text x="#{w - right + 32}" y="#{top + i * 22 + 11}" font-size="12">#{label}</text>)
      end

    """
    <svg xmlns="http://www.w3.org/2000/svg" width="#{w}" height="#{h}" font-family="sans-serif">
    <rect width="100%" height="100%" fill="white"/>
    <text x="#{left}" y="20" font-size="14">Time until every node is connected to all others (ms, log scale; median and min-max)</text>
    #{Enum.join(grid, "\n")}
    #{Enum.join(xticks, "\n")}
    <text x="#{(left + w - right) / 2}" y="#{h - 10}" text-anchor="middle" font-size="12">nodes started together</text>
    #{Enum.join(lines, "\n")}
    </svg>
    """
  end
end
