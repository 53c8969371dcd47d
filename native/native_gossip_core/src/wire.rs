//! Wire format v1 of a NativeGossip heartbeat (see `docs/PROTOCOL.md`).
//!
//! ```text
//! offset size  field
//!  0      4    magic "NGSP"
//!  4      1    version (1)
//!  5      1    flags: bit 0 LEAVING, bit 1 JOINING, bit 2 SIGNED, bit 3 NEWCOMER; others 0 on send,
//!                ignored on receipt
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
//! Decoding never allocates for a packet it rejects before the name check, never
//! panics, and checks the MAC in constant time before any field is trusted.

use crate::auth::{Keyring, MAC_LEN};
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

/// The sender is leaving the group on purpose: do not reconnect to this incarnation.
pub const FLAG_LEAVING: u8 = 0b001;
/// The sender has just started: peers answer with a heartbeat of their own.
pub const FLAG_JOINING: u8 = 0b010;
/// An HMAC-SHA256 trailer is present.
pub const FLAG_SIGNED: u8 = 0b100;
/// The sender started (or rejoined its group) less than one interval ago. Unlike
/// JOINING it is also set on answers, so both sides of a pair agree on who is new.
pub const FLAG_NEWCOMER: u8 = 0b1000;

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
}

/// What to put in an outgoing heartbeat: the same fields.
pub type Outgoing<'a> = Heartbeat<'a>;

/// Encodes a heartbeat, signed with the keyring's first secret if it has one.
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
    if keys.is_signing() {
        flags |= FLAG_SIGNED;
    }
    let name = msg.name.as_bytes();
    let mut out = Vec::with_capacity(HEADER_LEN + name.len() + MAC_LEN);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(flags);
    out.push(name.len() as u8);
    out.push(0);
    out.extend_from_slice(&msg.incarnation.to_be_bytes());
    out.extend_from_slice(&msg.sequence.to_be_bytes());
    out.extend_from_slice(&msg.timestamp_ms.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(name);
    if let Some(mac) = keys.sign(&out) {
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

/// Decodes and verifies one datagram. Checks run cheapest first; the MAC is checked
/// before the name is looked at, so with a secret nothing unauthenticated is parsed
/// beyond the fixed header's lengths.
pub fn decode<'a>(packet: &'a [u8], keys: &Keyring) -> Result<Heartbeat<'a>, DropReason> {
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
    check_options(&packet[HEADER_LEN + name_len..body_len])?;
    let name = name::validate(&packet[HEADER_LEN..HEADER_LEN + name_len])?;
    Ok(Heartbeat {
        name,
        incarnation: be_u64(packet, 8),
        sequence: be_u64(packet, 16),
        timestamp_ms: be_u64(packet, 24),
        leaving: flags & FLAG_LEAVING != 0,
        joining: flags & FLAG_JOINING != 0,
        newcomer: flags & FLAG_NEWCOMER != 0,
    })
}

/// v1 defines no option types; the block must still be well-formed records so that a
/// later version can add some without older nodes misreading the packet.
fn check_options(mut options: &[u8]) -> Result<(), DropReason> {
    while !options.is_empty() {
        if options.len() < 2 {
            return Err(DropReason::Malformed);
        }
        let len = options[1] as usize;
        if options.len() < 2 + len {
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
}
