# `make docs-check`: the HexDocs pages that `mix docs` wrote into doc/, opened in
# headless Chromium (the DOM after the pages' JavaScript ran, so the sidebar and the
# search are there), fail on a broken internal link (a page that is not there, or an
# anchor no element of that page has) or an image that is not there. External links
# are not followed (the check runs in a private network namespace).
#
#   elixir .ci/docs-check.exs [doc]

dir = Path.expand(List.first(System.argv()) || "doc")
chromium = Enum.find_value(~w(chromium chromium-browser google-chrome), &System.find_executable/1)

chromium ||
  (IO.puts(:stderr, "docs-check: needs chromium (apt-get install chromium)") && System.halt(1))

pages = dir |> Path.join("*.html") |> Path.wildcard() |> Enum.sort()

pages != [] ||
  (IO.puts(:stderr, "docs-check: no pages in #{dir}: run mix docs") && System.halt(1))

profile = Path.join(System.tmp_dir!(), "docs-check-#{System.unique_integer([:positive])}")

dom = fn page ->
  args =
    ~w(--headless --no-sandbox --disable-gpu --no-first-run --disable-extensions) ++
      [
        "--user-data-dir=#{profile}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        "file://" <> page
      ]

  # (Chromium's own complaints, about D-Bus and the like, go to /dev/null.)
  case System.cmd("sh", ["-c", ~s(exec "$0" "$@" 2>/dev/null), chromium | args]) do
    {html, 0} -> html
    {_, status} -> raise "chromium exited #{status} on #{page}"
  end
end

doms = Map.new(pages, fn page -> {Path.basename(page), dom.(page)} end)
File.rm_rf!(profile)

ids = fn html ->
  Regex.scan(~r/\sid="([^"]+)"/, html, capture: :all_but_first) |> List.flatten() |> MapSet.new()
end

ids = Map.new(doms, fn {name, html} -> {name, ids.(html)} end)

attr = fn html, tag, name ->
  Regex.scan(~r/<#{tag}\b[^>]*\s#{name}="([^"]*)"/, html, capture: :all_but_first)
  |> List.flatten()
end

internal? = fn url -> not String.match?(url, ~r/^([a-z][a-z0-9+.-]*:|\/\/)/i) end
decode = fn s -> s |> String.replace("&amp;", "&") |> URI.decode() end

problems =
  for {name, html} <- doms,
      {kind, url} <-
        Enum.map(attr.(html, "a", "href"), &{:link, &1}) ++
          Enum.map(attr.(html, "img", "src"), &{:image, &1}),
      url != "" and internal?.(url),
      problem =
        (
          [file | anchor] = String.split(decode.(url), "#", parts: 2)
          target = if file == "", do: name, else: file
          path = Path.expand(target, Path.dirname(Path.join(dir, name)))

          cond do
            not File.exists?(path) ->
              "#{name}: #{kind} #{url}: #{target} is not there"

            kind == :link and anchor != [] and anchor != [""] and Path.extname(path) == ".html" and
                not MapSet.member?(Map.get(ids, Path.basename(path), MapSet.new()), hd(anchor)) ->
              "#{name}: link #{url}: no element with id #{hd(anchor)} in #{Path.basename(path)}"

            true ->
              nil
          end
        ),
      problem != nil,
      uniq: true,
      do: problem

links = doms |> Map.values() |> Enum.map(&length(attr.(&1, "a", "href"))) |> Enum.sum()

if problems == [] do
  IO.puts("docs-check: #{map_size(doms)} pages, #{links} links and every image checked")
else
  IO.puts(:stderr, "docs-check: #{length(problems)} broken:\n  " <> Enum.join(problems, "\n  "))
  System.halt(1)
end
