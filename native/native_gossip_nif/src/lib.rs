//! The BEAM face of `native_gossip_core`: a resource per running topology, a handful of
//! NIFs, and an event sink that turns peer events into messages to the owner process.
//!
//! Messages sent to the owner (the process that called `start/1`):
//!
//! - `:native_gossip_events` when peer events wait: the owner takes them with
//!   `take_events/2` (each a map `%{kind, name :: binary, address: {ip_tuple, port},
//!   incarnation, lead, tags, dist_port, proven, held}` with `kind` one of `:discovered`,
//!   `:heard`, `:left`, `:lost`, `:forgotten`, `:tags_changed`, `lead` true when this
//!   node should connect at once rather than let the peer go first, `tags` a map of
//!   binaries to binaries, `dist_port` the peer's distribution listen port as its
//!   heartbeats say (0 if they do not), `proven` whether the address is proven, and
//!   `held` how long the event was held back before the owner was told, in ms).
//!   The message is sent once until the owner has taken every event, so the owner's
//!   mailbox holds at most one of them whatever the traffic; the discovery of a peer
//!   this node does not lead waits untold for up to 100 ms, unless an event that needs
//!   the owner comes (`native_gossip_core::outbox`): the owner may take events untold;
//! - `{:native_gossip_fault, message :: binary}` when the thread stops on a fault;
//! - `{:native_gossip_membership, :joined | {:not_joined, message}}` when the socket's
//!   group membership changes (it cannot join yet, or joined after all).
//!
//! All atoms created here come from fixed sets; node names cross as binaries.

use std::time::Duration;

use native_gossip_core::DropReason;
use native_gossip_io::Topology;
use rustler::{
    Atom, Binary, Encoder, Env, LocalPid, Monitor, NifResult, Resource, ResourceArc, Term,
};

mod start;
mod tasks;
mod terms;

use terms::{event_term, ip_of};

pub(crate) mod atoms {
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

pub(crate) struct TopologyResource {
    pub(crate) topology: Topology,
}

#[rustler::resource_impl]
impl Resource for TopologyResource {
    fn down<'a>(&'a self, _env: Env<'a>, _pid: LocalPid, _monitor: Monitor) {
        // The owner died without stopping us: stop quietly (no goodbye, no join here).
        self.topology.signal_stop(false);
    }
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
    resource.topology.set_seeds(start::parse_seeds(&seeds));
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

/// Test hook: the topology's thread sleeps `ms`, holding no lock (a stalled native
/// thread: the failure detector's tests check that its peers do not disconnect it).
#[rustler::nif]
fn pause_for_test(resource: ResourceArc<TopologyResource>, ms: u64) -> Atom {
    resource.topology.pause_for_test(Duration::from_millis(ms));
    atoms::ok()
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
    let terms: Vec<Term<'a>> = events
        .iter()
        .map(|t| event_term(env, &t.event, t.held))
        .collect();
    (terms, more).encode(env)
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
