//! The options block of a heartbeat: its records (cluster label, tags, distribution
//! port, own addresses, answer port, an answer's acknowledgement, the sender's count
//! of peers), made and read.

use std::net::IpAddr;

use super::{
    MAX_ADDRS, MAX_CLUSTER, MAX_TAGS, MAX_TAG_KEY, OPT_ADDR, OPT_ANSWER, OPT_CLUSTER, OPT_DIST,
    OPT_HEARD, OPT_PEERS, OPT_TAG,
};
use crate::reason::DropReason;

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

/// The option record of an answer port (none for 0).
pub fn answer_port_record(port: u16) -> Vec<u8> {
    if port == 0 {
        return Vec::new();
    }
    let [hi, lo] = port.to_be_bytes();
    vec![OPT_ANSWER, 2, hi, lo]
}

/// The option record of an answer to incarnation `incarnation` (`OPT_HEARD`).
pub fn heard_record(incarnation: u64) -> Vec<u8> {
    let mut out = vec![OPT_HEARD, 8];
    out.extend_from_slice(&incarnation.to_be_bytes());
    out
}

/// The option record of a sender that holds `peers` peers alive (`OPT_PEERS`).
pub fn peers_record(peers: u32) -> Vec<u8> {
    let mut out = vec![OPT_PEERS, 4];
    out.extend_from_slice(&peers.to_be_bytes());
    out
}

/// The (type, value) records of a well-formed options block.
pub(super) fn records(mut options: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
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

/// The options block must be well-formed records (so that a later version can add
/// some without older nodes misreading the packet), and the records this version
/// knows must be well-formed themselves: one cluster label of 1..=64 bytes of UTF-8,
/// tags with a key of 1..=64 bytes and both UTF-8, one distribution port (2 bytes, not
/// 0), at most `MAX_ADDRS` addresses, one answer port, one acknowledgement, one count.
pub(super) fn check_options(mut options: &[u8]) -> Result<(), DropReason> {
    // Records of each type so far.
    let mut seen = [0usize; 256];
    while !options.is_empty() {
        if options.len() < 2 {
            return Err(DropReason::Malformed);
        }
        let len = options[1] as usize;
        if options.len() < 2 + len {
            return Err(DropReason::Malformed);
        }
        let value = &options[2..2 + len];
        let kind = options[0];
        seen[kind as usize] += 1;
        let first = seen[kind as usize] == 1;
        let well_formed = match kind {
            OPT_CLUSTER => {
                first && (1..=MAX_CLUSTER).contains(&len) && std::str::from_utf8(value).is_ok()
            }
            OPT_DIST | OPT_ANSWER => first && len == 2 && value != [0, 0],
            OPT_ADDR => seen[kind as usize] <= MAX_ADDRS && (len == 4 || len == 16),
            OPT_HEARD => first && len == 8,
            OPT_PEERS => first && len == 4,
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
