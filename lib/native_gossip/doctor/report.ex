defmodule NativeGossip.Doctor.Report do
  @moduledoc false
  # How the doctor reports: a line per check, "ok", "note" or "PROBLEM" with its fix;
  # each returns a list of :ok or :problem, which the task counts.

  def info(text), do: Mix.shell().info(text)

  def ok(text), do: [info("ok      " <> text) && :ok]

  def problem(text, fix) do
    info("PROBLEM " <> text)
    info("        fix: " <> fix)
    [:problem]
  end

  def note(text), do: [info("note    " <> text) && :ok]
end
