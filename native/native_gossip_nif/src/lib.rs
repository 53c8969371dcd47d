//! The BEAM face of `native_gossip_core`: a resource per running topology, a handful of
//! NIFs, and an event sink that turns peer events into messages to the owner process.
//!
//! Messages sent to the owner (the process that called `start/1`):
//!
//! - `:native_gossip_events` when peer events wait: the owner takes them with
//!   `take_events/2` (each a map `%{kind, name :: binary, address: {ip_tuple, port},
//!   incarnation, lead, tags, dist_port, proven}` with `kind` one of `:discovered`,
//!   `:heard`, `:left`, `:lost`, `:forgotten`, `:tags_changed`, `lead` true when this
//!   node should connect at once rather than let the peer go first, `tags` a map of
//!   binaries to binaries, `dist_port` the peer's distribution listen port as its
//!   heartbeats say (0 if they do not), and `proven` whether the address is proven).
//!   The message is sent once until the owner has taken every event, so the owner's
//!   mailbox holds at most one of them whatever the traffic;
//! - `{:native_gossip_fault, message :: binary}` when the thread stops on a fault;
//! - `{:native_gossip_membership, :joined | {:not_joined, message}}` when the socket's
//!   group membership changes (it cannot join yet, or joined after all).
//!
//! All atoms created here come from fixed sets; node names cross as binaries.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use native_gossip_core::{Config, DropReason, Keyring, NameCheck, PeerEvent};
use native_gossip_io::{EventSink, SocketConfig, StartError, Topology};
use rustler::{
    Atom, Binary, Encoder, Env, LocalPid, Monitor, NifMap, NifResult, OwnedEnv, Resource,
    ResourceArc, Term,
};

mod atoms {
    rustler::atoms! {
        ok,
        error,
        native_gossip,
        native_gossip_fault,
        native_gossip_membership,
        native_gossip_events,
        joined,
        not_joined,
        thread,
    }
}

/// What `NativeGossip.Native.start/1` takes; built and validated by `NativeGossip.Options`.
#[derive(NifMap)]
struct StartOptions<'a> {
    node_name: String,
    /// An IPv4 or IPv6 multicast group, or with `broadcast` an IPv4 broadcast address.
    multicast_addr: String,
    /// IPv4: the interface's address ("0.0.0.0": the multicast route's).
    multicast_if: String,
    /// IPv6: the interface's index (0: the multicast route's).
    multicast_ifindex: u32,
    broadcast: bool,
    /// "ip:port" / "[ip]:port" strings, already resolved.
    seeds: Vec<String>,
    unicast: bool,
    port: u16,
    multicast_ttl: u32,
    heartbeat_interval: u64,
    lost_after: u64,
    forget_after: u64,
    max_peers: usize,
    /// 0: no bound.
    max_names: usize,
    /// Milliseconds; 0: not checked.
    max_clock_skew: u64,
    new_peer_rate: u32,
    secrets: Vec<Binary<'a>>,
    /// Seal (encrypt) heartbeats with the secrets (which must be given).
    encrypt: bool,
    compat_libcluster: bool,
    /// The cluster label ("": none).
    cluster: String,
    tags: Vec<(String, String)>,
    /// This node's distribution listen port, for the heartbeats (0: not sent).
    dist_port: u16,
}

struct TopologyResource {
    topology: Topology,
}

#[rustler::resource_impl]
impl Resource for TopologyResource {
    fn down<'a>(&'a self, _env: Env<'a>, _pid: LocalPid, _monitor: Monitor) {
        // The owner died without stopping us: stop quietly (no goodbye, no join here).
        self.topology.signal_stop(false);
    }
}

struct Mailbox {
    env: OwnedEnv,
    owner: LocalPid,
}

fn ip_tuple<'a>(env: Env<'a>, addr: &SocketAddr) -> Term<'a> {
    match addr.ip() {
        IpAddr::V4(ip) => {
            let [a, b, c, d] = ip.octets();
            (a, b, c, d).encode(env)
        }
        IpAddr::V6(ip) => {
            let s = ip.segments();
            rustler::types::tuple::make_tuple(
                env,
                &s.iter().map(|x| x.encode(env)).collect::<Vec<_>>(),
            )
        }
    }
}

/// One waiting event as the owner takes it: a map, matched by key on the Elixir side
/// (`%{kind, name, address, incarnation, lead, tags, dist_port, proven}`).
fn event_term<'a>(env: Env<'a>, event: &PeerEvent) -> Term<'a> {
    let kind = Atom::from_str(env, event.kind.as_str()).expect("fixed atom");
    let mut name = rustler::NewBinary::new(env, event.name.len());
    name.as_mut_slice().copy_from_slice(event.name.as_bytes());
    let name: Binary = name.into();
    let pairs: [(&str, Term<'a>); 8] = [
        ("kind", kind.encode(env)),
        ("name", name.encode(env)),
        (
            "address",
            (ip_tuple(env, &event.addr), event.addr.port()).encode(env),
        ),
        ("incarnation", event.incarnation.encode(env)),
        ("lead", event.lead.encode(env)),
        ("tags", tags_map(env, &event.tags)),
        ("dist_port", event.dist_port.encode(env)),
        ("proven", event.proven.encode(env)),
    ];
    let keys: Vec<Term<'a>> = pairs
        .iter()
        .map(|(k, _)| Atom::from_str(env, k).expect("fixed atom").encode(env))
        .collect();
    let values: Vec<Term<'a>> = pairs.iter().map(|(_, v)| *v).collect();
    Term::map_from_term_arrays(env, &keys, &values).expect("distinct keys")
}

/// Tag records as a map of binaries (keys and values are never atoms).
fn tags_map<'a>(env: Env<'a>, records: &[u8]) -> Term<'a> {
    let pairs: Vec<(&str, &str)> = native_gossip_core::wire::tags(records).collect();
    Term::map_from_pairs(env, &pairs).unwrap_or_else(|_| Term::map_new(env))
}

impl EventSink for Mailbox {
    fn ready(&mut self) -> bool {
        self.env
            .send_and_clear(&self.owner, |env| atoms::native_gossip_events().encode(env))
            .is_ok()
    }

    fn fault(&mut self, reason: &str) {
        let _ = self.env.send_and_clear(&self.owner, |env| {
            (atoms::native_gossip_fault(), reason).encode(env)
        });
    }

    fn membership(&mut self, status: Result<(), &str>) {
        let _ = self.env.send_and_clear(&self.owner, |env| match status {
            Ok(()) => (atoms::native_gossip_membership(), atoms::joined()).encode(env),
            Err(why) => (
                atoms::native_gossip_membership(),
                (atoms::not_joined(), why),
            )
                .encode(env),
        });
    }
}

/// Whether a name already is an atom in this VM (admitting it again makes none).
fn atom_exists() -> NameCheck {
    let env = std::sync::Mutex::new(OwnedEnv::new());
    NameCheck::new(move |name| {
        let env = env.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        env.run(|env| Atom::existing_from_bytes(env, name.as_bytes()).is_ok())
    })
}

fn bad_option<'a>(env: Env<'a>, what: &str, value: &str) -> Term<'a> {
    start_error(
        env,
        &StartError::Socket(format!("{what} is not an address: {value:?}")),
    )
}

/// Seeds as socket addresses; ones that do not parse are left out (the Elixir side
/// only passes resolved addresses).
fn parse_seeds(seeds: &[String]) -> Vec<SocketAddr> {
    seeds.iter().filter_map(|s| s.parse().ok()).collect()
}

/// Opens the socket and starts the thread; the calling process becomes the owner and is
/// monitored. Returns `{:ok, ref}` or `{:error, {kind, message}}`.
#[rustler::nif(schedule = "DirtyIo")]
fn start<'a>(env: Env<'a>, opts: StartOptions<'a>) -> NifResult<Term<'a>> {
    let keys = Keyring::new(opts.secrets.iter().map(|b| b.as_slice().to_vec()).collect());
    let config = Config {
        node_name: opts.node_name,
        keys: if opts.encrypt {
            keys.encrypting()
        } else {
            keys
        },
        heartbeat_interval: Duration::from_millis(opts.heartbeat_interval),
        lost_after: Duration::from_millis(opts.lost_after),
        forget_after: Duration::from_millis(opts.forget_after),
        max_peers: opts.max_peers,
        new_peer_rate: opts.new_peer_rate,
        new_peer_burst: opts.new_peer_rate.saturating_mul(2),
        compat_libcluster: opts.compat_libcluster,
        seeds: parse_seeds(&opts.seeds),
        max_names: (opts.max_names > 0).then_some(opts.max_names),
        name_exists: atom_exists(),
        max_clock_skew: (opts.max_clock_skew > 0)
            .then(|| Duration::from_millis(opts.max_clock_skew)),
        cluster: opts.cluster,
        tags: opts.tags,
        dist_port: opts.dist_port,
        // Filled in by `Topology::start` from this host's interfaces.
        own_addresses: Vec::new(),
    };
    let Ok(group) = opts.multicast_addr.parse::<IpAddr>() else {
        return Ok(bad_option(env, "multicast_addr", &opts.multicast_addr));
    };
    let Ok(interface) = opts.multicast_if.parse::<Ipv4Addr>() else {
        return Ok(bad_option(env, "multicast_if", &opts.multicast_if));
    };
    let socket = SocketConfig {
        group,
        port: opts.port,
        interface,
        interface_index: opts.multicast_ifindex,
        ttl: opts.multicast_ttl,
        broadcast: opts.broadcast,
        unicast: opts.unicast,
    };
    let owner = env.pid();
    let mailbox = Mailbox {
        env: OwnedEnv::new(),
        owner,
    };
    match Topology::start(config, socket, mailbox) {
        Ok(topology) => {
            let resource = ResourceArc::new(TopologyResource { topology });
            if env.monitor(&resource, &owner).is_none() {
                // The caller is already gone: nobody will ever stop this topology.
                resource.topology.stop(false);
                return Ok((
                    atoms::error(),
                    (
                        Atom::from_str(env, "owner_down")?,
                        "the calling process is not alive",
                    ),
                )
                    .encode(env));
            }
            Ok((atoms::ok(), resource).encode(env))
        }
        Err(e) => Ok(start_error(env, &e)),
    }
}

fn start_error<'a>(env: Env<'a>, e: &StartError) -> Term<'a> {
    let kind = Atom::from_str(env, e.kind()).expect("fixed atom");
    (atoms::error(), (kind, e.message())).encode(env)
}

/// Stops the thread, sending a goodbye first if `leave`; returns once the socket is
/// closed. Idempotent.
#[rustler::nif(schedule = "DirtyIo")]
fn stop(resource: ResourceArc<TopologyResource>, leave: bool) -> Atom {
    resource.topology.stop(leave);
    atoms::ok()
}

#[rustler::nif]
fn announce(resource: ResourceArc<TopologyResource>) -> Atom {
    resource.topology.announce();
    atoms::ok()
}

/// Decodes one datagram as a topology with `secrets` (and `encrypt`, and `compat:
/// :libcluster` when `compat`) would, without any state (no replay, label, source or
/// clock check: the caller makes those it needs): `{:ok, %{format, name, incarnation,
/// sequence, flags, cluster, tags, dist_port, timestamp_ms, addresses}}` (`format`:
/// `:native`, or `:libcluster` for a libcluster heartbeat with compat: its name only,
/// every other field empty) or `{:error, reason}`. For `mix native_gossip.listen` and
/// the doctor.
#[rustler::nif]
fn decode<'a>(
    env: Env<'a>,
    data: Binary<'a>,
    secrets: Vec<Binary<'a>>,
    encrypt: bool,
    compat: bool,
) -> NifResult<Term<'a>> {
    let keys = keyring(&secrets, encrypt);
    let libcluster_keys = native_gossip_core::compat::keys(&keys);
    let bytes = data.as_slice();
    let mut scratch = Vec::new();
    match native_gossip_core::wire::decode_with(bytes, &keys, &mut scratch) {
        Ok(hb) => {
            let mut flags = Vec::new();
            for (on, flag) in [
                (hb.joining, "joining"),
                (hb.newcomer, "newcomer"),
                (hb.leaving, "leaving"),
                (
                    bytes[5] & native_gossip_core::wire::FLAG_SIGNED != 0,
                    "signed",
                ),
                (
                    bytes[5] & native_gossip_core::wire::FLAG_SEALED != 0,
                    "sealed",
                ),
            ] {
                if on {
                    flags.push(Atom::from_str(env, flag)?);
                }
            }
            let cluster = String::from_utf8_lossy(hb.cluster()).into_owned();
            let tags = tags_map(env, &native_gossip_core::wire::tag_records(hb.options));
            let addresses: Vec<Term> = native_gossip_core::wire::addresses(hb.options)
                .map(|ip| ip_tuple(env, &SocketAddr::new(ip, 0)))
                .collect();
            decoded(
                env,
                "native",
                hb.name,
                (hb.incarnation, hb.sequence, hb.timestamp_ms),
                flags,
                cluster,
                tags,
                hb.dist_port(),
                addresses,
            )
        }
        // As an engine does (`Engine::accept`): with compat, what is not NativeGossip
        // is read as libcluster's format; without, such a heartbeat is named.
        Err(_) if compat && !bytes.starts_with(&native_gossip_core::wire::MAGIC) => {
            match native_gossip_core::compat::decode(bytes, &libcluster_keys) {
                Ok(name) => decoded(
                    env,
                    "libcluster",
                    &name,
                    (0, 0, 0),
                    Vec::new(),
                    String::new(),
                    Term::map_new(env),
                    0,
                    Vec::new(),
                ),
                Err(reason) => error_term(env, reason),
            }
        }
        Err(DropReason::BadMagic | DropReason::TooShort)
            if native_gossip_core::compat::is_heartbeat(bytes, &libcluster_keys) =>
        {
            error_term(env, DropReason::LibclusterFormat)
        }
        Err(reason) => error_term(env, reason),
    }
}

/// A keyring of the secrets the tasks give (`decode`, `goodbye`), sealing with `encrypt`.
fn keyring(secrets: &[Binary<'_>], encrypt: bool) -> Keyring {
    let keys = Keyring::new(secrets.iter().map(|b| b.as_slice().to_vec()).collect());
    if encrypt {
        keys.encrypting()
    } else {
        keys
    }
}

fn error_term(env: Env<'_>, reason: DropReason) -> NifResult<Term<'_>> {
    Ok((atoms::error(), Atom::from_str(env, reason.as_str())?).encode(env))
}

/// `{:ok, map}` of a decoded heartbeat (see `decode`).
#[allow(clippy::too_many_arguments)]
fn decoded<'a>(
    env: Env<'a>,
    format: &str,
    name: &str,
    (incarnation, sequence, timestamp_ms): (u64, u64, u64),
    flags: Vec<Atom>,
    cluster: String,
    tags: Term<'a>,
    dist_port: u16,
    addresses: Vec<Term<'a>>,
) -> NifResult<Term<'a>> {
    let pairs: [(&str, Term<'a>); 10] = [
        ("format", Atom::from_str(env, format)?.encode(env)),
        ("name", name.encode(env)),
        ("incarnation", incarnation.encode(env)),
        ("sequence", sequence.encode(env)),
        ("flags", flags.encode(env)),
        ("cluster", cluster.encode(env)),
        ("tags", tags),
        ("dist_port", dist_port.encode(env)),
        ("timestamp_ms", timestamp_ms.encode(env)),
        ("addresses", addresses.encode(env)),
    ];
    let mut keyed = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        keyed.push((Atom::from_str(env, k)?, v));
    }
    Ok((atoms::ok(), Term::map_from_pairs(env, &keyed)?).encode(env))
}

/// A goodbye heartbeat in `name` (which no node may use), signed (and sealed with
/// `encrypt`) under the first of `secrets`, with the label `cluster` and this host's
/// IPv4 addresses: `{:ok, binary}` or `{:error, message}`. A goodbye of a name nobody
/// knows is accepted by every node and changes nothing: the doctor sends one to check
/// the path to the group.
#[rustler::nif]
fn goodbye<'a>(
    env: Env<'a>,
    name: String,
    secrets: Vec<Binary<'a>>,
    encrypt: bool,
    cluster: String,
) -> NifResult<Term<'a>> {
    let keys = keyring(&secrets, encrypt);
    let addrs = native_gossip_io::socket::local_addresses(true, None);
    let wall = native_gossip_io::wall_ms();
    match native_gossip_core::engine::goodbye(&name, &keys, &cluster, &addrs, wall * 1000, wall) {
        Ok(bytes) => {
            let mut binary = rustler::NewBinary::new(env, bytes.len());
            binary.as_mut_slice().copy_from_slice(&bytes);
            Ok((atoms::ok(), Binary::from(binary)).encode(env))
        }
        Err(e) => Ok((atoms::error(), format!("{e:?}")).encode(env)),
    }
}

/// Replaces this node's tags and announces them at once: `:ok`, or `{:error, message}`
/// (the Elixir side validates them first).
#[rustler::nif]
fn set_tags<'a>(
    env: Env<'a>,
    resource: ResourceArc<TopologyResource>,
    tags: Vec<(String, String)>,
) -> Term<'a> {
    match resource.topology.set_tags(&tags) {
        Ok(()) => atoms::ok().encode(env),
        Err(
            native_gossip_core::wire::OptionsError::Tags(m)
            | native_gossip_core::wire::OptionsError::Cluster(m),
        ) => (atoms::error(), m).encode(env),
    }
}

/// Replaces the unicast seeds ("ip:port" strings).
#[rustler::nif]
fn set_seeds(resource: ResourceArc<TopologyResource>, seeds: Vec<String>) -> Atom {
    resource.topology.set_seeds(parse_seeds(&seeds));
    atoms::ok()
}

/// Marks a peer connected or not; `address`: the remote IP address of its
/// distribution connection (a tuple), or anything else when unknown.
#[rustler::nif]
fn set_connected(
    resource: ResourceArc<TopologyResource>,
    name: Binary,
    connected: bool,
    address: Term,
) -> Atom {
    if let Ok(name) = std::str::from_utf8(name.as_slice()) {
        resource
            .topology
            .set_connected(name, connected, ip_of(address));
    }
    atoms::ok()
}

/// An IP address tuple (`{a, b, c, d}` or eight 16-bit parts), if `term` is one.
fn ip_of(term: Term) -> Option<IpAddr> {
    let parts = rustler::types::tuple::get_tuple(term).ok()?;
    match parts.len() {
        4 => {
            let o: Vec<u8> = parts
                .iter()
                .map(|t| t.decode())
                .collect::<Result<_, _>>()
                .ok()?;
            Some(IpAddr::from([o[0], o[1], o[2], o[3]]))
        }
        8 => {
            let s: Vec<u16> = parts
                .iter()
                .map(|t| t.decode())
                .collect::<Result<_, _>>()
                .ok()?;
            let s: [u16; 8] = s.try_into().ok()?;
            Some(IpAddr::from(s))
        }
        _ => None,
    }
}

/// Reports a peer again, while it stays unconnected, no sooner than `ms` from now: the
/// connect backoff of `NativeGossip.Connector`.
#[rustler::nif]
fn report_after(resource: ResourceArc<TopologyResource>, name: Binary, ms: u64) -> Atom {
    if let Ok(name) = std::str::from_utf8(name.as_slice()) {
        resource.topology.hold(name, Duration::from_millis(ms));
    }
    atoms::ok()
}

/// Test hooks: `:thread` makes the topology's thread panic (caught there: the owner
/// gets a fault message); `:nif` panics inside this NIF call (rustler turns it into an
/// exception in the caller). Either way the VM goes on.
#[rustler::nif]
fn panic_for_test(resource: ResourceArc<TopologyResource>, place: Atom) -> NifResult<Atom> {
    if place == atoms::thread() {
        resource.topology.panic_for_test();
        Ok(atoms::ok())
    } else {
        panic!("panic requested by the test hook inside a NIF call")
    }
}

#[rustler::nif]
fn running(resource: ResourceArc<TopologyResource>) -> bool {
    resource.topology.is_running()
}

/// Takes up to `max` waiting peer events: `{events, more?}`. With `more?` the owner
/// comes back for the rest (it is not sent `:native_gossip_events` again).
#[rustler::nif]
fn take_events<'a>(env: Env<'a>, resource: ResourceArc<TopologyResource>, max: usize) -> Term<'a> {
    let (events, more) = resource.topology.take_events(max);
    let terms: Vec<Term<'a>> = events.iter().map(|e| event_term(env, e)).collect();
    (terms, more).encode(env)
}

/// On a dirty scheduler: up to `:max_peers` maps are built.
#[rustler::nif(schedule = "DirtyCpu")]
fn members<'a>(env: Env<'a>, resource: ResourceArc<TopologyResource>) -> NifResult<Term<'a>> {
    let rows = resource.topology.members();
    let key = |name: &str| Atom::from_str(env, name).map(|a| a.encode(env));
    let keys = [
        key("node")?,
        key("address")?,
        key("port")?,
        key("incarnation")?,
        key("state")?,
        key("connected?")?,
        key("last_seen")?,
        key("tags")?,
        key("dist_port")?,
    ];
    let mut out = Vec::with_capacity(rows.len());
    for m in rows {
        let values = [
            m.name.encode(env),
            ip_tuple(env, &m.addr),
            m.addr.port().encode(env),
            m.incarnation.encode(env),
            Atom::from_str(env, m.state.as_str())?.encode(env),
            m.connected.encode(env),
            m.last_seen_ms.encode(env),
            tags_map(env, &m.tags),
            m.dist_port.encode(env),
        ];
        out.push(Term::map_from_term_arrays(env, &keys, &values)?);
    }
    Ok(out.encode(env))
}

#[rustler::nif]
fn stats<'a>(env: Env<'a>, resource: ResourceArc<TopologyResource>) -> NifResult<Term<'a>> {
    let (s, peers) = resource.topology.stats();
    let mut dropped = Vec::with_capacity(DropReason::ALL.len());
    // A node's own heartbeats looped back are counted apart (`looped_back`).
    for &r in DropReason::ALL
        .iter()
        .filter(|&&r| r != DropReason::OwnPacket)
    {
        dropped.push((Atom::from_str(env, r.as_str())?, s.dropped(r)));
    }
    let dropped = Term::map_from_pairs(env, &dropped)?;
    let pairs: [(&str, Term<'a>); 16] = [
        ("sent", s.sent.encode(env)),
        ("send_errors", s.send_errors.encode(env)),
        ("last_send_error", s.last_send_error.encode(env)),
        ("looped_back", s.looped_back.encode(env)),
        ("received", s.received.encode(env)),
        ("accepted", s.accepted.encode(env)),
        ("dropped", dropped),
        ("events", s.events.encode(env)),
        ("events_coalesced", s.events_coalesced.encode(env)),
        ("events_dropped", s.events_dropped.encode(env)),
        ("unicast_withheld", s.unicast_withheld.encode(env)),
        ("names_made", resource.topology.names_made().encode(env)),
        ("peers", peers.encode(env)),
        ("incarnation", resource.topology.incarnation().encode(env)),
        ("joined", resource.topology.joined().encode(env)),
        (
            "other_clusters",
            resource.topology.other_clusters().encode(env),
        ),
    ];
    let mut keyed = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        keyed.push((Atom::from_str(env, k)?, v));
    }
    Term::map_from_pairs(env, &keyed)
}

/// Every drop reason with the sentence that explains it, in the stats' order:
/// `[{atom, text}]`. `NativeGossip.DropReason` is checked against it.
#[rustler::nif]
fn drop_reasons(env: Env<'_>) -> NifResult<Vec<(Atom, &'static str)>> {
    DropReason::ALL
        .iter()
        .map(|r| Ok((Atom::from_str(env, r.as_str())?, r.explanation())))
        .collect()
}

rustler::init!("Elixir.NativeGossip.Native");
