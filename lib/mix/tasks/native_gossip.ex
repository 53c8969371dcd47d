defmodule NativeGossip.MixTask do
  @moduledoc false
  # What the mix tasks share: their arguments, the project compiled, the NIF loaded.

  @doc "Parses `argv` strictly, compiles, checks the NIF; returns the options."
  @spec prepare!([String.t()], keyword()) :: keyword()
  def prepare!(argv, switches) do
    {opts, _, invalid} = OptionParser.parse(argv, strict: switches)
    if invalid != [], do: Mix.raise("unknown or invalid options: #{inspect(invalid)}")
    Mix.Task.run("compile")

    if error = NativeGossip.Native.load_error(),
      do: Mix.raise("the NativeGossip NIF could not be loaded: #{error}")

    opts
  end
end
