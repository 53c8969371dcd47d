defmodule NativeGossip.Options.Schema do
  @moduledoc false
  # Every option of a topology, declared once. From this list come: the validation
  # (NativeGossip.Options.validate/2 runs each `check` in an order that puts what a
  # check `needs` first), the defaults, the known keys, the struct's fields (`field`:
  # the struct field, when not the key; nil: none, the key only feeds another), the
  # `t:NativeGossip.option/0` typespec and its documentation (`type`, `doc`), and the
  # README's options table (`default_doc`, `summary`; test/native_gossip/options_test.exs
  # fails when the README's table is not the one table_rows/0 makes).
  #
  # A default of nil means "computed" (from other options, or by the check): its
  # `default_doc` says how. A `type` is unquoted in NativeGossip, whose local types
  # (name(), seed(), tags()) it may use.
  #
  # Longer than 400 lines because it is a declaration, not code: 28 options with their
  # docs, one screen each at most.

  alias NativeGossip.Options.Check

  @port 45_892
  @default_group {239, 255, 45, 92}

  @options [
    name: [
      default: nil,
      default_doc: "(required)",
      type: quote(do: name()),
      check: &Check.name/2,
      summary: "the topology's name, an atom; with libcluster, the topology name",
      doc: """
      the topology's name, an atom (required).
      """
    ],
    port: [
      default: @port,
      default_doc: "`45892`",
      type: quote(do: :inet.port_number()),
      check: &Check.port/2,
      summary: "UDP port",
      doc: """
      UDP port, default `#{@port}`.
      """
    ],
    multicast_addr: [
      default: nil,
      default_doc: "`\"239.255.45.92\"`",
      type: quote(do: :inet.ip_address() | String.t()),
      check: &Check.multicast_addr/2,
      needs: [:compat, :broadcast],
      summary:
        "the group (tuple or string); administratively scoped, and not libcluster's `233.252.1.32` so the two never read each other's packets. An IPv6 group (`\"ff15::4e47\"` site scope, `\"ff02::4e47\"` link scope) makes the topology IPv6",
      doc: """
      the group, default `"#{:inet.ntoa(@default_group)}"` (administratively scoped;
      deliberately not libcluster's `233.252.1.32`, so the two never read each other's
      packets). A tuple or a string. An IPv6 group (`"ff15::4e47"`, site scope;
      `"ff02::4e47"`, link scope) makes the topology IPv6.
      """
    ],
    multicast_if: [
      default: nil,
      default_doc: "the multicast route's interface",
      type: quote(do: String.t() | :inet.ip_address() | pos_integer()),
      check: &Check.multicast_if/2,
      needs: [:multicast_addr],
      summary:
        "the interface to join and send on: its name (`\"eth0\"`, resolved at start), an address on it, or for IPv6 its index. Link-scope IPv6 groups (`ff02::`) need it",
      doc: """
      the local interface to join and send on: its name (`"eth0"`, resolved when the
      topology starts), an address on it, or for IPv6 its index. Default: the interface of
      the multicast route; link-scope IPv6 groups (`ff02::`) need it. `:if_addr` is accepted
      as an alias (it is libcluster's name for the bind address; NativeGossip binds to the
      group itself). It chooses where heartbeats are sent and the group is joined; the
      socket also hears the group on another interface of the host where another socket
      joined the same group and port (for example another node of the host with another
      `:multicast_if`): give such nodes different ports, or a `:cluster` label, to keep them
      apart.
      """
    ],
    if_addr: [
      default: nil,
      default_doc: "`\"0.0.0.0\"`",
      type: quote(do: String.t() | :inet.ip_address()),
      check: &Check.if_addr/2,
      needs: [:multicast_addr],
      field: nil,
      summary:
        "libcluster's bind address: the wildcard or the group is the default; a host's address chooses the sending interface, as `:multicast_if` (which wins) ([With libcluster](#with-libcluster))",
      doc: """
      libcluster's bind address, accepted so that a libcluster config works unchanged: the
      wildcard (`"0.0.0.0"`, `"::"`) or the group is the default; an address of this host
      chooses the interface heartbeats leave from, as `:multicast_if` (which wins when both
      are given; the start log says so). NativeGossip binds its receiving socket to the
      group: bound to a unicast address it would hear no multicast.
      """
    ],
    multicast_ttl: [
      default: 1,
      default_doc: "`1`",
      type: quote(do: 0..255),
      check: &Check.multicast_ttl/2,
      summary: "hops the heartbeats may cross; 1 = the local network",
      doc: """
      default `1` (the local network only); the hop limit for IPv6.
      """
    ],
    broadcast: [
      default: false,
      default_doc: "`false`",
      type: quote(do: boolean() | String.t() | :inet.ip4_address()),
      check: &Check.broadcast/2,
      needs: [:broadcast_only],
      summary:
        "`true` (255.255.255.255) or a broadcast address (`\"10.0.0.255\"`): broadcast instead of multicast, for networks without IGMP (libcluster's `broadcast_only`); IPv4 only",
      doc: """
      `false` (default), `true` (255.255.255.255) or an IPv4 broadcast address such as
      `"10.0.0.255"`: broadcast heartbeats instead of multicast, for networks without IGMP
      (libcluster's `broadcast_only`). `:multicast_addr` is then not used.
      """
    ],
    broadcast_only: [
      default: false,
      default_doc: "`false`",
      type: quote(do: boolean()),
      check: &Check.broadcast_only/2,
      field: nil,
      summary:
        "libcluster's: `true` broadcasts to `:multicast_addr` (`\"10.0.0.255\"`), or to 255.255.255.255 without one ([With libcluster](#with-libcluster))",
      doc: """
      libcluster's: `true` broadcasts to `:multicast_addr` as the broadcast address (a
      subnet's, such as `"10.0.0.255"`, or `"255.255.255.255"`), or to 255.255.255.255
      without one. A multicast group given with it stays a group, with a note in the log.
      Default `false`.
      """
    ],
    seeds: [
      default: [],
      default_doc: "`[]`",
      type: quote(do: [seed()]),
      check: &Check.seeds/2,
      needs: [:port, :multicast_addr],
      summary:
        "hosts heartbeats are also sent to by unicast, for networks that drop multicast (clouds, containers): `\"10.0.0.5\"`, `\"10.0.0.5:45892\"`, `\"[fd00::5]:45892\"`, a DNS name (all its addresses: a headless service), or `{host, port}`. With seeds, the node also listens for unicast heartbeats and answers an unknown sender once, then keeps sending to it",
      doc: """
      hosts that heartbeats are also sent to by unicast, for networks that drop multicast
      (clouds, containers): `"10.0.0.5"`, `"10.0.0.5:#{@port}"`, `"[fd00::5]:#{@port}"`,
      `{host, port}`, or a DNS name, which stands for all its addresses (a Kubernetes
      headless service, say) and is resolved again every `:seed_refresh` ms (default
      `30_000`) off the server. Seeds of the group's address family only; default port
      `:port`. With seeds, the node also listens for unicast heartbeats on `:port`; a peer
      it did not know that reaches it by unicast gets an answer at once and heartbeats from
      then on, so both sides learn each other even when only one lists the other. Unicast to
      a host that runs several nodes on one port reaches one of them.
      """
    ],
    seed_refresh: [
      default: 30_000,
      default_doc: "`30000`",
      type: quote(do: pos_integer()),
      check: &Check.seed_refresh/2,
      summary: "ms between re-resolutions of seeds given by name",
      doc: """
      milliseconds between two resolutions of the seeds given by name (a DNS name stands for
      all its addresses), off the server; default `30_000`.
      """
    ],
    compat: [
      default: nil,
      default_doc: "`nil`",
      type: quote(do: :libcluster | nil),
      check: &Check.compat/2,
      summary:
        "`:libcluster`: also read and send libcluster Gossip heartbeats (plaintext, or AES-256-CBC with `:secret`), for a rolling migration; the group then defaults to libcluster's `233.252.1.32`. That format has no MAC and no replay protection: turn it off once the last libcluster node is gone ([docs/MIGRATING.md](docs/MIGRATING.md))",
      doc: """
      `:libcluster` to also read and send libcluster Gossip heartbeats, for a rolling
      migration (see docs/MIGRATING.md); default `nil`.
      """
    ],
    heartbeat_interval: [
      default: 1_500,
      default_doc: "`1500`",
      type: quote(do: pos_integer()),
      check: &Check.heartbeat_interval/2,
      summary: "ms between heartbeats, jittered \u00b125 %",
      doc: """
      milliseconds between heartbeats, default `1_500`, jittered by ±25 %. A starting node
      also sends a short burst (0, 20, 40, 80, 160, 320, 640, 1280 ms) and nodes answer it at
      once, which is why joining takes milliseconds.
      """
    ],
    lost_after: [
      default: nil,
      default_doc: "3 \u00d7 interval",
      type: quote(do: pos_integer()),
      check: &Check.lost_after/2,
      needs: [:heartbeat_interval],
      summary:
        "ms of silence after which a peer is reported `:lost` (a connected one is probed first)",
      doc: """
      a peer silent this long is reported lost, default 3 heartbeat intervals; with
      `:failure_detection`, a connected peer is probed instead, and reported lost only
      if no probe is answered.
      """
    ],
    forget_after: [
      default: nil,
      default_doc: "`60000` (or 2 \u00d7 `:lost_after`)",
      type: quote(do: pos_integer()),
      check: &Check.forget_after/2,
      needs: [:lost_after],
      summary: "ms of silence after which a peer is forgotten",
      doc: """
      a silent peer is forgotten after this long, default 60 s (or twice `:lost_after` if
      that is longer).
      """
    ],
    failure_detection: [
      default: true,
      default_doc: "`true`",
      type: quote(do: boolean()),
      check: &Check.failure_detection/2,
      summary:
        "a connected peer reported lost is probed (over its connection, and through up to `:indirect_probes` other members); if every probe fails it is disconnected, so `:nodedown` comes in seconds, not after `net_ticktime` ([below](#failure-detection))",
      doc: """
      `true` (default) to confirm and act on a connected peer whose heartbeats stopped:
      when it is reported `:lost`, it is probed over its distribution connection (a call
      to its `net_kernel`, which every node answers) and, at the same time, through up
      to `:indirect_probes` other members connected to it; if no probe is answered
      within `:probe_timeout`, it is declared `:dead` and disconnected (with
      `:disconnect`), so that `:nodedown` fires in seconds instead of after
      `net_ticktime` (45 to 75 s by default). A peer that answers any probe, or whose
      heartbeats come back, is alive; one declared dead is connected again when it is
      heard again. `false`: NativeGossip never disconnects a node on its own, as
      libcluster's Gossip. See the README's "Failure detection".
      """
    ],
    probe_timeout: [
      default: 300,
      default_doc: "`300`",
      type: quote(do: pos_integer()),
      check: &Check.probe_timeout/2,
      summary: "ms a probe of a lost peer waits for its answer",
      doc: """
      milliseconds the probes of a lost peer (direct and indirect) have to answer,
      default `300`. A round trip over a working connection takes well under a
      millisecond on a LAN; the rest is for a peer's VM that is busy (its `net_kernel`
      answers between time slices even with every scheduler at 100 %).
      """
    ],
    indirect_probes: [
      default: 3,
      default_doc: "`3`",
      type: quote(do: non_neg_integer()),
      check: &Check.indirect_probes/2,
      summary: "other members asked to probe a lost peer too (0: the direct probe alone)",
      doc: """
      how many other members are asked to probe a lost peer over their own connections
      (at the same time as this node's direct probe), default `3`; `0`: the direct
      probe alone. A member not connected to the peer (a partial mesh) does not probe
      it and is no evidence either way.
      """
    ],
    max_peers: [
      default: 10_000,
      default_doc: "`10000`",
      type: quote(do: pos_integer()),
      check: &Check.max_peers/2,
      summary:
        "size limit of the peer table; when full, a new name takes the place of the oldest peer never connected",
      doc: """
      size limit of the peer table, default `10_000`. When it is full, a new name takes the
      place of the peer admitted longest ago that never connected; peers that connected keep
      theirs.
      """
    ],
    max_names: [
      default: nil,
      default_doc: "2 \u00d7 `:max_peers` without a secret, `:infinity` with one",
      type: quote(do: pos_integer() | :infinity),
      check: &Check.max_names/2,
      needs: [:secret, :max_peers],
      summary:
        "most new names this topology ever turns into atoms (names that are atoms already do not count); past it new names are dropped as `name_cap` until the VM restarts",
      doc: """
      most new names this topology ever turns into atoms (atoms are never freed); names that
      are atoms already do not count. Past it, new names are dropped as `:name_cap` until
      the VM restarts. Default: twice `:max_peers` without a `:secret`, `:infinity` with one
      (names are authenticated then).
      """
    ],
    max_clock_skew: [
      default: nil,
      default_doc: "`:forget_after`",
      type: quote(do: pos_integer() | :infinity),
      check: &Check.max_clock_skew/2,
      needs: [:forget_after],
      summary:
        "with a secret: heartbeats signed further than this (ms) from the local clock are dropped as `stale`, so a capture cannot be replayed after its node is forgotten; `:infinity` turns the check off",
      doc: """
      with a `:secret`: heartbeats signed at a time further than this many milliseconds from
      the local clock are dropped as `:stale`, so a captured heartbeat cannot be replayed
      once its node is forgotten or this node restarted. Default `:forget_after`;
      `:infinity` turns the check off. Clocks must agree within it (NTP keeps them within
      milliseconds).
      """
    ],
    secret: [
      default: nil,
      default_doc: "none",
      type: quote(do: binary() | [binary()]),
      check: &Check.secret/2,
      field: :secrets,
      summary:
        "binary, or list of binaries (first signs, any verifies); without one, a warning at start",
      doc: """
      a binary, or a list of binaries (the first signs, any verifies, so secrets can be
      rotated without a split: `[old, new]` on every node, then `[new, old]`, then `[new]`,
      one node at a time). Heartbeats are then signed with HMAC-SHA256 and checked for
      replay; nodes with different secrets never see each other. Use at least 16 random
      bytes (a shorter secret is warned about at start). Without one, a warning is logged at
      start: anyone on the network can make this node connect (what else it can and cannot
      do is in the README's Security section).
      """
    ],
    encrypt: [
      default: false,
      default_doc: "`false`",
      type: quote(do: boolean()),
      check: &Check.encrypt/2,
      needs: [:secret],
      summary:
        "with a secret: encrypt heartbeats (XChaCha20-Poly1305), so names, tags and the label cannot be read on the network ([below](#encrypted-heartbeats))",
      doc: """
      with a `:secret`: `true` to encrypt heartbeats (XChaCha20-Poly1305, keys derived from
      each secret with HKDF-SHA256), so that names, tags and the cluster label cannot be
      read on the network; default `false` (signed, readable). Replay checks and secret
      rotation work as with signed heartbeats. A node with `:encrypt` also accepts signed
      heartbeats of its secret (turn it on node by node); a node without it drops encrypted
      ones as `:sealed`.
      """
    ],
    cluster: [
      default: nil,
      default_doc: "`nil`",
      type: quote(do: String.t() | nil),
      check: &Check.cluster/2,
      summary:
        "a label (\u2264 64 bytes) every heartbeat carries; heartbeats of another label are dropped as `other_cluster` ([below](#two-clusters-on-one-network-cluster))",
      doc: """
      a label (a string of up to 64 bytes) carried in every heartbeat; heartbeats with
      another label, or none, are dropped as `:other_cluster`, so two clusters share a group
      and port without seeing each other. Default `nil` (no label: hears only unlabelled
      nodes). Authenticated with a `:secret`, like the rest of the heartbeat.
      """
    ],
    tags: [
      default: %{},
      default_doc: "`%{}`",
      type: quote(do: tags() | keyword()),
      check: &Check.tags/2,
      summary:
        "this node's tags, short strings every peer sees, e.g. `%{\"role\" => \"web\"}`; at most 512 bytes ([below](#tags-and-roles))",
      doc: """
      this node's tags, a map or keyword list of short strings (atoms and numbers are turned
      into strings), e.g. `%{"role" => "web", "version" => "1.4.2"}`; at most 512 bytes in a
      heartbeat (each tag takes 3 bytes besides its key and value), keys of 1 to 64 bytes.
      Every peer sees them in `members/2` and in `:connect_if`; they are strings there too,
      never atoms. Change them at run time with `set_tags/2`. Default `%{}`.
      """
    ],
    connect_if: [
      default: nil,
      default_doc: "every peer",
      type: quote(do: {module(), atom(), list()} | nil),
      check: &Check.connect_if/2,
      summary:
        "`{m, f, args}` called with `args ++ [node, tags]`: connect only to peers for which it returns `true` ([below](#tags-and-roles))",
      doc: """
      `{module, function, args}` called as `apply(module, function, args ++ [node, tags])`
      before this topology connects to a peer; the peer is connected only if it returns
      `true` (it stays listed by `members/2`, `connected?: false`). For a partial mesh by
      role, e.g. workers that connect to coordinators only. A peer may still connect to this
      node by its own decision; a node started with `-connect_all false` keeps OTP's
      `global` from connecting the rest. Evaluated again when the peer's tags change.
      Default: every peer.
      """
    ],
    resolve_short_names: [
      default: true,
      default_doc: "`true`",
      type: quote(do: boolean()),
      check: &Check.resolve_short_names/2,
      summary:
        "make peers' short host names (`a@host2`, from `--sname`) resolve in this VM to their heartbeats' address, so `--sname` works across hosts without DNS (details in `NativeGossip`'s docs)",
      doc: """
      default `true`. For peers whose node name has a short host part (`a@host2`, as with
      `--sname`), make that host name resolve in this VM to the address the peer's
      heartbeats come from, so short names work across hosts without DNS. It puts `:file`
      first in the VM's resolver lookup order (`:inet_db.set_lookup/1`) and adds the names
      with `:inet_db.add_host/2`; nothing outside the VM changes. Only accepted heartbeats
      teach an address: with a secret, only authenticated ones. A host name belongs to the
      first node heard with it; once that node is connected nothing else moves it (a claim
      never proven by a connection gives way to another node of the host after 2 s). This
      node's own host is never mapped, and a mapping is removed when its node leaves or is
      forgotten.
      """
    ],
    new_peer_rate: [
      default: 5,
      default_doc: "`5`",
      type: quote(do: pos_integer()),
      check: &Check.new_peer_rate/2,
      summary:
        "without a secret: new peer names per second one host may introduce (burst 2\u00d7); the rest are dropped as `rate_limited`",
      doc: """
      without a `:secret` only: how many new peer names per second one sending address may
      introduce (bursts of twice that), default `5`. Each new name becomes an atom and a
      connect attempt, so this bounds what a host that floods made-up names can cost, while
      legitimate nodes elsewhere are admitted at once. Excess names are dropped as
      `:rate_limited`.
      """
    ],
    log_interval: [
      default: 10_000,
      default_doc: "`10000`",
      type: quote(do: pos_integer()),
      check: &Check.log_interval/2,
      summary:
        "dropped datagrams are logged as one warning per reason per interval, never per packet",
      doc: """
      dropped datagrams are logged as one warning per reason per interval, with the count,
      never one line per packet; default `10_000` ms.
      """
    ],
    connect: [
      default: {:net_kernel, :connect_node, []},
      default_doc: "`{:net_kernel, :connect_node, []}`",
      type: quote(do: {module(), atom(), list()}),
      check: &Check.connect/2,
      summary: "how to connect a node (node appended to args)",
      doc: """
      `{module, function, args}` that connects a node (the node is appended to `args`), with
      libcluster's meaning; default `{:net_kernel, :connect_node, []}`.
      """
    ],
    disconnect: [
      default: {:erlang, :disconnect_node, []},
      default_doc: "`{:erlang, :disconnect_node, []}`",
      type: quote(do: {module(), atom(), list()}),
      check: &Check.disconnect/2,
      summary:
        "how to disconnect a node declared dead by failure detection (node appended to args); never called with `failure_detection: false`",
      doc: """
      `{module, function, args}` that disconnects a node, libcluster's; default
      `{:erlang, :disconnect_node, []}`. Called only for a peer that failure detection
      declared dead (see `:failure_detection`); with `failure_detection: false`
      NativeGossip never disconnects a node on its own, as libcluster's Gossip.
      """
    ],
    list_nodes: [
      default: {:erlang, :nodes, [:connected]},
      default_doc: "`{:erlang, :nodes, [:connected]}`",
      type: quote(do: {module(), atom(), list()}),
      check: &Check.list_nodes/2,
      summary: "which nodes count as connected",
      doc: """
      `{module, function, args}` that lists the connected nodes, libcluster's; default
      `{:erlang, :nodes, [:connected]}`.
      """
    ]
  ]

  @keys Keyword.keys(@options)

  # Validation order: each option after those it needs, otherwise as declared.
  @order Enum.reduce_while(Stream.cycle([:pass]), {[], @keys}, fn
           _, {done, []} ->
             {:halt, Enum.reverse(done)}

           _, {done, left} ->
             ready =
               Enum.find(left, fn k -> Enum.all?(@options[k][:needs] || [], &(&1 in done)) end)

             if ready == nil, do: raise("a cycle in the options' needs: #{inspect(left)}")
             {:cont, {[ready | done], List.delete(left, ready)}}
         end)

  @type entry :: keyword()

  @doc "The default group."
  @spec default_group() :: :inet.ip4_address()
  def default_group, do: @default_group

  @doc "The options as declared: `[{key, entry}]`."
  @spec options() :: [{atom(), entry()}]
  def options, do: @options

  @doc "The option keys, in the order of the docs."
  @spec keys() :: [atom()]
  def keys, do: @keys

  @doc "The options in validation order: `[{key, default, check}]`."
  @spec checks() :: [{atom(), term(), (term(), map() -> term())}]
  def checks, do: for(k <- @order, do: {k, @options[k][:default], @options[k][:check]})

  @doc "Each option's default (nil: computed from others, or by its check)."
  @spec defaults() :: keyword()
  def defaults, do: for({k, o} <- @options, do: {k, o[:default]})

  @doc "The struct fields the options fill: `[{field, key}]`."
  @spec fields() :: [{atom(), atom()}]
  def fields do
    for {k, o} <- @options, field = Keyword.get(o, :field, k), field != nil, do: {field, k}
  end

  @doc "The typespec of an option: the union of `{key, type}`."
  @spec option_type() :: Macro.t()
  def option_type do
    @options
    |> Enum.map(fn {k, o} -> quote(do: {unquote(k), unquote(o[:type])}) end)
    |> Enum.reverse()
    |> Enum.reduce(fn t, acc -> quote(do: unquote(t) | unquote(acc)) end)
  end

  @doc "The options' documentation, a Markdown list."
  @spec doc() :: String.t()
  def doc do
    Enum.map_join(@options, "", fn {k, o} ->
      [first | rest] = String.split(String.trim_trailing(o[:doc]), "\n")

      "  * `#{inspect(k)}` - " <>
        Enum.join([first | Enum.map(rest, &("    " <> &1))], "\n") <> "\n"
    end)
  end

  @doc "The README's options table, one row a line."
  @spec table_rows() :: [String.t()]
  def table_rows do
    for {k, o} <- @options, do: "| `#{inspect(k)}` | #{o[:default_doc]} | #{o[:summary]} |"
  end
end
