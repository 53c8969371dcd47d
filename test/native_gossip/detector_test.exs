defmodule NativeGossip.DetectorTest do
  # Failure detection's decisions alone: the events and effects the detector returns
  # for what happens to a peer. No process, probe or timer is involved.
  use ExUnit.Case, async: true

  alias NativeGossip.Detector

  defp new(opts \\ []) do
    Detector.new(%{
      failure_detection: Keyword.get(opts, :enabled, true),
      probe_timeout: 500,
      indirect_probes: Keyword.get(opts, :helpers, 3),
      lost_after: 4_500
    })
  end

  defp probes(effects) do
    for e <- effects, elem(e, 0) in [:ping, :ask], do: e
  end

  test "a connected peer gone silent is suspect and probed directly and through k members" do
    {events, effects, d} = Detector.lost(new(), :c@h, [:a@h, :b@h, :d@h, :e@h])
    assert events == [suspect: :c@h]
    assert {:state, :c@h, :suspect} in effects
    # The direct probe and three helpers, at once, with one timer.
    assert probes(effects) == [
             {:ping, :c@h, 0},
             {:ask, :a@h, :c@h, 0},
             {:ask, :b@h, :c@h, 0},
             {:ask, :d@h, :c@h, 0}
           ]

    assert {:timer, 0, 500} in effects
    # Reported lost again while probed: nothing more.
    assert {[], [], ^d} = Detector.lost(d, :c@h, [:a@h])
  end

  test "any probe answered: alive, never published lost, probed again while it stays silent" do
    {_, _, d} = Detector.lost(new(), :c@h, [:a@h, :b@h])
    assert Detector.silent?(d, :c@h)
    {[], [], d} = Detector.answer(d, 0, :direct, :failed)
    {events, effects, d} = Detector.answer(d, 0, :b@h, :ok)
    assert events == []
    refute Enum.any?(effects, &match?({:disconnect, _}, &1))
    # members/1 shows it alive: its connection answers.
    assert {:state, :c@h, :alive} in effects
    assert Detector.silent?(d, :c@h)
    assert {:reprobe, :c@h, 4_500} in effects
    # The probe is over: the timeout and late answers change nothing.
    assert {[], [], ^d} = Detector.timeout(d, 0)
    assert {[], [], ^d} = Detector.answer(d, 0, :a@h, :failed)

    # The reprobe: still lost and connected, so probed again (no new :suspect event).
    {[], effects, d} = Detector.still_lost(d, :c@h, [:a@h])
    assert probes(effects) == [{:ping, :c@h, 1}, {:ask, :a@h, :c@h, 1}]
    # Heard again meanwhile: no event, its state cleared, the next reprobe does nothing.
    {[], [{:state, :c@h, nil}], d} = Detector.clear(d, :c@h)
    refute Detector.silent?(d, :c@h)
    assert {[], [], _} = Detector.still_lost(d, :c@h, [:a@h])
  end

  test "a silent peer whose connection goes down is published lost then" do
    {_, _, d} = Detector.lost(new(), :c@h, [:a@h])
    {[], _, d} = Detector.answer(d, 0, :direct, :ok)
    assert {[lost: :c@h], [{:state, :c@h, nil}], d} = Detector.down(d, :c@h)
    refute Detector.silent?(d, :c@h)
    # Once.
    assert {[], [], _} = Detector.down(d, :c@h)
  end

  test "every probe failed or went unanswered: lost, dead, disconnected, with the evidence" do
    {_, _, d} = Detector.lost(new(), :c@h, [:a@h, :b@h, :x@h])
    {[], [], d} = Detector.answer(d, 0, :a@h, :failed)
    {[], [], d} = Detector.answer(d, 0, :x@h, :not_connected)
    {events, effects, d} = Detector.timeout(d, 0)
    assert events == [lost: :c@h, dead: :c@h]
    assert {:disconnect, :c@h} in effects
    assert {:state, :c@h, :dead} in effects

    assert Detector.evidence(d, :c@h) == %{
             direct: :timeout,
             indirect: %{a@h: :failed, b@h: :timeout, x@h: :not_connected}
           }

    # Its connection goes down (our disconnect): it stays dead until heard again.
    {[], [], d} = Detector.down(d, :c@h)
    assert MapSet.member?(d.dead, :c@h)
    {[], [{:state, :c@h, nil}], d} = Detector.clear(d, :c@h)
    refute MapSet.member?(d.dead, :c@h)
    assert Detector.evidence(d, :c@h) == nil
  end

  test "the last failure concludes at once, without waiting for the timer" do
    {_, _, d} = Detector.lost(new(helpers: 1), :c@h, [:a@h])
    {[], [], d} = Detector.answer(d, 0, :a@h, :not_connected)
    assert {[lost: :c@h, dead: :c@h], _, _} = Detector.answer(d, 0, :direct, :failed)
  end

  test "no member to ask: the direct probe decides" do
    {_, effects, d} = Detector.lost(new(), :c@h, [])
    assert probes(effects) == [{:ping, :c@h, 0}]
    assert {[], _, _} = Detector.answer(d, 0, :direct, :ok)
    assert {[lost: :c@h, dead: :c@h], _, _} = Detector.answer(d, 0, :direct, :failed)
  end

  test "a peer that is not connected, or detection turned off: published lost at once" do
    assert {[lost: :c@h], [], d} = Detector.lost(new(), :c@h, nil)
    refute Detector.silent?(d, :c@h)
    assert {[lost: :c@h], [], _} = Detector.lost(new(enabled: false), :c@h, [:a@h])
  end

  test "a connection that goes down while probing ends the probe: lost, no verdict" do
    {_, _, d} = Detector.lost(new(), :c@h, [:a@h])
    {[lost: :c@h], [{:state, :c@h, nil}], d} = Detector.down(d, :c@h)
    assert {[], [], _} = Detector.timeout(d, 0)
  end

  test "an answer from a member that was not asked counts for nothing" do
    {_, _, d} = Detector.lost(new(helpers: 1), :c@h, [:a@h])
    {[], [], d} = Detector.answer(d, 0, :intruder@h, :ok)
    assert {[lost: :c@h, dead: :c@h], _, _} = Detector.timeout(d, 0)
  end
end
