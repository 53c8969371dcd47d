//! Wire format v1 of a NativeGossip heartbeat (see `docs/PROTOCOL.md`).
//!
//! ```text
//! offset size  field
//!  0      4    magic "NGSP"
//!  4      1    version (1)
//!  5      1    flags: bit 0 LEAVING, bit 1 JOINING, bit 2 SIGNED, bit 3 NEWCOMER,
//!                bit 4 SEALED; others 0 on send, ignored on receipt
//!  6      1    N = length of the node name (1..=255)
//!  7      1    reserved, 0 on send, ignored on receipt
//!  8      8    incarnation (u64, big endian)
//! 16      8    sequence (u64, big endian)
//! 24      8    timestamp, milliseconds since the Unix epoch (u64, big endian)
//! 32      2    E = length of the options block (u16, big endian)
//! 34      N    node name, `name@host`
//! 34+N    E    options: (type u8, length u8, value) records; unknown types are skipped
//! 34+N+E  32   HMAC-SHA256 over bytes 0..34+N+E, present iff SIGNED
//! ```
//!
//! Options (v1 nodes that know none of them skip them all):
//!
//! ```text
//! type 1  CLUSTER  the cluster label, 1..=64 bytes of UTF-8; at most one
//! type 2  TAG      K (u8), K bytes of key (1..=64, UTF-8), then the value (UTF-8)
//! type 3  DIST     the sender's distribution listen port (u16, big endian, not 0)
//! type 4  ADDR     one of the sender's own IP addresses (4 or 16 bytes), at most 8
//! type 5  ANSWER   the port (u16, big endian, not 0) at the sender's source address
//!                  where answers to its JOINING heartbeats may go by unicast; at most one
//! ```
//!
//! A sealed heartbeat (SEALED, with `:encrypt`) hides everything after the flags:
//!
//! ```text
//!  0      4    magic "NGSP"
//!  4      1    version (1)
//!  5      1    flags: SEALED only
//!  6     24    nonce (random)
//! 30      L    XChaCha20-Poly1305 of bytes 5.. of the unsigned heartbeat above
//!              (its own flags first, SIGNED and SEALED clear), the 6 bytes before as
//!              associated data, then the 16-byte tag
//! ```
//!
//! Decoding never allocates for a packet it rejects before the name check (a sealed
//! one is opened into a buffer the caller keeps), never panics, and checks the MAC or
//! the AEAD tag in constant time before any field is trusted.

use crate::auth::{Keyring, MAC_LEN, NONCE_LEN, SEAL_TAG_LEN};
use crate::name::{self, NameError};
use crate::reason::DropReason;

mod options;

pub use options::{
    address_records, addresses, answer_port_record, dist_port_record, heard_record, options_block,
    peers_record, same_tags, tag_records, tags, OptionsError,
};
use options::{check_options, records};

/// The four bytes every v1 packet starts with.
pub const MAGIC: [u8; 4] = *b"NGSP";
/// The only version this crate speaks.
pub const VERSION: u8 = 1;
/// Length of the fixed header, before the name.
pub const HEADER_LEN: usize = 34;
/// The smallest packet that can be valid: header plus a three-byte name (`a@b`).
pub const MIN_PACKET: usize = HEADER_LEN + 3;
/// The largest packet accepted or sent: fits an IPv6 minimum-MTU path with room to spare.
pub const MAX_PACKET: usize = 1200;
/// Bytes in front of a sealed heartbeat's ciphertext: magic, version, flags, nonce.
pub const SEALED_HEAD: usize = 6 + NONCE_LEN;

/// The sender is leaving the group on purpose: do not reconnect to this incarnation.
pub const FLAG_LEAVING: u8 = 0b001;
/// The sender has just started: peers answer with a heartbeat of their own.
pub const FLAG_JOINING: u8 = 0b010;
/// An HMAC-SHA256 trailer is present.
pub const FLAG_SIGNED: u8 = 0b100;
/// The sender started (or rejoined its group) less than one interval ago. Unlike
/// JOINING it is also set on answers, so both sides of a pair agree on who is new.
pub const FLAG_NEWCOMER: u8 = 0b1000;
/// The rest of the packet is encrypted (see the module docs).
pub const FLAG_SEALED: u8 = 0b1_0000;

/// Option record: the cluster label.
pub const OPT_CLUSTER: u8 = 1;
/// Option record: one tag.
pub const OPT_TAG: u8 = 2;
/// Option record: the sender's distribution listen port.
pub const OPT_DIST: u8 = 3;
/// Option record: one of the sender's own IP addresses (4 or 16 bytes). With a secret
/// these bind a heartbeat to where it may come from: a receiver drops a signed or
/// sealed heartbeat whose source address is not among them (`foreign_source`).
pub const OPT_ADDR: u8 = 4;
/// Option record: where answers to the sender's JOINING heartbeats go by unicast (the
/// port of its answer socket, at its source address). A member that can trust the
/// source (the heartbeat is signed and bound to it) answers there, so that a join costs
/// each member O(1) datagrams; without the record (older nodes) answers are multicast.
pub const OPT_ANSWER: u8 = 5;
/// Option record, in a unicast answer only: the answer is to the incarnation named
/// (8 bytes): its sender heard it. Tells a newcomer who has heard it, so that its
/// joining burst can stop once every peer has (`Engine`: the burst's
/// acknowledgements).
pub const OPT_HEARD: u8 = 6;
/// Option record, in every signed heartbeat: how many peers the sender holds alive
/// (4 bytes). Tells a newcomer how many acknowledgements to wait for.
pub const OPT_PEERS: u8 = 7;
/// Most `OPT_ADDR` records a heartbeat carries (and a receiver accepts).
pub const MAX_ADDRS: usize = 8;
/// Longest cluster label, in bytes.
pub const MAX_CLUSTER: usize = 64;
/// Longest tag key, in bytes.
pub const MAX_TAG_KEY: usize = 64;
/// Most bytes the tag records of one heartbeat take (each record 3 bytes plus its key
/// and value): a node's `:tags` is refused at start beyond this.
pub const MAX_TAGS: usize = 512;

/// A heartbeat: decoded and verified (borrowing the name from the datagram), or to
/// encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat<'a> {
    pub name: &'a str,
    pub incarnation: u64,
    pub sequence: u64,
    pub timestamp_ms: u64,
    pub leaving: bool,
    pub joining: bool,
    pub newcomer: bool,
    /// The options block (well-formed records; see `cluster` and `tags`).
    pub options: &'a [u8],
}

/// What to put in an outgoing heartbeat: the same fields.
pub type Outgoing<'a> = Heartbeat<'a>;

impl<'a> Heartbeat<'a> {
    /// The cluster label (empty when the heartbeat has none).
    pub fn cluster(&self) -> &'a [u8] {
        records(self.options)
            .find(|(t, _)| *t == OPT_CLUSTER)
            .map_or(&[], |(_, v)| v)
    }

    /// The tags, in the order sent.
    pub fn tags(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        tags(self.options)
    }

    /// The port where the sender takes answers to its JOINING heartbeats by unicast
    /// (`OPT_ANSWER`), if it says.
    pub fn answer_port(&self) -> Option<u16> {
        records(self.options)
            .find(|(t, _)| *t == OPT_ANSWER)
            .map(|(_, v)| u16::from_be_bytes([v[0], v[1]]))
    }

    /// The incarnation an answer acknowledges (`OPT_HEARD`), if it does.
    pub fn heard(&self) -> Option<u64> {
        records(self.options)
            .find(|(t, _)| *t == OPT_HEARD)
            .map(|(_, v)| u64::from_be_bytes(v.try_into().expect("checked: 8 bytes")))
    }

    /// How many peers the sender holds alive (`OPT_PEERS`), if it says.
    pub fn peers(&self) -> Option<u32> {
        records(self.options)
            .find(|(t, _)| *t == OPT_PEERS)
            .map(|(_, v)| u32::from_be_bytes(v.try_into().expect("checked: 4 bytes")))
    }

    /// The sender's distribution listen port, when it says (0: it does not).
    pub fn dist_port(&self) -> u16 {
        records(self.options)
            .find(|(t, _)| *t == OPT_DIST)
            .map_or(0, |(_, v)| u16::from_be_bytes([v[0], v[1]]))
    }
}
/// Encodes a heartbeat: sealed with the keyring's first secret if it encrypts, signed
/// with it if it has one, else plain.
///
/// The name must already have passed `name::validate` (the engine checks it once at
/// start); an invalid one is refused here too rather than put on the wire.
pub fn encode(msg: &Outgoing<'_>, keys: &Keyring) -> Result<Vec<u8>, NameError> {
    name::validate(msg.name.as_bytes())?;
    let mut flags = 0u8;
    if msg.leaving {
        flags |= FLAG_LEAVING;
    }
    if msg.joining {
        flags |= FLAG_JOINING;
    }
    if msg.newcomer {
        flags |= FLAG_NEWCOMER;
    }
    let sealing = keys.is_sealing();
    if keys.is_signing() && !sealing {
        flags |= FLAG_SIGNED;
    }
    let name = msg.name.as_bytes();
    let mut out =
        Vec::with_capacity(SEALED_HEAD + HEADER_LEN + name.len() + msg.options.len() + MAC_LEN);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(flags);
    out.push(name.len() as u8);
    out.push(0);
    out.extend_from_slice(&msg.incarnation.to_be_bytes());
    out.extend_from_slice(&msg.sequence.to_be_bytes());
    out.extend_from_slice(&msg.timestamp_ms.to_be_bytes());
    out.extend_from_slice(&(msg.options.len() as u16).to_be_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(msg.options);
    if sealing {
        let mut inner = out.split_off(5);
        let head = [MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], VERSION, FLAG_SEALED];
        let nonce = keys.seal(&head, &mut inner).expect("the keyring seals");
        out.clear();
        out.extend_from_slice(&head);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&inner);
    } else if let Some(mac) = keys.sign(&out) {
        out.extend_from_slice(&mac);
    }
    debug_assert!(out.len() <= MAX_PACKET);
    Ok(out)
}

fn be_u64(bytes: &[u8], at: usize) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(buf)
}

/// Decodes and verifies one datagram that is not sealed: a sealed one is `sealed` here,
/// whatever the keyring (`decode_with` opens them).
pub fn decode<'a>(packet: &'a [u8], keys: &Keyring) -> Result<Heartbeat<'a>, DropReason> {
    if packet.len() <= MAX_PACKET && is_sealed(packet) {
        return Err(DropReason::Sealed);
    }
    decode_plain(packet, keys, false)
}

/// Whether a datagram claims to be a sealed v1 heartbeat.
fn is_sealed(packet: &[u8]) -> bool {
    packet.len() > 5 && packet[..4] == MAGIC && packet[4] == VERSION && packet[5] & FLAG_SEALED != 0
}

/// Decodes and verifies one datagram, opening a sealed one into `scratch` (whose
/// contents are replaced; keep one buffer and pass it each time). Checks run cheapest
/// first; the MAC or the AEAD tag is checked before the name is looked at, so with a
/// secret nothing unauthenticated is parsed beyond the fixed header's lengths.
///
/// A keyring that encrypts also accepts signed heartbeats (its secrets verify them),
/// so that encryption can be turned on node by node; one that does not drops sealed
/// heartbeats as `sealed`.
pub fn decode_with<'a>(
    packet: &'a [u8],
    keys: &Keyring,
    scratch: &'a mut Vec<u8>,
) -> Result<Heartbeat<'a>, DropReason> {
    if packet.len() > MAX_PACKET {
        return Err(DropReason::TooLong);
    }
    if !is_sealed(packet) {
        return decode_plain(packet, keys, false);
    }
    if !keys.is_sealing() {
        return Err(DropReason::Sealed);
    }
    if packet.len() < SEALED_HEAD + (MIN_PACKET - 5) + SEAL_TAG_LEN {
        return Err(DropReason::TooShort);
    }
    let mut plain = std::mem::take(scratch);
    let opened = keys.open(
        &packet[6..SEALED_HEAD],
        &packet[..6],
        &packet[SEALED_HEAD..],
        &mut plain,
    );
    if !opened {
        *scratch = plain;
        return Err(DropReason::BadSignature);
    }
    // The inner bytes start at the flags: put magic and version back in front.
    plain.splice(0..0, packet[..5].iter().copied());
    *scratch = plain;
    decode_plain(scratch, keys, true)
}

/// The v1 packet, once opened if it was sealed (`opened`: it was, and is authentic).
fn decode_plain<'a>(
    packet: &'a [u8],
    keys: &Keyring,
    opened: bool,
) -> Result<Heartbeat<'a>, DropReason> {
    let (flags, name_len, body_len) = frame(packet)?;
    authenticate(packet, flags, body_len, keys, opened)?;
    let options = &packet[HEADER_LEN + name_len..body_len];
    check_options(options)?;
    let name = name::validate(&packet[HEADER_LEN..HEADER_LEN + name_len])?;
    Ok(Heartbeat {
        name,
        incarnation: be_u64(packet, 8),
        sequence: be_u64(packet, 16),
        timestamp_ms: be_u64(packet, 24),
        leaving: flags & FLAG_LEAVING != 0,
        joining: flags & FLAG_JOINING != 0,
        newcomer: flags & FLAG_NEWCOMER != 0,
        options,
    })
}

/// The framing of a v1 packet: `(flags, name length, length before the MAC)`, or why
/// it is not one.
fn frame(packet: &[u8]) -> Result<(u8, usize, usize), DropReason> {
    if packet.len() > MAX_PACKET {
        return Err(DropReason::TooLong);
    }
    if packet.len() < 4 || packet[..4] != MAGIC {
        return Err(if packet.len() < MIN_PACKET {
            DropReason::TooShort
        } else {
            DropReason::BadMagic
        });
    }
    if packet.len() < MIN_PACKET {
        return Err(DropReason::TooShort);
    }
    if packet[4] != VERSION {
        return Err(DropReason::UnsupportedVersion);
    }
    let flags = packet[5];
    let name_len = packet[6] as usize;
    let options_len = u16::from_be_bytes([packet[32], packet[33]]) as usize;
    let body_len = HEADER_LEN + name_len + options_len;
    let expected = body_len + if flags & FLAG_SIGNED != 0 { MAC_LEN } else { 0 };
    if name_len == 0 || expected != packet.len() {
        return Err(DropReason::Malformed);
    }
    Ok((flags, name_len, body_len))
}

/// The MAC checked (in constant time) when the keyring signs; a packet opened from a
/// seal (authentic already) may claim neither.
fn authenticate(
    packet: &[u8],
    flags: u8,
    body_len: usize,
    keys: &Keyring,
    opened: bool,
) -> Result<(), DropReason> {
    if opened {
        // Inside a seal nothing else may claim to be signed or sealed.
        if flags & (FLAG_SIGNED | FLAG_SEALED) != 0 {
            return Err(DropReason::Malformed);
        }
        return Ok(());
    }
    match (flags & FLAG_SIGNED != 0, keys.is_signing()) {
        (false, true) => Err(DropReason::MissingSignature),
        (true, false) => Err(DropReason::UnexpectedSignature),
        (true, true) if !keys.verify(&packet[..body_len], &packet[body_len..]) => {
            Err(DropReason::BadSignature)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
