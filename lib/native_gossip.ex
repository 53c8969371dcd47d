defmodule NativeGossip do
  @moduledoc """
  Zero-configuration clustering for BEAM nodes on one network, by UDP multicast
  heartbeats handled in a native thread.

  Each running topology owns a multicast socket on a dedicated OS thread (a Rust NIF).
  The thread sends this node's heartbeats, receives, authenticates and decodes the
  others', and tells a small server process when a peer appears, comes back, leaves or
  goes quiet. The server connects to new peers with `:net_kernel.connect_node/1` (or
  your `connect` function) in separate processes, so a slow or dead peer never blocks
  it. Nodes find each other within milliseconds of starting.

  ## Standalone

  Add a topology to your supervision tree:

      children = [
        {NativeGossip, name: :lan, secret: System.fetch_env!("CLUSTER_SECRET")}
      ]

      Supervisor.start_link(children, strategy: :one_for_one)

  or configure topologies that start with the `:native_gossip` application:

      # config/runtime.exs
      config :native_gossip,
        topologies: [
          lan: [secret: System.fetch_env!("CLUSTER_SECRET"), heartbeat_interval: 1_500]
        ]

  Then start two nodes (`iex --sname a -S mix`, `iex --sname b -S mix`) on hosts of one
  network: they are connected within milliseconds.

  ## With libcluster

  `NativeGossip.Strategy` is a libcluster strategy; see its documentation.

  ## From environment variables (releases)

  `options_from_env/1` reads the options a deployment usually sets from `NATIVE_GOSSIP_*`
  variables, for `config/runtime.exs`:

      # config/runtime.exs
      import Config

      config :native_gossip,
        topologies: [lan: NativeGossip.options_from_env()]

  With `NATIVE_GOSSIP_SECRET=... NATIVE_GOSSIP_SEEDS=cluster.ns.svc` set, that is
  `[secret: "...", seeds: ["cluster.ns.svc"]]`. See `options_from_env/1` for the list.

  ## Telemetry

  When the `:telemetry` library is loaded, peer events and dropped-datagram counts are
  emitted as telemetry events: see `NativeGossip.Telemetry`.

  ## Options

  A topology takes the options of `t:option/0`: only `:name` is required.

  ## Errors

  `start_link/1` returns:

    * `{:error, {:invalid_option, key, reason}}` for a bad option, without starting
      anything;
    * `{:error, {:port_in_use, message}}` when another program holds the port
      without `SO_REUSEADDR`;
    * `{:error, {:interface_unavailable, message}}` when `:multicast_if` names an
      address this host does not have. With the default interface, a group that cannot
      be joined yet (a link that is down, no multicast route) is not an error: the
      topology starts, logs a warning, and keeps trying in the background (every
      0.25–2 s); once joined it logs so, and announces itself as a newcomer. A joined
      topology also checks every 5 s that it still is a member (an interface that went
      away and came back has lost its memberships) and joins again if not;
    * `{:error, {:socket_error, message}}` for anything else the OS refuses;
    * `:ignore` (with a warning) when the node is not distributed.

  A peer named in the other style than this node (a short name such as `a@host` while
  this node was started with `--name`, or the reverse) is listed by `members/1` but
  never connected: distribution refuses such connections.

  Nothing received from the network can crash the server: every packet that is not a
  valid heartbeat is dropped in native code and counted by reason (see `stats/1`).
  """

  alias NativeGossip.{Native, Options, Topology}

  @typedoc "A topology's name."
  @type name :: atom()

  @defaults Options.defaults()

  @typedoc """
  An option of a topology (`start_link/1`, `child_spec/1`, `config :native_gossip,
  :topologies`, and `NativeGossip.Strategy`'s `:config`). Each is validated once, when
  the topology starts; a bad one is `{:error, {:invalid_option, key, reason}}`.


  #{NativeGossip.Options.Schema.doc()}
  """
  @type option :: unquote(NativeGossip.Options.Schema.option_type())

  @typedoc "A seed: `\"host\"`, `\"host:port\"`, `\"[v6]:port\"`, an address, or `{host, port}`."
  @type seed ::
          String.t()
          | :inet.ip_address()
          | {String.t() | charlist() | :inet.ip_address(), :inet.port_number()}

  @typedoc "A node's tags: strings to strings."
  @type tags :: %{optional(String.t()) => String.t()}

  @typedoc """
  Selects peers by their tags: every key must be present with that value (`[role:
  "web"]` or `%{"role" => "web"}`; atom keys stand for the strings).
  """
  @type tag_filter :: keyword(String.t()) | %{optional(String.t() | atom()) => String.t()}

  @typedoc "A row of `members/1`."
  @type member :: %{
          node: node(),
          address: :inet.ip_address(),
          port: :inet.port_number(),
          incarnation: non_neg_integer(),
          state: :alive | :lost | :suspect | :dead | :left,
          connected?: boolean(),
          last_seen: integer(),
          tags: tags(),
          dist_port: :inet.port_number() | 0
        }

  @typedoc "What `stats/1` returns."
  @type stats :: %{
          sent: non_neg_integer(),
          send_errors: non_neg_integer(),
          last_send_error: String.t() | nil,
          received: non_neg_integer(),
          looped_back: non_neg_integer(),
          accepted: non_neg_integer(),
          dropped: %{atom() => non_neg_integer()},
          events: non_neg_integer(),
          events_coalesced: non_neg_integer(),
          events_dropped: non_neg_integer(),
          unicast_withheld: non_neg_integer(),
          answers: non_neg_integer(),
          burst_skipped: non_neg_integer(),
          names_made: non_neg_integer(),
          peers: non_neg_integer(),
          incarnation: non_neg_integer(),
          joined: boolean(),
          other_clusters: [String.t()]
        }

  @doc """
  Starts a topology linked to the caller. See the module documentation for options
  and errors.
  """
  @spec start_link([option()]) :: GenServer.on_start()
  def start_link(opts) do
    with {:ok, options} <- Options.validate(opts) do
      Topology.start_link(options)
    end
  end

  @doc """
  A child specification; the child's id is `{NativeGossip, name}`, so several
  topologies can share a supervisor.
  """
  @spec child_spec([option()]) :: Supervisor.child_spec()
  def child_spec(opts) do
    %{
      id: {__MODULE__, Keyword.get(opts, :name)},
      start: {__MODULE__, :start_link, [opts]},
      type: :worker,
      shutdown: 5_000
    }
  end

  @doc """
  The peers this topology has heard, sorted by node name.

  `:state` is `:alive` (heard within `:lost_after`, or connected, silent and
  answering failure detection's probes), `:lost` (no heartbeat for `:lost_after`),
  `:suspect` (silent and being probed), `:dead` (declared dead by failure detection:
  disconnected) or `:left`. `:last_seen` is the time of the last accepted heartbeat in milliseconds since the
  Unix epoch (as `System.system_time(:millisecond)`); `:connected?` is whether the
  node is connected according to `:list_nodes`; `:dist_port` is the distribution port
  its heartbeats say (nodes run without epmd, `NativeGossip.EPMD`), 0 when they say
  none.
  """
  @spec members(name(), tag_filter()) :: [member()]
  def members(name, filter \\ []) do
    match = tag_matcher(filter)
    states = Topology.states!(name)

    name
    |> Topology.native!()
    |> Native.members()
    |> Enum.filter(&match.(&1.tags))
    |> Enum.map(fn row ->
      node = String.to_atom(row.node)
      %{row | node: node, state: detected(states, node, row.state)}
    end)
  end

  # A lost peer under failure detection: :suspect while probed, :dead once declared.
  defp detected(states, node, :lost) do
    case :ets.lookup(states, node) do
      [{^node, state}] -> state
      [] -> :lost
    end
  end

  defp detected(_states, _node, state), do: state

  @doc false
  # A function of a peer's tags: whether they match `filter` (see t:tag_filter/0).
  @spec tag_matcher(tag_filter()) :: (tags() -> boolean())
  def tag_matcher(filter) when is_list(filter) or is_map(filter) do
    wanted =
      Enum.map(filter, fn
        {k, v} when (is_atom(k) or is_binary(k)) and is_binary(v) ->
          {to_string(k), v}

        other ->
          raise ArgumentError, "a tag filter takes {key, string} pairs, got: #{inspect(other)}"
      end)

    fn tags -> Enum.all?(wanted, fn {k, v} -> Map.get(tags, k) == v end) end
  end

  @doc """
  Replaces this node's tags (see the `:tags` option) and announces them at once: peers
  see the change within one heartbeat's travel, and their subscribers get
  `{:native_gossip, name, :tags_changed, node}`. Returns `{:error, {:invalid_option,
  :tags, reason}}` for tags the option would refuse, and changes nothing then.

      :ok = NativeGossip.set_tags(:lan, %{"role" => "web", "draining" => "true"})
  """
  @spec set_tags(name(), tags() | keyword()) ::
          :ok | {:error, {:invalid_option, :tags, String.t()}}
  def set_tags(name, tags) do
    case Options.tags(tags) do
      {:ok, tags} -> GenServer.call(Topology.server!(name), {:set_tags, tags})
      {:error, reason} -> {:error, {:invalid_option, :tags, reason}}
    end
  end

  @doc """
  Waits until at least `count` peers are connected, or `{filter, count}`: that many
  connected peers whose tags match `filter` (see `t:tag_filter/0`). Returns `:ok`, or
  after `timeout` ms `{:error, {:timeout, connected}}` with how many matched then.

  For readiness probes, and for applications that must not start work alone:

      # in Application.start/2, after the topology is started
      :ok = NativeGossip.await_members(:lan, 2, 30_000)
      # three nodes tagged "role" => "db"
      NativeGossip.await_members(:lan, {[role: "db"], 3}, 10_000)

  "Connected" is what `members/2` reports as `connected?: true`: heard and connected.
  """
  @spec await_members(name(), non_neg_integer() | {tag_filter(), non_neg_integer()}, timeout()) ::
          :ok | {:error, {:timeout, non_neg_integer()}}
  def await_members(name, count, timeout \\ 5_000)

  def await_members(name, count, timeout) when is_integer(count) and count >= 0,
    do: await_members(name, {[], count}, timeout)

  def await_members(name, {filter, count}, timeout)
      when is_integer(count) and count >= 0 and
             ((is_integer(timeout) and timeout >= 0) or timeout == :infinity) do
    match = tag_matcher(filter)
    GenServer.call(Topology.server!(name), {:await_members, match, count, timeout}, :infinity)
  end

  @doc """
  Subscribes the caller to the topology's peer events. Until it unsubscribes or
  exits, it receives `{:native_gossip, name, event, node}` with `event`:

    * `:discovered` - a heartbeat from `node` was accepted for the first time, or for
      the first time since it was lost, or from a new incarnation (it restarted).
      When `node` is the side that connects first (a newcomer joining this running
      node, with a secret; of two nodes starting together, the one the pair's coin
      picks), this node announces it with its connection, or at the latest 100 ms
      after the heartbeat, when this side's own turn to connect comes (`members/2`
      lists it at once): on a busy host, a newcomer's first heartbeat then wakes no
      running node's VM before its handshake does.
    * `:connected` - `node` became connected (a connect attempt succeeded, or it
      connected to us), while its heartbeats are being heard.
    * `:disconnected` - the distribution connection to a known peer went down. Its
      next heartbeat triggers a reconnect.
    * `:left` - `node`'s topology stopped cleanly and said goodbye; it is not
      reconnected until it comes back with a new incarnation.
    * `:lost` - no heartbeat from `node` for `:lost_after` ms, and nothing says it
      is alive. With failure detection (`:failure_detection`, on by default) a
      connected peer is `:lost` only when its probes fail (then `:dead` follows) or
      its connection goes down while it is still silent: heartbeats lost on a lossy
      network make it `:suspect`, never `:lost`. A peer that is not connected, or
      any peer without failure detection, is `:lost` after `:lost_after` of silence.
      It is reported `:discovered` again if it is heard again.
    * `:suspect` - `node` is connected and sent no heartbeat for `:lost_after`: it is
      being probed. If a probe is answered nothing more is sent (heard again, it is
      not announced `:discovered`: it was never lost).
    * `:dead` - no probe of `node` was answered: it is disconnected (`:disconnected`
      and distribution's `:nodedown` follow; `:lost` came just before). What each probe gave is in the
      telemetry event's metadata and the warning logged.
    * `:tags_changed` - `node` changed its tags at run time (`set_tags/2`).

  Each event is sent once per change, not per heartbeat: the subscriber's mailbox
  receives one message per event, so a subscriber that cannot keep up with the
  cluster's churn should hand them on rather than do slow work per message. On
  subscribing, the caller first receives `:discovered` (and `:connected`) for the peers
  already known and not gone (a peer that left or is lost is not replayed), so a
  subscription made just after the topology started misses nothing. Subscribing twice
  is the same as once.
  """
  @spec subscribe(name()) :: :ok
  def subscribe(name), do: GenServer.call(Topology.server!(name), :subscribe)

  @doc "Stops the caller's subscription to the topology's events."
  @spec unsubscribe(name()) :: :ok
  def unsubscribe(name), do: GenServer.call(Topology.server!(name), :unsubscribe)

  @doc """
  Topology options from environment variables, for `config/runtime.exs` in releases.
  Only the variables that are set (and not empty) become options; merge your own on
  top, or pass the result to `Keyword.merge/2` with defaults.

  | variable | option | form |
  |---|---|---|
  | `NATIVE_GOSSIP_SECRET` | `:secret` | a string, taken whole (commas and spaces included) |
  | `NATIVE_GOSSIP_SECRETS` | `:secret` | a rotation list: secrets separated by newlines, the first signs (instead of `NATIVE_GOSSIP_SECRET`) |
  | `NATIVE_GOSSIP_PORT` | `:port` | an integer |
  | `NATIVE_GOSSIP_MULTICAST_ADDR` | `:multicast_addr` | an IPv4 or IPv6 group |
  | `NATIVE_GOSSIP_MULTICAST_IF` | `:multicast_if` | an interface name or address |
  | `NATIVE_GOSSIP_MULTICAST_TTL` | `:multicast_ttl` | an integer |
  | `NATIVE_GOSSIP_BROADCAST` | `:broadcast` | `true`, `false` or a broadcast address |
  | `NATIVE_GOSSIP_SEEDS` | `:seeds` | hosts separated by commas: `10.0.0.5,seed.local:#{@defaults[:port]}` |
  | `NATIVE_GOSSIP_HEARTBEAT_INTERVAL` | `:heartbeat_interval` | milliseconds |

  A value that does not parse raises `ArgumentError` naming the variable, so a release
  with a typo fails at boot rather than running without discovery.

      iex> System.put_env("NATIVE_GOSSIP_PORT", "45900")
      iex> NativeGossip.options_from_env()
      [port: 45900]
      iex> System.delete_env("NATIVE_GOSSIP_PORT")
      :ok
  """
  @spec options_from_env(String.t()) :: keyword()
  def options_from_env(prefix \\ "NATIVE_GOSSIP_"), do: Options.Env.read(prefix)

  @doc "Sends a heartbeat now, on top of the regular ones."
  @spec announce(name()) :: :ok
  def announce(name), do: name |> Topology.native!() |> Native.announce()

  @doc """
  Counters of the topology: heartbeats sent, and those that could not be
  (`send_errors`, with the last failure in `last_send_error`: where to and the OS's
  error; each interval with failures also logs a warning), datagrams received, this
  node's own heartbeats looped back by the kernel (`looped_back`: one per multicast
  heartbeat on a healthy node), datagrams accepted, and dropped by reason
  (`received == accepted + looped_back + sum of dropped`), peer events made for the
  server (`events`; of them, `events_coalesced` were replaced by a newer event of the
  same peer before the server took them, and `events_dropped` found the server
  `2 × :max_peers + 1024` events behind), heartbeats not sent by unicast to an address
  that has not proven itself because it had sent this node fewer bytes
  (`unicast_withheld`: see "Security" in the README), heartbeats sent off schedule to
  answer a joining node (`answers`; by unicast to it where it takes them so, see
  docs/PROTOCOL.md "Joins that cost each member O(1)"), heartbeats of this node's
  joining burst left out because every peer had acknowledged hearing it
  (`burst_skipped`: docs/PROTOCOL.md, "Timing"), new names made atoms (`names_made`, at most
  `:max_names`), the size of the peer table, and whether the socket is a member of
  the group right now (`joined`: false while it cannot join, see the errors above).

  `dropped` has one counter per reason of `NativeGossip.DropReason` (`:own_packet`
  excepted: that is `looped_back`), where each is explained.
  """
  @spec stats(name()) :: stats()
  def stats(name), do: name |> Topology.native!() |> Native.stats()
end
