//! HMAC-SHA256 authentication of heartbeats with a ring of shared secrets.
//!
//! The first secret signs; any secret verifies, so a new secret can be rolled through
//! a running cluster node by node without a split. Verification is constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Length of the MAC trailer.
pub const MAC_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// The secrets of a topology. Empty means "no authentication".
#[derive(Clone)]
pub struct Keyring {
    // Keyed MAC states, prepared once: cloning one is cheaper than re-keying per packet.
    macs: Vec<HmacSha256>,
    // The secrets themselves, same order, for the formats that derive keys of their
    // own from them (`compat`).
    secrets: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        write!(f, "Keyring({} secrets)", self.macs.len())
    }
}

impl Keyring {
    /// A keyring from secrets, first one signing. Empty secrets are ignored.
    pub fn new(secrets: Vec<Vec<u8>>) -> Self {
        let secrets: Vec<Vec<u8>> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        let macs = secrets
            .iter()
            .map(|s| HmacSha256::new_from_slice(s).expect("HMAC takes keys of any length"))
            .collect();
        Keyring { macs, secrets }
    }

    /// No secrets: packets are neither signed nor verified.
    pub fn none() -> Self {
        Keyring {
            macs: Vec::new(),
            secrets: Vec::new(),
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
}
