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
    // An acknowledgement of 8 bytes and a count of 4, once each; read back.
    let mut block = heard_record(0x0102_0304_0506_0708);
    block.extend(peers_record(31));
    let m = Outgoing {
        options: &block,
        ..msg("a@b")
    };
    let bytes = encode(&m, &k).unwrap();
    let hb = decode(&bytes, &k).unwrap();
    assert_eq!(
        (hb.heard(), hb.peers()),
        (Some(0x0102_0304_0506_0708), Some(31))
    );
    assert_eq!(
        with(&[OPT_HEARD, 4, 0, 0, 0, 1]),
        Err(DropReason::Malformed)
    );
    assert_eq!(with(&[OPT_PEERS, 2, 0, 1]), Err(DropReason::Malformed));
    assert_eq!(
        with(&[OPT_PEERS, 4, 0, 0, 0, 1, OPT_PEERS, 4, 0, 0, 0, 2]),
        Err(DropReason::Malformed)
    );
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

#[test]
fn the_answer_port_round_trips_and_must_be_well_formed() {
    let k = Keyring::none();
    let block = answer_port_record(50_123);
    let m = Outgoing {
        options: &block,
        ..msg("a@b")
    };
    let port = decode(&encode(&m, &k).unwrap(), &k).map(|hb| hb.answer_port());
    assert_eq!(port, Ok(Some(50_123)));
    let none = decode(&encode(&msg("a@b"), &k).unwrap(), &k).map(|hb| hb.answer_port());
    assert_eq!(none, Ok(None));
    assert!(answer_port_record(0).is_empty());
    let with = |block: &[u8]| {
        let m = Outgoing {
            options: block,
            ..msg("a@b")
        };
        decode(&encode(&m, &k).unwrap(), &k).map(|_| ())
    };
    assert_eq!(with(&[OPT_ANSWER, 2, 0, 0]), Err(DropReason::Malformed));
    assert_eq!(with(&[OPT_ANSWER, 3, 1, 2, 3]), Err(DropReason::Malformed));
    assert_eq!(
        with(&[OPT_ANSWER, 2, 1, 1, OPT_ANSWER, 2, 1, 2]),
        Err(DropReason::Malformed)
    );
}
