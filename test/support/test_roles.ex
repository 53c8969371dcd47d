defmodule NativeGossip.TestRoles do
  @moduledoc false
  # The :connect_if of the multi-host tests: a coordinator connects to every peer, a
  # worker to coordinators only (so workers never connect to each other).
  def connect?("coordinator", _node, _tags), do: true
  def connect?("worker", _node, tags), do: tags["role"] == "coordinator"
end
