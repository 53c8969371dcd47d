//! Validation of node names carried in heartbeats.
//!
//! A name is checked before it can become an atom on the BEAM side. The rules are
//! deliberately narrower than what Erlang accepts: `name@host`, 3..=255 bytes, exactly
//! one `@`, the name part of `[A-Za-z0-9_-]` (plus `.`), the host part of
//! `[A-Za-z0-9._-]` and `:` (IPv6 literals), neither part empty, and no leading `-` or `.`.

/// Longest name accepted (bytes), the limit of the wire format's length byte.
pub const MAX_NAME: usize = 255;

/// Why a node name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong,
    NoHost,
    BadCharacter,
}

fn name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.'
}

fn host_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.' || c == b':'
}

/// Returns the name as `&str` if it is acceptable.
pub fn validate(bytes: &[u8]) -> Result<&str, NameError> {
    if bytes.is_empty() {
        return Err(NameError::Empty);
    }
    if bytes.len() > MAX_NAME {
        return Err(NameError::TooLong);
    }
    let at = bytes
        .iter()
        .position(|&c| c == b'@')
        .ok_or(NameError::NoHost)?;
    let (name, host) = (&bytes[..at], &bytes[at + 1..]);
    if name.is_empty() || host.is_empty() {
        return Err(NameError::NoHost);
    }
    let leading_ok = |part: &[u8]| part[0] != b'-' && part[0] != b'.';
    if !leading_ok(name) || !leading_ok(host) {
        return Err(NameError::BadCharacter);
    }
    if !name.iter().all(|&c| name_char(c)) || !host.iter().all(|&c| host_char(c)) {
        return Err(NameError::BadCharacter);
    }
    // Only ASCII passed the checks above, so this cannot fail.
    std::str::from_utf8(bytes).map_err(|_| NameError::BadCharacter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_usual_names() {
        for n in [
            "a@b",
            "app@host1",
            "my_app-2@web-01.example.com",
            "n@198.51.100.7",
            "n@::1",
            "n.1@h",
        ] {
            assert_eq!(validate(n.as_bytes()), Ok(n), "{n}");
        }
        let longest = format!("{}@h", "a".repeat(253));
        assert!(validate(longest.as_bytes()).is_ok());
    }

    #[test]
    fn rejects_the_rest() {
        let too_long = format!("{}@h", "a".repeat(254));
        let cases: &[(&[u8], NameError)] = &[
            (b"", NameError::Empty),
            (too_long.as_bytes(), NameError::TooLong),
            (b"nohost", NameError::NoHost),
            (b"@host", NameError::NoHost),
            (b"name@", NameError::NoHost),
            (b"a@b@c", NameError::BadCharacter),
            (b"a b@c", NameError::BadCharacter),
            (b"a@c'", NameError::BadCharacter),
            (b"-a@c", NameError::BadCharacter),
            (b"a@.c", NameError::BadCharacter),
            (b"a@c\0", NameError::BadCharacter),
            ("\u{e9}@c".as_bytes(), NameError::BadCharacter),
            (b"a\xff@c", NameError::BadCharacter),
        ];
        for (n, e) in cases {
            assert_eq!(validate(n), Err(*e), "{:?}", String::from_utf8_lossy(n));
        }
    }
}
