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

use std::net::IpAddr;

use crate::auth::{Keyring, MAC_LEN, NONCE_LEN, SEAL_TAG_LEN};
use crate::name::{self, NameError};
use crate::reason::DropReason;

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

    /// The sender's distribution listen port, when it says (0: it does not).
    pub fn dist_port(&self) -> u16 {
        records(self.options)
            .find(|(t, _)| *t == OPT_DIST)
            .map_or(0, |(_, v)| u16::from_be_bytes([v[0], v[1]]))
    }
}

/// The addresses the sender lists as its own (`OPT_ADDR` records), in the order sent.
pub fn addresses(options: &[u8]) -> impl Iterator<Item = IpAddr> + '_ {
    records(options).filter_map(|(t, v)| match (t, v.len()) {
        (OPT_ADDR, 4) => Some(IpAddr::from(<[u8; 4]>::try_from(v).ok()?)),
        (OPT_ADDR, 16) => Some(IpAddr::from(<[u8; 16]>::try_from(v).ok()?)),
        _ => None,
    })
}

/// The option records that list a sender's own addresses (at most `MAX_ADDRS`).
pub fn address_records(addrs: &[IpAddr]) -> Vec<u8> {
    let mut out = Vec::new();
    for addr in addrs.iter().take(MAX_ADDRS) {
        match addr {
            IpAddr::V4(a) => {
                out.extend_from_slice(&[OPT_ADDR, 4]);
                out.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                out.extend_from_slice(&[OPT_ADDR, 16]);
                out.extend_from_slice(&a.octets());
            }
        }
    }
    out
}

/// The option record that tells a distribution listen port (nothing for 0).
pub fn dist_port_record(port: u16) -> Vec<u8> {
    if port == 0 {
        return Vec::new();
    }
    let [hi, lo] = port.to_be_bytes();
    vec![OPT_DIST, 2, hi, lo]
}

/// The (type, value) records of a well-formed options block.
fn records(mut options: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        if options.len() < 2 || options.len() < 2 + options[1] as usize {
            return None;
        }
        let (record, rest) = options.split_at(2 + options[1] as usize);
        options = rest;
        Some((record[0], &record[2..]))
    })
}

/// The tags of a well-formed options block (or of the bytes `options_block` made).
pub fn tags(options: &[u8]) -> impl Iterator<Item = (&str, &str)> {
    records(options).filter_map(|(t, v)| {
        if t != OPT_TAG || v.is_empty() || v.len() < 1 + v[0] as usize {
            return None;
        }
        let (key, value) = v[1..].split_at(v[0] as usize);
        Some((
            std::str::from_utf8(key).ok()?,
            std::str::from_utf8(value).ok()?,
        ))
    })
}

/// The whole tag records (type, length, value) of an options block, as many as fit
/// in `MAX_TAGS` bytes: what a peer's tags are kept as, and compared with.
fn kept_tag_records(mut options: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut kept = 0;
    std::iter::from_fn(move || loop {
        if options.len() < 2 || options.len() < 2 + options[1] as usize {
            return None;
        }
        let (record, rest) = options.split_at(2 + options[1] as usize);
        options = rest;
        if record[0] == OPT_TAG && kept + record.len() <= MAX_TAGS {
            kept += record.len();
            return Some(record);
        }
    })
}

/// The tag records of an options block, alone (at most `MAX_TAGS` bytes).
pub fn tag_records(options: &[u8]) -> Vec<u8> {
    kept_tag_records(options).flatten().copied().collect()
}

/// Whether the tags kept from an options block (`tag_records`) would be `kept`.
pub fn same_tags(kept: &[u8], options: &[u8]) -> bool {
    kept_tag_records(kept).eq(kept_tag_records(options))
}

/// Why a cluster label or tags cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionsError {
    Cluster(String),
    Tags(String),
}

/// The options block for a cluster label (empty: none) and tags.
pub fn options_block(cluster: &str, tags: &[(String, String)]) -> Result<Vec<u8>, OptionsError> {
    let mut out = Vec::new();
    if !cluster.is_empty() {
        if cluster.len() > MAX_CLUSTER {
            return Err(OptionsError::Cluster(format!(
                "the cluster label is {} bytes, at most {MAX_CLUSTER}",
                cluster.len()
            )));
        }
        out.extend_from_slice(&[OPT_CLUSTER, cluster.len() as u8]);
        out.extend_from_slice(cluster.as_bytes());
    }
    let mut tag_bytes = 0;
    for (key, value) in tags {
        if key.is_empty() || key.len() > MAX_TAG_KEY {
            return Err(OptionsError::Tags(format!(
                "tag key {key:?}: 1 to {MAX_TAG_KEY} bytes"
            )));
        }
        let len = 1 + key.len() + value.len();
        if len > 255 {
            return Err(OptionsError::Tags(format!(
                "tag {key:?}: key and value together take at most 254 bytes"
            )));
        }
        tag_bytes += 2 + len;
        out.extend_from_slice(&[OPT_TAG, len as u8, key.len() as u8]);
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    if tag_bytes > MAX_TAGS {
        return Err(OptionsError::Tags(format!(
            "the tags take {tag_bytes} bytes in a heartbeat, at most {MAX_TAGS}"
        )));
    }
    Ok(out)
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
    let signed = flags & FLAG_SIGNED != 0;
    let body_len = HEADER_LEN + name_len + options_len;
    let expected = body_len + if signed { MAC_LEN } else { 0 };
    if name_len == 0 || expected != packet.len() {
        return Err(DropReason::Malformed);
    }
    let body = &packet[..body_len];
    if opened {
        // Inside a seal nothing else may claim to be signed or sealed.
        if flags & (FLAG_SIGNED | FLAG_SEALED) != 0 {
            return Err(DropReason::Malformed);
        }
    } else {
        match (signed, keys.is_signing()) {
            (false, true) => return Err(DropReason::MissingSignature),
            (true, false) => return Err(DropReason::UnexpectedSignature),
            (true, true) => {
                if !keys.verify(body, &packet[body_len..]) {
                    return Err(DropReason::BadSignature);
                }
            }
            (false, false) => {}
        }
    }
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

/// The options block must be well-formed records (so that a later version can add
/// some without older nodes misreading the packet), and the records this version
/// knows must be well-formed themselves: one cluster label of 1..=64 bytes of UTF-8,
/// tags with a key of 1..=64 bytes and both UTF-8, one distribution port (2 bytes, not
/// 0).
fn check_options(mut options: &[u8]) -> Result<(), DropReason> {
    let mut clusters = 0;
    let mut dists = 0;
    let mut addrs = 0;
    while !options.is_empty() {
        if options.len() < 2 {
            return Err(DropReason::Malformed);
        }
        let len = options[1] as usize;
        if options.len() < 2 + len {
            return Err(DropReason::Malformed);
        }
        let value = &options[2..2 + len];
        let well_formed = match options[0] {
            OPT_CLUSTER => {
                clusters += 1;
                clusters == 1
                    && (1..=MAX_CLUSTER).contains(&len)
                    && std::str::from_utf8(value).is_ok()
            }
            OPT_DIST => {
                dists += 1;
                dists == 1 && len == 2 && value != [0, 0]
            }
            OPT_ADDR => {
                addrs += 1;
                addrs <= MAX_ADDRS && (len == 4 || len == 16)
            }
            OPT_TAG => {
                len >= 2 && {
                    let k = value[0] as usize;
                    (1..=MAX_TAG_KEY).contains(&k)
                        && k < len
                        && std::str::from_utf8(&value[1..1 + k]).is_ok()
                        && std::str::from_utf8(&value[1 + k..]).is_ok()
                }
            }
            _ => true,
        };
        if !well_formed {
            return Err(DropReason::Malformed);
        }
        options = &options[2 + len..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(name: &str) -> Outgoing<'_> {
        Outgoing {
            name,
            incarnation: 0x0102_0304_0506_0708,
            sequence: 42,
            timestamp_ms: 1_700_000_000_000,
            leaving: false,
            joining: true,
            newcomer: true,
            options: &[],
        }
    }

    fn keys(secrets: &[&[u8]]) -> Keyring {
        Keyring::new(secrets.iter().map(|s| s.to_vec()).collect())
    }

    #[test]
    fn round_trip_unsigned() {
        let k = Keyring::none();
        let bytes = encode(&msg("a@host1"), &k).unwrap();
        assert_eq!(bytes.len(), HEADER_LEN + 7);
        let hb = decode(&bytes, &k).unwrap();
        assert_eq!(hb.name, "a@host1");
        assert_eq!(hb.incarnation, 0x0102_0304_0506_0708);
        assert_eq!(hb.sequence, 42);
        assert_eq!(hb.timestamp_ms, 1_700_000_000_000);
        assert!(hb.joining);
        assert!(hb.newcomer);
        assert!(!hb.leaving);
    }

    #[test]
    fn round_trip_signed_and_flags() {
        let k = keys(&[b"s3cret"]);
        let mut m = msg("node_1@10.0.0.1");
        m.leaving = true;
        m.joining = false;
        m.newcomer = false;
        let bytes = encode(&m, &k).unwrap();
        assert_eq!(bytes.len(), HEADER_LEN + 15 + MAC_LEN);
        assert_eq!(bytes[5] & FLAG_SIGNED, FLAG_SIGNED);
        let hb = decode(&bytes, &k).unwrap();
        assert!(hb.leaving);
        assert!(!hb.joining);
        assert!(!hb.newcomer);
        assert_eq!(hb.name, "node_1@10.0.0.1");
    }

    #[test]
    fn header_layout_is_as_documented() {
        let bytes = encode(&msg("a@b"), &Keyring::none()).unwrap();
        assert_eq!(&bytes[0..4], b"NGSP");
        assert_eq!(bytes[4], 1);
        assert_eq!(bytes[5], FLAG_JOINING | FLAG_NEWCOMER);
        assert_eq!(bytes[6], 3);
        assert_eq!(bytes[7], 0);
        assert_eq!(&bytes[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&bytes[16..24], &42u64.to_be_bytes());
        assert_eq!(&bytes[32..34], &[0, 0]);
        assert_eq!(&bytes[34..], b"a@b");
    }

    #[test]
    fn rejects_by_size() {
        let k = Keyring::none();
        assert_eq!(decode(&[], &k), Err(DropReason::TooShort));
        assert_eq!(decode(b"NGSP\x01", &k), Err(DropReason::TooShort));
        assert_eq!(decode(&[0u8; 10], &k), Err(DropReason::TooShort));
        assert_eq!(
            decode(&vec![0u8; MAX_PACKET + 1], &k),
            Err(DropReason::TooLong)
        );
    }

    #[test]
    fn rejects_foreign_and_future_packets() {
        let k = Keyring::none();
        let mut junk = b"heartbeat::".to_vec();
        junk.resize(60, 7);
        assert_eq!(decode(&junk, &k), Err(DropReason::BadMagic));
        let mut bytes = encode(&msg("a@b"), &k).unwrap();
        bytes[4] = 2;
        assert_eq!(decode(&bytes, &k), Err(DropReason::UnsupportedVersion));
    }

    #[test]
    fn rejects_inconsistent_lengths() {
        let k = Keyring::none();
        let good = encode(&msg("abc@def"), &k).unwrap();
        let mut longer_name = good.clone();
        longer_name[6] = 8;
        assert_eq!(decode(&longer_name, &k), Err(DropReason::Malformed));
        let mut zero_name = good.clone();
        zero_name[6] = 0;
        assert_eq!(decode(&zero_name, &k), Err(DropReason::Malformed));
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(decode(&trailing, &k), Err(DropReason::Malformed));
        let mut options = good.clone();
        options[33] = 1;
        assert_eq!(decode(&options, &k), Err(DropReason::Malformed));
    }

    #[test]
    fn skips_well_formed_unknown_options() {
        let k = keys(&[b"k"]);
        let mut bytes = encode(&msg("a@b"), &Keyring::none()).unwrap();
        bytes.extend_from_slice(&[9, 2, 0xAA, 0xBB, 10, 0]);
        bytes[32..34].copy_from_slice(&6u16.to_be_bytes());
        bytes[5] |= FLAG_SIGNED;
        let mac = k.sign(&bytes).unwrap();
        bytes.extend_from_slice(&mac);
        assert_eq!(decode(&bytes, &k).unwrap().name, "a@b");
        // A record whose length runs past the block is malformed.
        let body_len = bytes.len() - MAC_LEN;
        let mut bad = bytes[..body_len].to_vec();
        bad[HEADER_LEN + 3 + 1] = 5;
        let mac = k.sign(&bad).unwrap();
        bad.extend_from_slice(&mac);
        assert_eq!(decode(&bad, &k), Err(DropReason::Malformed));
    }

    #[test]
    fn rejects_bad_names_after_framing() {
        let k = Keyring::none();
        let mut bytes = encode(&msg("a@b"), &k).unwrap();
        bytes[34] = b' ';
        assert_eq!(decode(&bytes, &k), Err(DropReason::BadName));
        assert_eq!(encode(&msg("no-at-sign"), &k), Err(NameError::NoHost));
    }

    #[test]
    fn signature_rules() {
        let signer = keys(&[b"one"]);
        let other = keys(&[b"two"]);
        let none = Keyring::none();
        let signed = encode(&msg("a@b"), &signer).unwrap();
        let unsigned = encode(&msg("a@b"), &none).unwrap();
        assert_eq!(decode(&signed, &other), Err(DropReason::BadSignature));
        assert_eq!(decode(&signed, &none), Err(DropReason::UnexpectedSignature));
        assert_eq!(
            decode(&unsigned, &signer),
            Err(DropReason::MissingSignature)
        );
        // Any byte flipped anywhere in a signed packet fails verification or framing.
        for i in 0..signed.len() {
            let mut flipped = signed.clone();
            flipped[i] ^= 0x01;
            assert!(
                decode(&flipped, &signer).is_err(),
                "flip at byte {i} accepted"
            );
        }
    }

    #[test]
    fn any_secret_of_the_ring_verifies_the_first_signs() {
        let old = keys(&[b"old"]);
        let rotating = keys(&[b"new", b"old"]);
        let new_only = keys(&[b"new"]);
        let from_old = encode(&msg("a@b"), &old).unwrap();
        let from_rotating = encode(&msg("a@b"), &rotating).unwrap();
        assert!(decode(&from_old, &rotating).is_ok());
        assert!(decode(&from_rotating, &new_only).is_ok());
        assert_eq!(decode(&from_rotating, &old), Err(DropReason::BadSignature));
    }

    #[test]
    fn drop_reason_table_is_consistent() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::ALL.len());
    }

    #[test]
    fn options_round_trip_and_are_signed() {
        let k = keys(&[b"k"]);
        let tags = vec![
            ("role".to_string(), "web".to_string()),
            ("zone".to_string(), String::new()),
            ("ümlaut".to_string(), "ünïcode".to_string()),
        ];
        let block = options_block("blue", &tags).unwrap();
        let m = Outgoing {
            options: &block,
            ..msg("a@b")
        };
        let bytes = encode(&m, &k).unwrap();
        let hb = decode(&bytes, &k).unwrap();
        assert_eq!(hb.cluster(), b"blue");
        assert_eq!(
            hb.tags().collect::<Vec<_>>(),
            [("role", "web"), ("zone", ""), ("ümlaut", "ünïcode")]
        );
        assert!(same_tags(&tag_records(hb.options), &block));
        assert!(!same_tags(
            &tag_records(hb.options),
            &options_block("blue", &[]).unwrap()
        ));
        // No label: an empty one.
        let bare = encode(&msg("a@b"), &k).unwrap();
        assert_eq!(decode(&bare, &k).unwrap().cluster(), b"");
        // Limits, checked before anything is sent.
        assert!(options_block(&"x".repeat(MAX_CLUSTER + 1), &[]).is_err());
        assert!(options_block("", &[(String::new(), "v".into())]).is_err());
        assert!(options_block("", &[("k".repeat(MAX_TAG_KEY + 1), "v".into())]).is_err());
        assert!(options_block("", &[("k".into(), "v".repeat(254))]).is_err());
        let many: Vec<_> = (0..20)
            .map(|i| (format!("k{i:02}"), "v".repeat(30)))
            .collect();
        assert!(matches!(
            options_block("", &many),
            Err(OptionsError::Tags(_))
        ));
    }

    #[test]
    fn known_options_must_be_well_formed() {
        let k = Keyring::none();
        let with = |block: &[u8]| {
            let m = Outgoing {
                options: block,
                ..msg("a@b")
            };
            decode(&encode(&m, &k).unwrap(), &k).map(|_| ())
        };
        assert_eq!(with(&[OPT_CLUSTER, 1, b'x']), Ok(()));
        // An empty label, two labels, a label that is not UTF-8.
        assert_eq!(with(&[OPT_CLUSTER, 0]), Err(DropReason::Malformed));
        assert_eq!(
            with(&[OPT_CLUSTER, 1, b'x', OPT_CLUSTER, 1, b'y']),
            Err(DropReason::Malformed)
        );
        assert_eq!(with(&[OPT_CLUSTER, 1, 0xff]), Err(DropReason::Malformed));
        // A tag with no key, a key longer than the record, a value not UTF-8.
        assert_eq!(with(&[OPT_TAG, 1, 0]), Err(DropReason::Malformed));
        assert_eq!(with(&[OPT_TAG, 2, 5, b'k']), Err(DropReason::Malformed));
        assert_eq!(
            with(&[OPT_TAG, 3, 1, b'k', 0xfe]),
            Err(DropReason::Malformed)
        );
        assert_eq!(with(&[OPT_TAG, 3, 1, b'k', b'v']), Ok(()));
        // Unknown types are skipped whatever they hold.
        assert_eq!(with(&[200, 2, 0xff, 0xfe]), Ok(()));
    }

    #[test]
    fn sealed_round_trip_and_rules() {
        let seal = Keyring::new(vec![b"k".to_vec()]).encrypting();
        let block = options_block("blue", &[("role".into(), "db".into())]).unwrap();
        let m = Outgoing {
            options: &block,
            ..msg("node@host")
        };
        let bytes = encode(&m, &seal).unwrap();
        assert_eq!(&bytes[..6], b"NGSP\x01\x10");
        assert_eq!(
            bytes.len(),
            SEALED_HEAD + (HEADER_LEN - 5) + 9 + block.len() + SEAL_TAG_LEN
        );
        let mut scratch = Vec::new();
        let hb = decode_with(&bytes, &seal, &mut scratch).unwrap();
        assert_eq!((hb.name, hb.cluster()), ("node@host", &b"blue"[..]));
        assert!(hb.joining && hb.newcomer && !hb.leaving);
        assert_eq!(hb.sequence, 42);
        // Without the key: `sealed`, with a signing keyring too; `decode` never opens.
        let signer = keys(&[b"k"]);
        assert_eq!(decode(&bytes, &signer), Err(DropReason::Sealed));
        assert_eq!(decode(&bytes, &seal), Err(DropReason::Sealed));
        let mut s2 = Vec::new();
        assert_eq!(
            decode_with(&bytes, &signer, &mut s2),
            Err(DropReason::Sealed)
        );
        // Truncated: too short to hold a heartbeat, or failing to open.
        assert_eq!(
            decode_with(&bytes[..SEALED_HEAD + 10], &seal, &mut s2),
            Err(DropReason::TooShort)
        );
        assert_eq!(
            decode_with(&bytes[..bytes.len() - 1], &seal, &mut s2),
            Err(DropReason::BadSignature)
        );
        // Inside a seal, a heartbeat claiming to be signed is malformed: the plaintext
        // sealed by hand.
        let mut inner = encode(&msg("a@b"), &Keyring::none()).unwrap().split_off(5);
        inner[0] |= FLAG_SIGNED;
        let head = *b"NGSP\x01\x10";
        let nonce = seal.seal(&head, &mut inner).unwrap();
        let mut forged = head.to_vec();
        forged.extend_from_slice(&nonce);
        forged.extend_from_slice(&inner);
        assert_eq!(
            decode_with(&forged, &seal, &mut s2),
            Err(DropReason::Malformed)
        );
    }

    #[test]
    fn the_distribution_port_round_trips_and_must_be_well_formed() {
        let k = Keyring::none();
        let mut block = options_block("blue", &[("role".into(), "db".into())]).unwrap();
        block.extend(dist_port_record(43_210));
        let m = Outgoing {
            options: &block,
            ..msg("a@b")
        };
        let hb = decode(&encode(&m, &k).unwrap(), &k).map(|hb| hb.dist_port());
        assert_eq!(hb, Ok(43_210));
        assert_eq!(
            decode(&encode(&msg("a@b"), &k).unwrap(), &k)
                .unwrap()
                .dist_port(),
            0
        );
        assert!(dist_port_record(0).is_empty());
        let with = |block: &[u8]| {
            let m = Outgoing {
                options: block,
                ..msg("a@b")
            };
            decode(&encode(&m, &k).unwrap(), &k).map(|_| ())
        };
        assert_eq!(with(&[OPT_DIST, 2, 0, 0]), Err(DropReason::Malformed));
        assert_eq!(with(&[OPT_DIST, 1, 5]), Err(DropReason::Malformed));
        assert_eq!(
            with(&[OPT_DIST, 2, 1, 1, OPT_DIST, 2, 1, 2]),
            Err(DropReason::Malformed)
        );
    }
}
