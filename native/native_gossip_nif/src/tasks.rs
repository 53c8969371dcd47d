//! What the mix tasks (`listen`, `doctor`) need without a running topology: decoding
//! one datagram, and making a goodbye heartbeat.

use std::net::SocketAddr;

use native_gossip_core::{DropReason, Keyring};
use rustler::{Atom, Binary, Encoder, Env, NifResult, Term};

use crate::atoms;
use crate::terms::{ip_tuple, tags_map};

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
                flags(env, &hb, bytes[5])?,
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

/// The flags of a decoded heartbeat, as atoms; `byte`: its flags byte as sent.
fn flags(
    env: Env<'_>,
    hb: &native_gossip_core::wire::Heartbeat<'_>,
    byte: u8,
) -> NifResult<Vec<Atom>> {
    let mut flags = Vec::new();
    for (on, flag) in [
        (hb.joining, "joining"),
        (hb.newcomer, "newcomer"),
        (hb.leaving, "leaving"),
        (byte & native_gossip_core::wire::FLAG_SIGNED != 0, "signed"),
        (byte & native_gossip_core::wire::FLAG_SEALED != 0, "sealed"),
    ] {
        if on {
            flags.push(Atom::from_str(env, flag)?);
        }
    }
    Ok(flags)
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
    Ok((atoms::ok(), crate::terms::map_of(env, &pairs)?).encode(env))
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
