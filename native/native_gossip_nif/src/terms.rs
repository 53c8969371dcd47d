//! Terms built for the owner: addresses, tags, events, `members/1` and `stats/1`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use native_gossip_core::{DropReason, PeerEvent};
use rustler::{Atom, Binary, Encoder, Env, NifResult, ResourceArc, Term};

use crate::TopologyResource;

/// A map with atom keys (all of them fixed names).
pub(crate) fn map_of<'a>(env: Env<'a>, pairs: &[(&str, Term<'a>)]) -> NifResult<Term<'a>> {
    let mut keyed = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        keyed.push((Atom::from_str(env, k)?, *v));
    }
    Term::map_from_pairs(env, &keyed)
}

pub(crate) fn ip_tuple<'a>(env: Env<'a>, addr: &SocketAddr) -> Term<'a> {
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

/// An IP address tuple (`{a, b, c, d}` or eight 16-bit parts), if `term` is one.
pub(crate) fn ip_of(term: Term) -> Option<IpAddr> {
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

/// One waiting event as the owner takes it: a map, matched by key on the Elixir side
/// (`%{kind, name, address, incarnation, lead, tags, dist_port, proven}`).
pub(crate) fn event_term<'a>(env: Env<'a>, event: &PeerEvent, held: Duration) -> Term<'a> {
    let kind = Atom::from_str(env, event.kind.as_str()).expect("fixed atom");
    let mut name = rustler::NewBinary::new(env, event.name.len());
    name.as_mut_slice().copy_from_slice(event.name.as_bytes());
    let name: Binary = name.into();
    let held = u64::try_from(held.as_millis()).unwrap_or(u64::MAX);
    let pairs: [(&str, Term<'a>); 9] = [
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
        ("held", held.encode(env)),
    ];
    map_of(env, &pairs).expect("fixed, distinct keys")
}

/// Tag records as a map of binaries (keys and values are never atoms).
pub(crate) fn tags_map<'a>(env: Env<'a>, records: &[u8]) -> Term<'a> {
    let pairs: Vec<(&str, &str)> = native_gossip_core::wire::tags(records).collect();
    Term::map_from_pairs(env, &pairs).unwrap_or_else(|_| Term::map_new(env))
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
    let pairs: [(&str, Term<'a>); 18] = [
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
        ("answers", s.answers.encode(env)),
        ("burst_skipped", s.burst_skipped.encode(env)),
        ("names_made", resource.topology.names_made().encode(env)),
        ("peers", peers.encode(env)),
        ("incarnation", resource.topology.incarnation().encode(env)),
        ("joined", resource.topology.joined().encode(env)),
        (
            "other_clusters",
            resource.topology.other_clusters().encode(env),
        ),
    ];
    map_of(env, &pairs)
}
