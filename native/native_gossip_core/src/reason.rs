//! Why a datagram was dropped: the one home of every drop reason, its stable name and
//! the sentence that explains it to a person.
//!
//! The Elixir side takes its list of reasons and their texts from this file (see
//! `NativeGossip.DropReason`, which reads the table below when it is compiled, and a
//! test that compares it with what the NIF reports), so the log summary, telemetry, the
//! doctor, `mix native_gossip.listen` and the docs all say the same thing.
//!
//! Keep one reason per line of the table: `Variant => "name", "explanation";`.

macro_rules! drop_reasons {
    ($($(#[$doc:meta])* $variant:ident => $name:literal, $text:literal;)+) => {
        /// Why a datagram was not accepted. Every variant is a counter in the stats.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum DropReason {
            $($(#[$doc])* $variant,)+
        }

        impl DropReason {
            /// Every reason, in a stable order (the index of the stats array).
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)+];

            /// Stable snake_case name: the atom on the Elixir side, and in logs.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $name,)+
                }
            }

            /// What the reason means and, where there is one, what to do about it.
            pub fn explanation(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $text,)+
                }
            }
        }
    };
}

drop_reasons! {
    /// Shorter than the smallest valid packet.
    TooShort => "too_short", "shorter than any heartbeat: another program uses this group and port, or junk";
    /// Longer than `wire::MAX_PACKET`.
    TooLong => "too_long", "longer than any heartbeat: another program uses this group and port, or junk";
    /// Does not start with the magic: not ours (or another protocol on the port).
    BadMagic => "bad_magic", "not a NativeGossip packet: another program uses this group and port";
    /// Our magic with a version we do not speak.
    UnsupportedVersion => "unsupported_version", "a NativeGossip version this node does not speak";
    /// Length fields or options that do not add up.
    Malformed => "malformed", "a NativeGossip header whose lengths do not add up: corrupted or forged";
    /// The node name is not a conservative `name@host`.
    BadName => "bad_name", "a node name outside the accepted rules";
    /// We have a secret and the packet carries no MAC.
    MissingSignature => "missing_signature", "unsigned, and this topology has a :secret: some nodes have none";
    /// The MAC does not verify under any of our secrets.
    BadSignature => "bad_signature", "signed with a secret this topology does not have, or forged: set the same :secret everywhere";
    /// The packet is signed but this node has no secret.
    UnexpectedSignature => "unexpected_signature", "signed, and this topology has no :secret: give it the nodes' secret";
    /// (incarnation, sequence) not newer than what we have seen from that name.
    Replay => "replay", "an old heartbeat again: duplicated on the network, or replayed";
    /// A sealed (encrypted) heartbeat, and this node does not encrypt.
    Sealed => "sealed", "an encrypted heartbeat, and this topology has no :encrypt: set encrypt: true (and the same :secret) on every node";
    /// The `:cluster` label of the heartbeat is not this node's.
    OtherCluster => "other_cluster", "a heartbeat of another :cluster label on this group and port (kept apart on purpose; the doctor lists the labels heard)";
    /// Our own heartbeat, looped back by the kernel.
    OwnPacket => "own_packet", "this node's own heartbeat, looped back";
    /// Another node claims our name (a different incarnation).
    NameConflict => "name_conflict", "another node announces this node's name";
    /// A new peer while the peer table is full of peers that are or were connected.
    PeerTableFull => "peer_table_full", "a new peer while the table holds :max_peers peers, all of them connected once";
    /// Without a secret: a new name from a source that announced too many new names.
    RateLimited => "rate_limited", "too many new names from one host (no :secret): see :new_peer_rate";
    /// Without a secret: a goodbye (LEAVING) of a known peer from another address than
    /// its heartbeats come from.
    ForeignGoodbye => "foreign_goodbye", "a goodbye in a peer's name from another address than its heartbeats (no :secret): forged";
    /// A new name once this topology has turned `:max_names` names into atoms.
    NameCap => "name_cap", "a new name after :max_names names were made atoms (no :secret): a flood of made-up names, or raise :max_names";
    /// With a secret: a signed timestamp further from local time than `:max_clock_skew`.
    Stale => "stale", "signed at a time further from this clock than :max_clock_skew: a replay, or clocks apart (run NTP)";
    /// With `compat: :libcluster`: a libcluster heartbeat for a name heard in the native
    /// format (which carries an incarnation, a sequence and, with a secret, a MAC).
    LegacyNativeName => "legacy_native_name", "a libcluster-format heartbeat for a node that speaks NativeGossip: a replay, or its copy (compat: :libcluster)";
    /// With `compat: :libcluster`: a libcluster heartbeat whose term is anything but a
    /// map of the one atom key `node` to an atom.
    LegacyBadTerm => "legacy_bad_term", "a libcluster-format heartbeat whose term is not %{node: atom} (compat: :libcluster)";
    /// With `compat: :libcluster` and a secret: not a NativeGossip packet, and it does
    /// not decrypt to a padded plaintext under any secret.
    LegacyBadCiphertext => "legacy_bad_ciphertext", "not NativeGossip, and not a libcluster heartbeat encrypted with this :secret (compat: :libcluster): another secret, or junk";
    /// Without `compat: :libcluster`: a libcluster Gossip heartbeat (plaintext, or
    /// encrypted under this node's secret).
    LibclusterFormat => "libcluster_format", "a heartbeat of libcluster's Gossip strategy: nodes still running it are not connected; for a rolling switch set compat: :libcluster on the NativeGossip nodes (MIGRATING.md)";
    /// With a secret: an authenticated heartbeat from a source address its sender does
    /// not list as its own (nor a configured seed's).
    ForeignSource => "foreign_source", "a signed heartbeat sent from an address its sender does not list as its own (with :secret): a replay from another host, or a sender behind NAT (list it in :seeds)";
    /// Without a secret: a heartbeat of a peer from another address than the one its
    /// distribution connection proved.
    Unproven => "unproven_source", "a heartbeat in a connected peer's name from another address than the one its connection proved (no :secret): forged, or the peer moved (it is heard again once forgotten)";
}

impl DropReason {
    /// Index into `ALL` (and the stats array).
    pub fn index(self) -> usize {
        self as usize
    }
}

impl From<crate::name::NameError> for DropReason {
    fn from(_: crate::name::NameError) -> Self {
        DropReason::BadName
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_a_distinct_name_and_a_text() {
        let mut names = std::collections::HashSet::new();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert!(names.insert(r.as_str()), "{} twice", r.as_str());
            let ok = |c: char| c.is_ascii_lowercase() || c == '_';
            assert!(r.as_str().chars().all(ok), "{}", r.as_str());
            assert!(
                r.explanation().len() >= 10 && !r.explanation().contains('"'),
                "{} has no usable text",
                r.as_str()
            );
        }
    }
}
