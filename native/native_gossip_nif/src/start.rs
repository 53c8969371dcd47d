//! Starting a topology: the options `NativeGossip.Native.start/1` takes, and the
//! mailbox through which the topology's thread reaches its owner.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use native_gossip_core::{Config, Keyring, NameCheck};
use native_gossip_io::{EventSink, SocketConfig, StartError, Topology};
use rustler::{
    Atom, Binary, Encoder, Env, LocalPid, NifMap, NifResult, OwnedEnv, ResourceArc, Term,
};

use crate::{atoms, TopologyResource};

/// What `NativeGossip.Native.start/1` takes; built and validated by `NativeGossip.Options`.
#[derive(NifMap)]
pub(crate) struct StartOptions<'a> {
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
    /// nil: no bound.
    max_names: Option<usize>,
    /// Milliseconds; nil: not checked.
    max_clock_skew: Option<u64>,
    new_peer_rate: u32,
    /// New names one address may introduce at once (see `new_peer_rate`).
    new_peer_burst: u32,
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

/// Opens the socket and starts the thread; the calling process becomes the owner and is
/// monitored. Returns `{:ok, ref}` or `{:error, {kind, message}}`.
///
/// On a normal scheduler: a few socket calls, the interface list and a thread spawn,
/// 0.1-0.2 ms on a quiet machine (nothing here waits on the network or a name
/// service). A dirty one cost more than the call: the job wakes a dirty I/O scheduler,
/// which spins after it as the BEAM's schedulers do (44 wake-ups per VM, 0.6 ms of CPU,
/// measured by thread in a formation of 32 VMs on two cores).
#[rustler::nif]
fn start<'a>(env: Env<'a>, opts: StartOptions<'a>) -> NifResult<Term<'a>> {
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
    match Topology::start(config(opts), socket, mailbox) {
        Ok(topology) => {
            let resource = ResourceArc::new(TopologyResource { topology });
            if env.monitor(&resource, &owner).is_none() {
                // The caller is already gone: nobody will ever stop this topology. The
                // thread is told to stop, not waited for (a normal scheduler).
                resource.topology.signal_stop(false);
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

/// The engine's configuration, as `NativeGossip.Options` validated it.
fn config(opts: StartOptions<'_>) -> Config {
    let keys = Keyring::new(opts.secrets.iter().map(|b| b.as_slice().to_vec()).collect());
    Config {
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
        new_peer_burst: opts.new_peer_burst,
        compat_libcluster: opts.compat_libcluster,
        seeds: parse_seeds(&opts.seeds),
        max_names: opts.max_names,
        name_exists: atom_exists(),
        max_clock_skew: opts.max_clock_skew.map(Duration::from_millis),
        cluster: opts.cluster,
        tags: opts.tags,
        dist_port: opts.dist_port,
        // Filled in by `Topology::start` from this host's interfaces, and its answer
        // socket.
        own_addresses: Vec::new(),
        answer_port: 0,
    }
}

fn start_error<'a>(env: Env<'a>, e: &StartError) -> Term<'a> {
    let kind = Atom::from_str(env, e.kind()).expect("fixed atom");
    (atoms::error(), (kind, e.message())).encode(env)
}

fn bad_option<'a>(env: Env<'a>, what: &str, value: &str) -> Term<'a> {
    start_error(
        env,
        &StartError::Socket(format!("{what} is not an address: {value:?}")),
    )
}

/// Seeds as socket addresses; ones that do not parse are left out (the Elixir side
/// only passes resolved addresses).
pub(crate) fn parse_seeds(seeds: &[String]) -> Vec<SocketAddr> {
    seeds.iter().filter_map(|s| s.parse().ok()).collect()
}

/// Whether a name already is an atom in this VM (admitting it again makes none).
fn atom_exists() -> NameCheck {
    let env = std::sync::Mutex::new(OwnedEnv::new());
    NameCheck::new(move |name| {
        let env = env.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        env.run(|env| Atom::existing_from_bytes(env, name.as_bytes()).is_ok())
    })
}

struct Mailbox {
    env: OwnedEnv,
    owner: LocalPid,
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
