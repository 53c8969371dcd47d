//! libcluster's Gossip heartbeat format, read and written for rolling migrations
//! (`compat: :libcluster`).
//!
//! A libcluster Gossip heartbeat is `"heartbeat::"` followed by the external term
//! format of `%{node: node_name}`. With a secret, the datagram is a random 16-byte IV
//! followed by AES-256-CBC, under the key SHA-256(secret), of that whole plaintext,
//! PKCS#7-padded. There is no MAC, no timestamp and no sequence number.
//!
//! The term is decoded here, strictly: only the bytes that `:erlang.term_to_binary/1`
//! writes for a one-key map whose key is the atom `node` and whose value is an atom,
//! in the atom encodings OTP 25 to 28 write (`ATOM_EXT`, `SMALL_ATOM_EXT`,
//! `ATOM_UTF8_EXT`, `SMALL_ATOM_UTF8_EXT`), with nothing after it. The node name must
//! then pass the same rules as a native heartbeat's. With a secret, nothing is looked
//! at before decryption and the padding check pass.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use sha2::{Digest, Sha256};

use crate::auth::Keyring;
use crate::name;
use crate::reason::DropReason;

/// What every libcluster Gossip plaintext starts with.
pub const PREFIX: &[u8] = b"heartbeat::";
/// AES block and IV size.
const BLOCK: usize = 16;

const VERSION_MAGIC: u8 = 131;
const MAP_EXT: u8 = 116;
const ATOM_EXT: u8 = 100;
const SMALL_ATOM_EXT: u8 = 115;
const ATOM_UTF8_EXT: u8 = 118;
const SMALL_ATOM_UTF8_EXT: u8 = 119;

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// The AES-256 key libcluster derives from a secret: SHA-256 of it.
pub fn key(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

/// The keys of a keyring's secrets, in its order (the first one encrypts).
pub fn keys(keyring: &Keyring) -> Vec<[u8; 32]> {
    keyring.secrets().iter().map(|s| key(s)).collect()
}

/// Reads one atom at the start of `bytes`: its text and the rest.
fn atom(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (len, rest) = match tag {
        ATOM_EXT | ATOM_UTF8_EXT => {
            let (l, rest) = rest.split_at_checked(2)?;
            (u16::from_be_bytes([l[0], l[1]]) as usize, rest)
        }
        SMALL_ATOM_EXT | SMALL_ATOM_UTF8_EXT => {
            let (&l, rest) = rest.split_first()?;
            (l as usize, rest)
        }
        _ => return None,
    };
    rest.split_at_checked(len)
}

/// Decodes a plaintext heartbeat: the node name it announces.
pub fn decode_plain(packet: &[u8]) -> Result<&str, DropReason> {
    let term = packet
        .strip_prefix(PREFIX)
        .ok_or(DropReason::LegacyBadTerm)?;
    let (header, rest) = term.split_at_checked(6).ok_or(DropReason::LegacyBadTerm)?;
    if header != [VERSION_MAGIC, MAP_EXT, 0, 0, 0, 1] {
        return Err(DropReason::LegacyBadTerm);
    }
    let (key, rest) = atom(rest).ok_or(DropReason::LegacyBadTerm)?;
    if key != b"node" {
        return Err(DropReason::LegacyBadTerm);
    }
    let (value, rest) = atom(rest).ok_or(DropReason::LegacyBadTerm)?;
    if !rest.is_empty() {
        return Err(DropReason::LegacyBadTerm);
    }
    name::validate(value).map_err(|_| DropReason::BadName)
}

/// Decrypts an encrypted heartbeat with any of `keys` and decodes it: the node name
/// it announces. A datagram that no key decrypts to a padded plaintext is
/// `LegacyBadCiphertext`; one that does, but is no heartbeat, `LegacyBadTerm`.
pub fn decode_encrypted(packet: &[u8], keys: &[[u8; 32]]) -> Result<String, DropReason> {
    if packet.len() < 2 * BLOCK || !packet.len().is_multiple_of(BLOCK) {
        return Err(DropReason::LegacyBadCiphertext);
    }
    let (iv, ciphertext) = packet.split_at(BLOCK);
    let mut outcome = Err(DropReason::LegacyBadCiphertext);
    for key in keys {
        let mut buf = ciphertext.to_vec();
        let Ok(plain) =
            Aes256CbcDec::new(key.into(), iv.into()).decrypt_padded_mut::<Pkcs7>(&mut buf)
        else {
            continue;
        };
        match decode_plain(plain) {
            Ok(name) => return Ok(name.to_owned()),
            Err(e) => outcome = Err(e),
        }
    }
    outcome
}

/// The name a libcluster Gossip heartbeat announces: plaintext when `keys` is empty
/// (a topology without a secret), else encrypted under one of them.
pub fn decode(packet: &[u8], keys: &[[u8; 32]]) -> Result<String, DropReason> {
    if keys.is_empty() {
        decode_plain(packet).map(str::to_owned)
    } else {
        decode_encrypted(packet, keys)
    }
}

/// Whether a datagram is a libcluster Gossip heartbeat: its plaintext, or encrypted
/// under one of `keys` (for a node that does not speak the format, to say what it
/// hears).
pub fn is_heartbeat(packet: &[u8], keys: &[[u8; 32]]) -> bool {
    decode_plain(packet).is_ok() || (!keys.is_empty() && decode_encrypted(packet, keys).is_ok())
}

/// A plaintext heartbeat for `name`, as `:erlang.term_to_binary/1` of OTP 26 and later
/// writes it (UTF-8 atoms); every OTP that libcluster runs on reads it.
pub fn encode_plain(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(PREFIX.len() + 14 + name.len());
    out.extend_from_slice(PREFIX);
    out.extend_from_slice(&[VERSION_MAGIC, MAP_EXT, 0, 0, 0, 1]);
    out.extend_from_slice(&[SMALL_ATOM_UTF8_EXT, 4]);
    out.extend_from_slice(b"node");
    // Names are at most 255 bytes (name::validate), so a small atom holds them.
    out.extend_from_slice(&[SMALL_ATOM_UTF8_EXT, name.len() as u8]);
    out.extend_from_slice(name.as_bytes());
    out
}

/// An encrypted heartbeat for `name`: `iv` followed by AES-256-CBC of the padded
/// plaintext. `iv` must be fresh random bytes for each packet.
pub fn encode_encrypted(name: &str, key: &[u8; 32], iv: &[u8; BLOCK]) -> Vec<u8> {
    let plain = encode_plain(name);
    let ciphertext =
        Aes256CbcEnc::new(key.into(), iv.into()).encrypt_padded_vec_mut::<Pkcs7>(&plain);
    let mut out = Vec::with_capacity(BLOCK + ciphertext.len());
    out.extend_from_slice(iv);
    out.extend_from_slice(&ciphertext);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `term_to_binary(%{node: :"a@h"})` written out by hand, with each atom encoding.
    fn term(tag: u8, name: &[u8]) -> Vec<u8> {
        let atom = |text: &[u8]| -> Vec<u8> {
            let mut v = vec![tag];
            if tag == ATOM_EXT || tag == ATOM_UTF8_EXT {
                v.extend_from_slice(&(text.len() as u16).to_be_bytes());
            } else {
                v.push(text.len() as u8);
            }
            v.extend_from_slice(text);
            v
        };
        let mut out = PREFIX.to_vec();
        out.extend_from_slice(&[131, 116, 0, 0, 0, 1]);
        out.extend(atom(b"node"));
        out.extend(atom(name));
        out
    }

    #[test]
    fn every_atom_encoding_is_read() {
        for tag in [ATOM_EXT, SMALL_ATOM_EXT, ATOM_UTF8_EXT, SMALL_ATOM_UTF8_EXT] {
            assert_eq!(decode_plain(&term(tag, b"a@host1")), Ok("a@host1"));
        }
        assert_eq!(decode_plain(&encode_plain("n@10.0.0.1")), Ok("n@10.0.0.1"));
    }

    #[test]
    fn anything_else_is_refused() {
        let good = term(SMALL_ATOM_UTF8_EXT, b"a@h");
        let bad = DropReason::LegacyBadTerm;
        // Trailing bytes, a cut term, another prefix.
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(decode_plain(&trailing), Err(bad));
        for cut in PREFIX.len()..good.len() {
            assert_eq!(decode_plain(&good[..cut]), Err(bad), "cut at {cut}");
        }
        assert_eq!(decode_plain(b"heartbeat:"), Err(bad));
        // Two keys; another key; a string value; a compressed term (tag 80).
        let mut two = good.clone();
        two[PREFIX.len() + 5] = 2;
        assert_eq!(decode_plain(&two), Err(bad));
        let mut other_key = good.clone();
        other_key[PREFIX.len() + 8] = b'm';
        assert_eq!(decode_plain(&other_key), Err(bad));
        let mut binary = PREFIX.to_vec();
        binary.extend_from_slice(&[131, 116, 0, 0, 0, 1, 119, 4]);
        binary.extend_from_slice(b"node");
        binary.extend_from_slice(&[109, 0, 0, 0, 3]);
        binary.extend_from_slice(b"a@h");
        assert_eq!(decode_plain(&binary), Err(bad));
        let mut compressed = PREFIX.to_vec();
        compressed.extend_from_slice(&[131, 80, 0, 0, 0, 20]);
        assert_eq!(decode_plain(&compressed), Err(bad));
        // An atom length that runs past the end.
        let mut long = PREFIX.to_vec();
        long.extend_from_slice(&[131, 116, 0, 0, 0, 1, 118, 255, 255]);
        assert_eq!(decode_plain(&long), Err(bad));
    }

    #[test]
    fn names_follow_the_native_rules() {
        assert_eq!(
            decode_plain(&term(SMALL_ATOM_UTF8_EXT, b"no-at-sign")),
            Err(DropReason::BadName)
        );
        assert_eq!(
            decode_plain(&term(ATOM_UTF8_EXT, "a\u{e9}@h".as_bytes())),
            Err(DropReason::BadName)
        );
        assert_eq!(
            decode_plain(&term(ATOM_EXT, &[b'a', 0xE9, b'@', b'h'])),
            Err(DropReason::BadName)
        );
    }

    #[test]
    fn encrypted_round_trip_and_wrong_keys() {
        let k = key(b"libcluster secret");
        let iv = [7u8; 16];
        let packet = encode_encrypted("a@h", &k, &iv);
        assert!(packet.len().is_multiple_of(16));
        assert_eq!(&packet[..16], &iv);
        let other = key(b"another");
        assert_eq!(decode_encrypted(&packet, &[other, k]).as_deref(), Ok("a@h"));
        assert_eq!(
            decode_encrypted(&packet, &[other]),
            Err(DropReason::LegacyBadCiphertext)
        );
        // Lengths that cannot be an IV and whole blocks.
        for len in [0, 15, 16, 31, 33] {
            assert_eq!(
                decode_encrypted(&vec![0; len], &[k]),
                Err(DropReason::LegacyBadCiphertext)
            );
        }
        // A padded plaintext that is not a heartbeat.
        let junk = Aes256CbcEnc::new((&k).into(), (&iv).into())
            .encrypt_padded_vec_mut::<Pkcs7>(b"heartbeat::nonsense");
        let mut p = iv.to_vec();
        p.extend_from_slice(&junk);
        assert_eq!(decode_encrypted(&p, &[k]), Err(DropReason::LegacyBadTerm));
    }
}
