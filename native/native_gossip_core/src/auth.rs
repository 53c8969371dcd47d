//! Authentication of heartbeats with a ring of shared secrets: HMAC-SHA256, or, with
//! encryption, XChaCha20-Poly1305 (keys derived from each secret with HKDF-SHA256).
//!
//! The first secret signs (or seals); any secret verifies (or opens), so a new secret
//! can be rolled through a running cluster node by node without a split. Verification
//! is constant time.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Length of the MAC trailer.
pub const MAC_LEN: usize = 32;
/// Length of a sealed heartbeat's nonce. It is synthetic (see `Keyring::seal`): no
/// randomness from the OS, so this crate needs no I/O.
pub const NONCE_LEN: usize = 24;
/// Length of a sealed heartbeat's Poly1305 tag.
pub const SEAL_TAG_LEN: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// The secrets of a topology. Empty means "no authentication".
#[derive(Clone)]
pub struct Keyring {
    // Keyed MAC states, prepared once: cloning one is cheaper than re-keying per packet.
    macs: Vec<HmacSha256>,
    // The secrets themselves, same order, for the formats that derive keys of their
    // own from them (`compat`).
    secrets: Vec<Vec<u8>>,
    // With encryption: an AEAD per secret, same order. Empty: heartbeats are signed.
    seals: Vec<XChaCha20Poly1305>,
    // With encryption: the keyed MAC that makes the first secret's nonces.
    nonces: Option<HmacSha256>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        write!(
            f,
            "Keyring({} secrets{})",
            self.macs.len(),
            if self.seals.is_empty() {
                ""
            } else {
                ", sealing"
            }
        )
    }
}

/// The encryption key of a secret: HKDF-SHA256 with a fixed salt and purpose, so that
/// the key that encrypts is never the key that signs (or libcluster's `compat` key).
fn seal_key(secret: &[u8]) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(&derived(secret, b"heartbeat encryption key").into())
}

/// The key of a secret's nonces: HKDF-SHA256 as `seal_key`, for another purpose.
fn nonce_key(secret: &[u8]) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(&derived(secret, b"heartbeat nonce key"))
        .expect("HMAC takes keys of any length")
}

fn derived(secret: &[u8], purpose: &[u8]) -> [u8; 32] {
    let hk = Hkdf::<Sha256>::new(Some(b"NativeGossip v1"), secret);
    let mut key = [0u8; 32];
    hk.expand(purpose, &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    key
}

impl Keyring {
    /// A keyring from secrets, first one signing. Empty secrets are ignored.
    pub fn new(secrets: Vec<Vec<u8>>) -> Self {
        let secrets: Vec<Vec<u8>> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        let macs = secrets
            .iter()
            .map(|s| <HmacSha256 as Mac>::new_from_slice(s).expect("HMAC takes keys of any length"))
            .collect();
        Keyring {
            macs,
            secrets,
            seals: Vec::new(),
            nonces: None,
        }
    }

    /// The same secrets, sealing (encrypting) heartbeats instead of signing them. No
    /// effect on a keyring without secrets.
    pub fn encrypting(mut self) -> Self {
        self.seals = self.secrets.iter().map(|s| seal_key(s)).collect();
        self.nonces = self.secrets.first().map(|s| nonce_key(s));
        self
    }

    /// No secrets: packets are neither signed nor verified.
    pub fn none() -> Self {
        Keyring {
            macs: Vec::new(),
            secrets: Vec::new(),
            seals: Vec::new(),
            nonces: None,
        }
    }

    /// The secrets, the signing one first.
    pub fn secrets(&self) -> &[Vec<u8>] {
        &self.secrets
    }

    /// Whether this node signs (and therefore requires signatures).
    pub fn is_signing(&self) -> bool {
        !self.macs.is_empty()
    }

    /// Whether this node seals (encrypts) its heartbeats, and opens sealed ones.
    pub fn is_sealing(&self) -> bool {
        !self.seals.is_empty()
    }

    /// The MAC of `data` under the first secret, if there is one.
    pub fn sign(&self, data: &[u8]) -> Option<[u8; MAC_LEN]> {
        let mut mac = self.macs.first()?.clone();
        mac.update(data);
        Some(mac.finalize().into_bytes().into())
    }

    /// Whether `tag` is the MAC of `data` under any secret (constant time per secret).
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        self.macs.iter().any(|m| {
            let mut mac = m.clone();
            mac.update(data);
            mac.verify_slice(tag).is_ok()
        })
    }

    /// Encrypts `plain` in place under the first secret, authenticating `aad` too:
    /// `plain` becomes ciphertext followed by the tag. Returns the nonce, or None
    /// without encryption.
    ///
    /// The nonce is synthetic: the first 24 bytes of HMAC-SHA256, under a key derived
    /// from the secret for that purpose alone, of `aad` and `plain`. Every heartbeat's
    /// plaintext is new (its sequence grows, and a restart takes a new incarnation), so
    /// no nonce repeats under a key unless the whole message does, which then shows only
    /// that it is the same message; and no randomness is needed from the OS.
    pub fn seal(&self, aad: &[u8], plain: &mut Vec<u8>) -> Option<[u8; NONCE_LEN]> {
        let cipher = self.seals.first()?;
        let mut mac = self.nonces.clone()?;
        mac.update(&(aad.len() as u64).to_be_bytes());
        mac.update(aad);
        mac.update(plain);
        let full: [u8; 32] = mac.finalize().into_bytes().into();
        let nonce = *XNonce::from_slice(&full[..NONCE_LEN]);
        cipher
            .encrypt_in_place(&nonce, aad, plain)
            .expect("a heartbeat is far below the AEAD's length limit");
        Some(nonce.into())
    }

    /// Decrypts `sealed` (ciphertext and tag) with any secret into `out`. False if no
    /// secret opens it (another secret, or altered on the way).
    pub fn open(&self, nonce: &[u8], aad: &[u8], sealed: &[u8], out: &mut Vec<u8>) -> bool {
        if nonce.len() != NONCE_LEN {
            return false;
        }
        let nonce = XNonce::from_slice(nonce);
        self.seals.iter().any(|cipher| {
            out.clear();
            out.extend_from_slice(sealed);
            cipher.decrypt_in_place(nonce, aad, out).is_ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_test_case_2() {
        let k = Keyring::new(vec![b"Jefe".to_vec()]);
        let mac = k.sign(b"what do ya want for nothing?").unwrap();
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verify_rejects_wrong_tag_and_length() {
        let k = Keyring::new(vec![b"k".to_vec()]);
        let mac = k.sign(b"data").unwrap();
        assert!(k.verify(b"data", &mac));
        assert!(!k.verify(b"datA", &mac));
        assert!(!k.verify(b"data", &mac[..31]));
        assert!(!Keyring::none().verify(b"data", &mac));
    }

    #[test]
    fn empty_secrets_are_ignored_and_debug_hides_keys() {
        let k = Keyring::new(vec![Vec::new()]);
        assert!(!k.is_signing());
        assert_eq!(k.sign(b"x"), None);
        let k = Keyring::new(vec![b"hunter2".to_vec()]);
        assert!(!format!("{k:?}").contains("hunter2"));
    }

    #[test]
    fn sealed_data_opens_under_any_secret_of_the_ring_and_only_unaltered() {
        let old = Keyring::new(vec![b"old".to_vec()]).encrypting();
        let rotating = Keyring::new(vec![b"new".to_vec(), b"old".to_vec()]).encrypting();
        let other = Keyring::new(vec![b"other".to_vec()]).encrypting();
        let mut data = b"a@b and its tags".to_vec();
        let nonce = old.seal(b"head", &mut data).unwrap();
        assert_eq!(data.len(), 16 + SEAL_TAG_LEN);
        assert!(
            !data.windows(3).any(|w| w == b"a@b"),
            "ciphertext shows the name"
        );
        let mut out = Vec::new();
        assert!(rotating.open(&nonce, b"head", &data, &mut out));
        assert_eq!(out, b"a@b and its tags");
        assert!(!other.open(&nonce, b"head", &data, &mut out));
        assert!(
            !rotating.open(&nonce, b"Head", &data, &mut out),
            "aad is authenticated"
        );
        for i in 0..data.len() {
            let mut flipped = data.clone();
            flipped[i] ^= 1;
            assert!(
                !rotating.open(&nonce, b"head", &flipped, &mut out),
                "flip at {i}"
            );
        }
        // Synthetic nonces: the same message seals the same (it shows only that it is
        // the same); one byte more or another header, and the nonce is another.
        let mut again = b"a@b and its tags".to_vec();
        assert_eq!(old.seal(b"head", &mut again).unwrap(), nonce);
        assert_eq!(data, again);
        let mut next = b"a@b and its tagz".to_vec();
        let nonce2 = old.seal(b"head", &mut next).unwrap();
        assert_ne!(nonce, nonce2);
        let mut other_head = b"a@b and its tags".to_vec();
        assert_ne!(old.seal(b"heae", &mut other_head).unwrap(), nonce);
        // Neither the encryption key nor the signing key makes the nonces: the nonce
        // is no MAC of the message under the signing key.
        let signer = Keyring::new(vec![b"old".to_vec()]);
        let mut input = (4u64).to_be_bytes().to_vec();
        input.extend_from_slice(b"head");
        input.extend_from_slice(b"a@b and its tags");
        assert_ne!(&signer.sign(&input).unwrap()[..NONCE_LEN], &nonce[..]);
        // The sealing key is not the signing key, and a keyring that signs does not seal.
        assert!(!Keyring::new(vec![b"old".to_vec()]).is_sealing());
        assert!(Keyring::none()
            .encrypting()
            .seal(b"", &mut Vec::new())
            .is_none());
    }
}
