defmodule NativeGossip.Detector do
  @moduledoc false
  # Failure detection: whether a connected peer whose heartbeats stopped is dead. Like
  # NativeGossip.Connector it only decides: each function takes what happened and the
  # detector's state and returns `{events, effects, detector}`, and the topology server
  # carries the effects out (NativeGossip.Topology.Result).
  #
  # Confirm, then act. When the native side reports a connected peer `:lost` (no
  # heartbeat for :lost_after), the peer becomes suspect and is probed, all at once:
  #
  #   - directly, over this node's distribution connection with it: a call to its
  #     net_kernel (every distributed node answers it), answered within :probe_timeout;
  #   - indirectly, through up to :indirect_probes other members connected to this node
  #     (NativeGossip.Prober on each): each probes the peer over its own connection and
  #     says :ok, :failed, or :not_connected (it has no connection to the peer: a
  #     partial mesh; it then does not probe at all, so it never makes a connection).
  #
  # Any :ok, or a heartbeat heard again, and the peer is alive (a lost peer that stays
  # connected is probed again every :lost_after while it stays lost). Only when every
  # probe failed or went unanswered within the timeout is it declared dead: the
  # topology disconnects it (its :disconnect function), so :nodedown fires here at once
  # instead of after net_ticktime (45 to 75 s by default). Each member decides for
  # itself, from the heartbeats it hears and its own probes (docs/PROTOCOL.md, "Failure
  # detection", says why that is enough). A peer declared dead that is heard again is
  # discovered and connected as any other.
  #
  # What the owner is told. Silence alone is no news about a connected peer: lost
  # multicast datagrams make it (at 10 % loss some pair of a cluster is silent for
  # :lost_after every few seconds), and the connection says more. So the detector, not
  # the native side, decides when a peer is published `:lost`: at once for a peer that
  # is not connected (or with detection off), as before; for a connected one only when
  # its probes fail (`:lost`, then `:dead`) or its connection goes down while it is
  # still silent. A connected peer found alive is shown `:alive` by members/1, and its
  # heartbeats heard again are no news either: the topology does not announce it
  # `:discovered` (see silent?/2).

  # Why a probe concluded as it did, for the :dead event: the direct probe's outcome,
  # and each helper's.
  @type outcome :: :ok | :failed | :timeout | :not_connected
  @type evidence :: %{direct: outcome(), indirect: %{node() => outcome()}}

  @type probe :: %{
          node: node(),
          direct: outcome() | :pending,
          indirect: %{node() => outcome() | :pending}
        }

  defstruct enabled: true,
            timeout: 300,
            helpers: 3,
            lost_after: 4_500,
            next: 0,
            probes: %{},
            probing: %{},
            lost: MapSet.new(),
            dead: MapSet.new(),
            evidence: %{}

  @type t :: %__MODULE__{
          enabled: boolean(),
          timeout: pos_integer(),
          helpers: non_neg_integer(),
          lost_after: pos_integer(),
          next: non_neg_integer(),
          probes: %{non_neg_integer() => probe()},
          probing: %{node() => non_neg_integer()},
          lost: MapSet.t(node()),
          dead: MapSet.t(node()),
          evidence: %{node() => evidence()}
        }

  @typedoc """
  Peer events: the peer is silent and not known to be alive (`:lost`), is being
  probed (`:suspect`), or was declared dead.
  """
  @type events :: [{:lost | :suspect | :dead, node()}]

  @typedoc """
  What the topology server does for the detector:

  - `{:ping, node, id}`: probe `node` directly, and hand the outcome to `answer/4` as
    from `:direct`;
  - `{:ask, helper, node, id}`: ask `helper`'s NativeGossip.Prober to probe `node`, and
    hand its answer to `answer/4` as from `helper`;
  - `{:timer, id, ms}`: call `timeout/2` with `id` after `ms`;
  - `{:reprobe, node, ms}`: call `still_lost/3` for `node` after `ms`;
  - `{:disconnect, node}`: disconnect `node` (the topology's :disconnect function);
  - `{:state, node, :suspect | :dead | :alive | nil}`: what `members/1` shows for
    `node` while the native side says it is lost (nil: `:lost`).
  """
  @type effect ::
          {:ping, node(), non_neg_integer()}
          | {:ask, node(), node(), non_neg_integer()}
          | {:timer, non_neg_integer(), pos_integer()}
          | {:reprobe, node(), pos_integer()}
          | {:disconnect, node()}
          | {:state, node(), :suspect | :dead | :alive | nil}
  @type result :: {events(), [effect()], t()}

  @doc "A detector with a topology's options."
  @spec new(NativeGossip.Options.t()) :: t()
  def new(options) do
    %__MODULE__{
      enabled: options.failure_detection,
      timeout: options.probe_timeout,
      helpers: options.indirect_probes,
      lost_after: options.lost_after
    }
  end

  @doc """
  A peer went silent (the native side's `:lost`). `helpers`: the other members this
  node is connected to, in the order to ask them (the server shuffles them), at most
  `:indirect_probes` of which are asked; nil when the peer itself is not connected
  (then there is nothing to confirm or to act on: it is published `:lost` at once).
  """
  @spec lost(t(), node(), [node()] | nil) :: result()
  def lost(%__MODULE__{enabled: false} = d, node, _helpers), do: {[lost: node], [], d}
  def lost(d, node, nil), do: {[lost: node], [], d}

  def lost(d, node, helpers) do
    d = %{d | lost: MapSet.put(d.lost, node)}

    if Map.has_key?(d.probing, node),
      do: {[], [], d},
      else: probe(d, node, helpers, [suspect: node], [{:state, node, :suspect}])
  end

  @doc """
  The reprobe of a peer that answered while lost came due: probed again if it is still
  lost, and connected (`helpers` is nil when it is not), else nothing.
  """
  @spec still_lost(t(), node(), [node()] | nil) :: result()
  def still_lost(d, node, helpers) do
    if helpers == nil or Map.has_key?(d.probing, node) or not MapSet.member?(d.lost, node),
      do: {[], [], d},
      else: probe(d, node, helpers, [], [{:state, node, :suspect}])
  end

  defp probe(d, node, helpers, events, effects) do
    id = d.next
    asked = helpers |> List.delete(node) |> Enum.take(d.helpers)

    probe = %{
      node: node,
      direct: :pending,
      indirect: Map.new(asked, &{&1, :pending})
    }

    effects =
      effects ++
        [{:ping, node, id}] ++
        Enum.map(asked, &{:ask, &1, node, id}) ++ [{:timer, id, d.timeout}]

    d = %{
      d
      | next: id + 1,
        probes: Map.put(d.probes, id, probe),
        probing: Map.put(d.probing, node, id),
        dead: MapSet.delete(d.dead, node)
    }

    {events, effects, d}
  end

  @doc """
  A probe answered: `from` is `:direct` or the helper that probed. An `:ok` ends the
  suspicion at once; the last failure ends it as dead.
  """
  @spec answer(t(), non_neg_integer(), :direct | node(), outcome()) :: result()
  def answer(d, id, from, outcome) do
    case d.probes do
      %{^id => %{indirect: asked} = probe} when from == :direct or is_map_key(asked, from) ->
        probe = record(probe, from, outcome)

        cond do
          outcome == :ok -> alive(d, id, probe)
          pending?(probe) -> {[], [], %{d | probes: Map.put(d.probes, id, probe)}}
          true -> dead(d, id, probe)
        end

      _ ->
        # Late, for a suspicion already ended, or from a member that was not asked.
        {[], [], d}
    end
  end

  @doc "The probe's time is up: what has not answered has failed."
  @spec timeout(t(), non_neg_integer()) :: result()
  def timeout(d, id) do
    case d.probes do
      %{^id => probe} ->
        indirect = Map.new(probe.indirect, fn {h, o} -> {h, expire(o)} end)
        dead(d, id, %{probe | direct: expire(probe.direct), indirect: indirect})

      _ ->
        {[], [], d}
    end
  end

  @doc """
  Whether `node` is connected and silent but was never published `:lost` (it is
  being probed, or answered its probes): its heartbeats heard again are no news, and
  the topology does not announce it `:discovered` (nor `:connected`, which it still is).
  """
  @spec silent?(t(), node()) :: boolean()
  def silent?(d, node), do: MapSet.member?(d.lost, node)

  @doc """
  The native side reported the peer again (heard, back, left, forgotten), or it came
  up: any suspicion of it, and its death, end without a verdict.
  """
  @spec clear(t(), node()) :: result()
  def clear(d, node) do
    was =
      Map.has_key?(d.probing, node) or MapSet.member?(d.dead, node) or
        MapSet.member?(d.lost, node)

    d = cancel(d, node)

    d = %{
      d
      | lost: MapSet.delete(d.lost, node),
        dead: MapSet.delete(d.dead, node),
        evidence: Map.delete(d.evidence, node)
    }

    {[], if(was, do: [{:state, node, nil}], else: []), d}
  end

  @doc """
  The peer's connection went down (by this detector's disconnect, or otherwise): a
  probe under way ends without a verdict, and it is not probed again until it is
  connected and lost again. A peer that was silent, and not yet published, is
  published `:lost` now: nothing says it is alive any more. A peer declared dead stays
  so until it is heard.
  """
  @spec down(t(), node()) :: result()
  def down(d, node) do
    silent? = MapSet.member?(d.lost, node)
    d = %{cancel(d, node) | lost: MapSet.delete(d.lost, node)}
    if silent?, do: {[lost: node], [{:state, node, nil}], d}, else: {[], [], d}
  end

  defp cancel(d, node) do
    case Map.pop(d.probing, node) do
      {nil, _} -> d
      {id, probing} -> %{d | probing: probing, probes: Map.delete(d.probes, id)}
    end
  end

  @doc "Why the peer was last declared dead (see `t:evidence/0`), if it was."
  @spec evidence(t(), node()) :: evidence() | nil
  def evidence(d, node), do: Map.get(d.evidence, node)

  defp expire(:pending), do: :timeout
  defp expire(outcome), do: outcome

  defp record(probe, :direct, outcome), do: %{probe | direct: outcome}

  defp record(probe, helper, outcome),
    do: %{probe | indirect: Map.put(probe.indirect, helper, outcome)}

  defp pending?(probe),
    do: probe.direct == :pending or Enum.any?(probe.indirect, fn {_, o} -> o == :pending end)

  defp alive(d, id, probe) do
    d = end_probe(d, id, probe.node)
    # Still lost (no heartbeat) but alive: shown so, and probed again while it stays so.
    {[], [{:state, probe.node, :alive}, {:reprobe, probe.node, d.lost_after}], d}
  end

  # Every probe failed, went unanswered, or could not be made (a helper not connected
  # to the peer): dead. A helper without a connection is no evidence either way; the
  # direct probe over this node's own connection has failed, with the heartbeats.
  defp dead(d, id, probe) do
    if probe.direct == :ok or Enum.any?(probe.indirect, fn {_, o} -> o == :ok end) do
      alive(d, id, probe)
    else
      node = probe.node
      evidence = %{direct: probe.direct, indirect: probe.indirect}
      d = end_probe(d, id, node)

      d = %{
        d
        | lost: MapSet.delete(d.lost, node),
          dead: MapSet.put(d.dead, node),
          evidence: Map.put(d.evidence, node, evidence)
      }

      {[lost: node, dead: node], [{:state, node, :dead}, {:disconnect, node}], d}
    end
  end

  defp end_probe(d, id, node) do
    %{d | probes: Map.delete(d.probes, id), probing: Map.delete(d.probing, node)}
  end
end
