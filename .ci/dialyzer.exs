# Dialyzer on the library (the modules compiled from lib/), run by `make dialyzer` with
# `mix run --no-start .ci/dialyzer.exs` (Debian: erlang-dialyzer). No dialyxir: hex is
# not reachable here, and :dialyzer's own API is enough.
#
# The PLT (OTP's, Elixir's and the dependencies' modules) is built once and kept under
# _build/dialyzer/, named by the OTP and Elixir versions: about two minutes the first
# time, a few seconds after. Any warning fails the run.

defmodule NativeGossip.Dialyzer do
  @otp_apps [:erts, :kernel, :stdlib, :crypto, :compiler]
  @elixir_apps [:elixir, :logger, :mix, :eex]
  @flags [:unmatched_returns, :extra_return, :missing_return]

  def run do
    lib = Path.expand("lib")
    ebin = Mix.Project.compile_path()

    # Only what lib/ compiles to: in MIX_ENV=test, test/support is compiled beside it.
    files =
      for beam <- Path.wildcard(Path.join(ebin, "*.beam")),
          module = beam |> Path.basename(".beam") |> String.to_atom(),
          {:module, _} = Code.ensure_loaded(module),
          source = to_string(module.module_info(:compile)[:source]),
          String.starts_with?(source, lib <> "/"),
          do: String.to_charlist(beam)

    plt = ensure_plt!()
    IO.puts("dialyzer: #{length(files)} modules of lib/ (PLT #{Path.relative_to_cwd(plt)})")

    warnings =
      :dialyzer.run(
        analysis_type: :succ_typings,
        files: files,
        plts: [String.to_charlist(plt)],
        check_plt: false,
        warnings: @flags
      )

    for w <- warnings, do: IO.puts(:dialyzer.format_warning(w, filename_opt: :fullpath))

    if warnings == [] do
      IO.puts("dialyzer: no warnings")
    else
      IO.puts(:stderr, "dialyzer: #{length(warnings)} warning(s)")
      System.halt(1)
    end
  end

  defp ensure_plt! do
    otp = :erlang.system_info(:otp_release)
    dir = Path.join(Mix.Project.build_path() |> Path.dirname(), "dialyzer")
    plt = Path.join(dir, "otp#{otp}-elixir#{System.version()}.plt")

    # The dependencies' modules too (rustler_precompiled's calls from the NIF's module).
    deps =
      for dep <- Path.wildcard(Path.join(Mix.Project.build_path(), "lib/*/ebin")),
          Path.basename(Path.dirname(dep)) != "native_gossip",
          do: dep

    dirs = Enum.map(@otp_apps ++ @elixir_apps, &Path.join(:code.lib_dir(&1), "ebin")) ++ deps

    unless File.exists?(plt) do
      File.mkdir_p!(dir)
      IO.puts("dialyzer: building the PLT #{Path.relative_to_cwd(plt)} (once; about two minutes)")

      _ =
        :dialyzer.run(
          analysis_type: :plt_build,
          output_plt: String.to_charlist(plt),
          files_rec: Enum.map(dirs, &String.to_charlist/1),
          warnings: []
        )
    end

    plt
  end
end

NativeGossip.Dialyzer.run()
