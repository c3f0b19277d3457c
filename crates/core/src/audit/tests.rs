use super::*;
use proptest::prelude::*;

fn key(byte: u8) -> AuditKey {
    AuditKey::new(&[byte; 32])
}

fn keys(bytes: &[u8]) -> AuditKeys {
    AuditKeys::new(bytes.iter().map(|&b| key(b)).collect()).unwrap()
}

fn signer() -> CheckpointSigner {
    CheckpointSigner::from_seed(&[7; 32])
}

fn record(n: i64) -> AuditRecord {
    AuditRecord {
        seq: 0,
        id: format!("e{n}"),
        at: n * 1000,
        actor_id: Some("alice".into()),
        actor_name: "alice".into(),
        category: "request".into(),
        action: "created".into(),
        target_type: Some("app".into()),
        target_id: Some("a1".into()),
        details: "{}".into(),
        prev_hash: String::new(),
        hash: String::new(),
        link: None,
        key_id: None,
    }
}

/// `n` entries after `head`, chained under `keys` (or unkeyed).
fn extend(chain: &mut Vec<AuditRecord>, head: &mut ChainHead, keys: Option<&AuditKeys>, n: i64) {
    let start = chain.len() as i64;
    let mut records: Vec<AuditRecord> = (start + 1..=start + n).map(record).collect();
    chain_entries(head, keys, &mut records).unwrap();
    chain.extend(records);
}

fn keyed_chain(n: i64) -> (Vec<AuditRecord>, ChainHead) {
    let (mut chain, mut head) = (Vec::new(), ChainHead::genesis());
    extend(&mut chain, &mut head, Some(&keys(&[1])), n);
    (chain, head)
}

fn verify_with(records: &[AuditRecord], evidence: Evidence<'_>, head: Option<i64>) -> Result<u64, ChainBreak> {
    let mut verifier = ChainVerifier::new(evidence)?;
    for r in records {
        let canonical = r.canonical_bytes();
        let (hash, link, key_id) = (r.hash.as_bytes(), r.link.as_deref().map(str::as_bytes), r.key_id.as_deref());
        verifier.push(ChainEntry { seq: r.seq, canonical: &canonical, hash, link, key_id })?;
    }
    verifier.finish(head)?;
    Ok(verifier.checked())
}

fn verify(records: &[AuditRecord], keys: &AuditKeys) -> Result<u64, ChainBreak> {
    let head = records.last().map_or(0, |r| r.seq);
    verify_with(records, Evidence { keys: Some(keys), ..Evidence::default() }, Some(head))
}

/// What someone with write access to the database but no key can do: recompute every hash (the
/// public chain needs no secret) after their change, keeping the links they cannot make.
fn rehash_from(chain: &mut [AuditRecord], from: usize) {
    for i in from..chain.len() {
        chain[i].prev_hash = if i == 0 { GENESIS_HASH.to_owned() } else { chain[i - 1].hash.clone() };
        chain[i].hash = chain[i].compute_hash();
    }
}

fn renumber(chain: &mut [AuditRecord]) {
    for (i, r) in chain.iter_mut().enumerate() {
        r.seq = i as i64 + 1;
    }
    rehash_from(chain, 0);
}

fn checkpoint(r: &AuditRecord, kind: CheckpointKind) -> Checkpoint {
    let head = ChainHeadEntry { seq: r.seq, hash: r.hash.clone(), link: r.link.clone() };
    Checkpoint::sign(&signer(), kind, &head, r.at + 1)
}

fn offline(checkpoints: Vec<Checkpoint>) -> Evidence<'static> {
    Evidence { keys: None, checkpoints, public_key: Some(signer().public_key()) }
}

#[test]
fn canonical_bytes_are_the_json_array_of_the_fields() {
    let mut r = keyed_chain(1).0.remove(0);
    r.actor_id = None;
    r.details = "{\"quote\":\"\\\"\",\"é\":\"\\u0001\"}".into();
    r.actor_name = "Zoë \"the admin\"\n".into();
    let expected = serde_json::json!([
        r.seq,
        r.id,
        r.at,
        r.actor_id,
        r.actor_name,
        r.category,
        r.action,
        r.target_type,
        r.target_id,
        r.details,
    ])
    .to_string();
    assert_eq!(String::from_utf8(r.canonical_bytes()).unwrap(), expected);
    assert!(!r.canonical_bytes().contains(&b'\n'), "one entry per line is safe");
    assert_eq!(
        r.compute_hash(),
        hex::encode(Sha256::digest(format!("{}{expected}", r.prev_hash))),
        "the hash covers prev_hash then the canonical bytes"
    );
    let parsed = AuditRecord::from_canonical(
        &r.canonical_bytes(),
        r.prev_hash.clone(),
        r.hash.clone(),
        r.link.clone(),
        r.key_id.clone(),
    )
    .unwrap();
    assert_eq!(parsed, r, "the fields are read back from the bytes");
}

#[test]
fn a_keyed_chain_verifies_and_each_link_is_the_keyed_mac_of_the_hash() {
    let (chain, _) = keyed_chain(5);
    assert_eq!(verify(&chain, &keys(&[1])), Ok(5));
    let mut hash = [0u8; 32];
    hex::decode_to_slice(&chain[2].hash, &mut hash).unwrap();
    let mut mac = HmacSha256::new_from_slice(&[1; 32]).unwrap();
    mac.update(&hash);
    assert_eq!(chain[2].link.as_deref(), Some(hex::encode(mac.finalize().into_bytes()).as_str()));
    assert_eq!(chain[2].key_id.as_deref(), Some(key(1).id()));
}

#[test]
fn an_edited_entry_with_every_later_hash_recomputed_fails_its_link() {
    let (mut chain, _) = keyed_chain(6);
    chain[2].actor_name = "mallory".into();
    chain[2].details = r#"{"justification":"approved by the board"}"#.into();
    rehash_from(&mut chain, 2);
    let err = verify(&chain, &keys(&[1])).unwrap_err();
    assert_eq!((err.seq, err.id.as_str(), err.kind), (3, "e3", BreakKind::Link));
    // Without recomputing, the hash itself says so.
    let (mut chain, _) = keyed_chain(6);
    chain[2].actor_name = "mallory".into();
    assert_eq!(verify(&chain, &keys(&[1])).unwrap_err().kind, BreakKind::Changed);
}

#[test]
fn a_deleted_entry_is_found_renumbered_or_not() {
    let (mut chain, _) = keyed_chain(6);
    chain.remove(2);
    assert_eq!(verify(&chain, &keys(&[1])).unwrap_err().kind, BreakKind::Removed);
    renumber(&mut chain);
    let err = verify(&chain, &keys(&[1])).unwrap_err();
    assert_eq!((err.seq, err.kind), (3, BreakKind::Link));
}

#[test]
fn a_reordering_is_found_renumbered_or_not() {
    let (mut chain, _) = keyed_chain(6);
    chain.swap(2, 3);
    assert_eq!(verify(&chain, &keys(&[1])).unwrap_err().seq, 4);
    renumber(&mut chain);
    assert_eq!(verify(&chain, &keys(&[1])).unwrap_err().kind, BreakKind::Link);
}

#[test]
fn a_replaced_head_is_found() {
    let (mut chain, _) = keyed_chain(4);
    chain[3].action = "approved".into();
    chain[3].link = chain[2].link.clone();
    rehash_from(&mut chain, 3);
    let err = verify(&chain, &keys(&[1])).unwrap_err();
    assert_eq!((err.seq, err.kind), (4, BreakKind::Link));
}

#[test]
fn a_truncated_tail_is_found_by_the_stored_head_and_by_a_checkpoint() {
    let (mut chain, _) = keyed_chain(6);
    let signed = checkpoint(&chain[4], CheckpointKind::Periodic);
    chain.truncate(3);
    let evidence = Evidence { keys: Some(&keys(&[1])), ..Evidence::default() };
    assert_eq!(verify_with(&chain, evidence, Some(6)).unwrap_err().kind, BreakKind::Truncated);
    // The head row moved back too: the checkpoint still knows.
    let keyring = keys(&[1]);
    let evidence =
        Evidence { keys: Some(&keyring), checkpoints: vec![signed], public_key: Some(signer().public_key()) };
    let err = verify_with(&chain, evidence, Some(3)).unwrap_err();
    assert_eq!((err.seq, err.kind), (4, BreakKind::Truncated));
    assert!(err.reason.contains("entries were removed from the end"), "{err:?}");
}

#[test]
fn offline_every_rewrite_before_a_checkpoint_is_found_with_the_public_key_alone() {
    let (chain, _) = keyed_chain(8);
    let checkpoints =
        vec![checkpoint(&chain[3], CheckpointKind::Periodic), checkpoint(&chain[7], CheckpointKind::Periodic)];
    assert_eq!(verify_with(&chain, offline(checkpoints.clone()), Some(8)), Ok(8));

    let mut edited = chain.clone();
    edited[5].details = r#"{"evil":true}"#.into();
    rehash_from(&mut edited, 5);
    let err = verify_with(&edited, offline(checkpoints.clone()), Some(8)).unwrap_err();
    assert_eq!((err.seq, err.kind), (8, BreakKind::Checkpoint), "the next checkpoint no longer fits");

    let mut deleted = chain.clone();
    deleted.remove(1);
    renumber(&mut deleted);
    assert_eq!(verify_with(&deleted, offline(checkpoints.clone()), None).unwrap_err().kind, BreakKind::Checkpoint);

    let mut reordered = chain.clone();
    reordered.swap(0, 1);
    renumber(&mut reordered);
    assert_eq!(verify_with(&reordered, offline(checkpoints.clone()), None).unwrap_err().seq, 4);

    let truncated = chain[..6].to_vec();
    assert_eq!(verify_with(&truncated, offline(checkpoints.clone()), Some(6)).unwrap_err().kind, BreakKind::Truncated);

    let mut replaced_head = chain.clone();
    replaced_head[7].target_id = Some("other".into());
    rehash_from(&mut replaced_head, 7);
    assert_eq!(verify_with(&replaced_head, offline(checkpoints), None).unwrap_err().seq, 8);
}

#[test]
fn a_forged_or_altered_checkpoint_is_refused() {
    let (chain, _) = keyed_chain(3);
    let mut altered = checkpoint(&chain[2], CheckpointKind::Periodic);
    altered.seq = 2;
    assert_eq!(verify_with(&chain, offline(vec![altered]), None).unwrap_err().kind, BreakKind::Signature);
    let forger = CheckpointSigner::from_seed(&[8; 32]);
    let head = ChainHeadEntry { seq: 3, hash: chain[2].hash.clone(), link: None };
    let forged = Checkpoint::sign(&forger, CheckpointKind::Periodic, &head, 1);
    assert_eq!(verify_with(&chain, offline(vec![forged]), None).unwrap_err().kind, BreakKind::Signature);
}

#[test]
fn key_rotation_starts_a_segment_linked_under_both_keys() {
    let (mut chain, mut head) = keyed_chain(3);
    let rotated = keys(&[1, 2]);
    extend(&mut chain, &mut head, Some(&rotated), 3);
    assert_eq!(chain[3].key_id.as_deref(), Some(key(2).id()));
    assert_eq!(verify(&chain, &rotated), Ok(6));
    let mut hash = [0u8; 32];
    hex::decode_to_slice(&chain[3].hash, &mut hash).unwrap();
    assert_eq!(chain[3].link, Some(hex::encode(key(2).mac(&key(1).mac(&hash)))), "the first link is under both keys");
    assert_eq!(
        chain[4].link,
        Some(hex::encode({
            hex::decode_to_slice(&chain[4].hash, &mut hash).unwrap();
            key(2).mac(&hash)
        }))
    );

    // Someone holding only the new key cannot start its segment: the bridge needs the old one.
    let mut forged = chain.clone();
    forged[3].link = Some(hex::encode(key(2).mac(&{
        hex::decode_to_slice(&forged[3].hash, &mut hash).unwrap();
        hash
    })));
    assert_eq!(verify(&forged, &rotated).unwrap_err().seq, 4);
    // Verifying needs every key the chain used.
    assert_eq!(verify(&chain, &keys(&[2])).unwrap_err().kind, BreakKind::UnknownKey);
}

#[test]
fn keying_an_old_unkeyed_chain_keeps_it_verifiable_and_forbids_a_downgrade() {
    let (mut chain, mut head) = (Vec::new(), ChainHead::genesis());
    extend(&mut chain, &mut head, None, 3);
    let began = checkpoint(&chain[2], CheckpointKind::KeyingStarted);
    extend(&mut chain, &mut head, Some(&keys(&[1])), 3);
    let keyring = keys(&[1]);
    let evidence =
        |c: Vec<Checkpoint>| Evidence { keys: Some(&keyring), checkpoints: c, public_key: Some(signer().public_key()) };
    assert_eq!(verify_with(&chain, evidence(vec![began.clone()]), Some(6)), Ok(6));

    // Rewriting the old entries breaks the first keyed link, which covers them.
    let mut old_edited = chain.clone();
    old_edited[1].actor_name = "mallory".into();
    rehash_from(&mut old_edited, 1);
    assert_eq!(verify_with(&old_edited, evidence(vec![]), None).unwrap_err().seq, 4);

    // Stripping every link and recomputing the public chain: an unkeyed chain after keying began.
    let mut downgraded = old_edited.clone();
    for r in &mut downgraded {
        (r.link, r.key_id) = (None, None);
    }
    let err = verify_with(&downgraded, evidence(vec![began]), None).unwrap_err();
    assert_eq!(err.seq, 3, "the keyingStarted checkpoint no longer fits the rewritten old entries");
    let mut stripped_only = chain.clone();
    for r in &mut stripped_only[3..] {
        (r.link, r.key_id) = (None, None);
    }
    let began = checkpoint(&chain[2], CheckpointKind::KeyingStarted);
    let err = verify_with(&stripped_only, evidence(vec![began]), None).unwrap_err();
    assert_eq!((err.seq, err.kind), (4, BreakKind::Unkeyed));
}

#[test]
fn without_keys_nothing_is_chained_after_a_keyed_entry() {
    let (_, mut head) = keyed_chain(2);
    let mut more = vec![record(3)];
    assert_eq!(chain_entries(&mut head, None, &mut more), Err(ChainError::KeyRequired));
    assert!(matches!(chain_entries(&mut head, Some(&keys(&[9])), &mut more), Err(ChainError::UnknownKey(_))));
}

#[test]
fn checkpoints_are_read_from_a_file_an_array_an_api_page_and_syslog_lines() {
    let (chain, _) = keyed_chain(2);
    let (a, b) = (checkpoint(&chain[0], CheckpointKind::Periodic), checkpoint(&chain[1], CheckpointKind::Periodic));
    let line = |c: &Checkpoint| serde_json::to_string(c).unwrap();
    let file = format!("{}\n{}\n", line(&a), line(&b));
    assert_eq!(parse_checkpoints(&file).unwrap(), vec![a.clone(), b.clone()]);
    let array = serde_json::to_string(&[&a, &b]).unwrap();
    assert_eq!(parse_checkpoints(&array).unwrap(), vec![a.clone(), b.clone()]);
    let page = serde_json::json!({ "publicKey": "x", "value": [&a] }).to_string();
    assert_eq!(parse_checkpoints(&page).unwrap(), vec![a.clone()]);
    let entry = serde_json::json!({ "type": "auditEntry", "seq": 1, "hash": "00" });
    let syslog = format!(
        "<86>1 2026-12-02T10:00:00Z host countersign 1 auditEntry - {entry}\n<86>1 2026-12-02T10:00:01Z host countersign 1 auditCheckpoint - {}\n",
        line(&b)
    );
    assert_eq!(parse_checkpoints(&syslog).unwrap(), vec![b]);
    assert!(parse_checkpoints("not checkpoints at all").is_err());
    assert_eq!(parse_checkpoints("").unwrap(), vec![]);
}

#[test]
fn a_public_key_reads_back_from_hex() {
    let public = signer().public_key();
    assert_eq!(PublicKey::from_hex(&public.to_hex()), Ok(public));
    assert!(PublicKey::from_hex("00").is_err());
}

/// One change someone with write access to the database can make, without the audit key.
#[derive(Debug, Clone)]
enum Rewrite {
    Edit { at: usize, text: String },
    Delete { at: usize },
    Swap { at: usize },
    Truncate { keep: usize },
    Link { at: usize, from: usize },
}

fn rewrite() -> impl Strategy<Value = Rewrite> {
    prop_oneof![
        (0..12usize, "[a-z]{1,8}").prop_map(|(at, text)| Rewrite::Edit { at, text }),
        (0..12usize).prop_map(|at| Rewrite::Delete { at }),
        (0..11usize).prop_map(|at| Rewrite::Swap { at }),
        (0..11usize).prop_map(|keep| Rewrite::Truncate { keep }),
        (0..12usize, 0..12usize).prop_map(|(at, from)| Rewrite::Link { at, from }),
    ]
}

/// What a database writer does to the stored entries; a rewrite that does not fit the chain
/// as it stands leaves it alone.
fn apply(chain: &mut Vec<AuditRecord>, rewrite: Rewrite) {
    match rewrite {
        Rewrite::Edit { at, text } if at < chain.len() => chain[at].details = format!("{{\"x\":\"{text}\"}}"),
        Rewrite::Delete { at } if at < chain.len() => {
            chain.remove(at);
        }
        Rewrite::Swap { at } if at + 1 < chain.len() => chain.swap(at, at + 1),
        Rewrite::Truncate { keep } => chain.truncate(keep),
        Rewrite::Link { at, from } if at < chain.len() && from < chain.len() => {
            chain[at].link = chain[from].link.clone();
        }
        _ => {}
    }
}

proptest! {
    /// R13 over every rewrite, each followed by recomputing the public chain (the best a writer
    /// without the key can do): default verification finds it, and the offline check with only
    /// a checkpoint of the last entry and the public key finds every change to what entries say.
    #[test]
    fn r13_every_rewrite_without_the_key_is_found(rewrites in proptest::collection::vec(rewrite(), 1..4)) {
        let (original, _) = keyed_chain(12);
        let last = checkpoint(&original[11], CheckpointKind::Periodic);
        let mut chain = original.clone();
        for rewrite in rewrites {
            apply(&mut chain, rewrite);
        }
        renumber(&mut chain);
        prop_assume!(chain != original);
        let head = chain.len() as i64;
        prop_assert!(verify(&chain, &keys(&[1])).is_err() || chain.len() < original.len());
        // Links carry nothing the key's holder does not already know; the public key alone
        // checks what the entries say.
        let content = |c: &[AuditRecord]| c.iter().map(AuditRecord::canonical_bytes).collect::<Vec<_>>();
        if content(&chain) != content(&original) {
            prop_assert!(verify_with(&chain, offline(vec![last.clone()]), Some(head)).is_err());
        }
        let keyring = keys(&[1]);
        let evidence = Evidence { keys: Some(&keyring), checkpoints: vec![last], public_key: Some(signer().public_key()) };
        prop_assert!(verify_with(&chain, evidence, Some(head)).is_err());
    }
}

#[test]
fn a_stored_hash_or_link_matches_only_as_the_lower_case_hex_the_writer_stores() {
    let (chain, _) = keyed_chain(3);
    assert_eq!(verify(&chain, &keys(&[1])), Ok(3));
    for field in ["hash", "link"] {
        let mut altered = chain.clone();
        let stored = match field {
            "hash" => &mut altered[1].hash,
            _ => altered[1].link.as_mut().unwrap(),
        };
        *stored = stored.to_uppercase();
        let broken = verify(&altered, &keys(&[1])).unwrap_err();
        assert_eq!(broken.seq, 2, "{field}: {broken:?}");
        let mut cut = chain.clone();
        let stored = match field {
            "hash" => &mut cut[1].hash,
            _ => cut[1].link.as_mut().unwrap(),
        };
        stored.pop();
        assert_eq!(verify(&cut, &keys(&[1])).unwrap_err().seq, 2, "{field} one digit short");
    }
}

#[test]
fn stored_hex_matches_only_the_lower_case_hex_of_its_digest() {
    for nibble in 0..16u8 {
        assert_eq!(hex_digit(nibble), b"0123456789abcdef"[usize::from(nibble)], "nibble {nibble}");
    }
    for seed in 0..64u8 {
        let digest: [u8; 32] = Sha256::digest([seed]).into();
        let text = hex::encode(digest);
        assert_eq!(hex(&digest), text.as_bytes(), "seed {seed}");
        let expected = hex(&digest);
        assert!(hex_eq(text.as_bytes(), &expected));
        assert!(!hex_eq(text.to_uppercase().as_bytes(), &expected) || text == text.to_uppercase());
        assert!(!hex_eq(&text.as_bytes()[..62], &expected));
        assert!(!hex_eq(format!("{text}0").as_bytes(), &expected));
        for at in [0, 31, 63] {
            let mut changed = text.clone().into_bytes();
            changed[at] = if changed[at] == b'0' { b'1' } else { b'0' };
            assert!(!hex_eq(&changed, &expected), "digit {at}");
        }
    }
}

/// Unkeyed entries, then keyed ones, then a key rotation, with a checkpoint where keying began
/// and one further on: every state a walk carries from one entry to the next.
fn mixed_chain() -> (Vec<AuditRecord>, Vec<Checkpoint>) {
    let (mut chain, mut head) = (Vec::new(), ChainHead::genesis());
    extend(&mut chain, &mut head, None, 3);
    extend(&mut chain, &mut head, Some(&keys(&[1])), 5);
    extend(&mut chain, &mut head, Some(&keys(&[1, 2])), 4);
    let checkpoints =
        vec![checkpoint(&chain[2], CheckpointKind::KeyingStarted), checkpoint(&chain[7], CheckpointKind::Periodic)];
    (chain, checkpoints)
}

/// The rows as stored, walked in segments that start at `starts` (indexes into `rows`), each
/// segment begun after its first row, joined in order: the verdict verification reports.
fn verify_in_segments(
    rows: &[AuditRecord],
    evidence: Evidence<'_>,
    head: Option<i64>,
    starts: &[usize],
) -> Result<u64, ChainBreak> {
    let canonical: Vec<Vec<u8>> = rows.iter().map(AuditRecord::canonical_bytes).collect();
    let entry = |i: usize| ChainEntry {
        seq: rows[i].seq,
        canonical: &canonical[i],
        hash: rows[i].hash.as_bytes(),
        link: rows[i].link.as_deref().map(str::as_bytes),
        key_id: rows[i].key_id.as_deref(),
    };
    let mut bounds: Vec<usize> = starts.iter().copied().filter(|&s| s > 0 && s < rows.len()).collect();
    bounds.sort_unstable();
    bounds.dedup();
    bounds.push(rows.len());
    let mut whole = ChainVerifier::new(evidence)?;
    // Every segment is walked on its own first (as verification does, side by side)...
    let mut walks = Vec::new();
    let mut from = 0;
    for &to in &bounds {
        let (mut walk, first) = match walks.is_empty() {
            true => (None, from),
            false => (Some(whole.after(entry(from))), from + 1),
        };
        let found = (first..to).try_for_each(|i| match &mut walk {
            Some(walk) => walk.push(entry(i)),
            None => whole.push(entry(i)),
        });
        walks.push((walk, found));
        from = to;
    }
    // ...then joined in order; the first thing found, in chain order, is the verdict.
    for (walk, found) in walks {
        if let Some(walk) = walk {
            whole.join(walk)?;
        }
        found?;
    }
    whole.finish(head)?;
    Ok(whole.checked())
}

proptest! {
    /// Verification in segments, side by side, reports exactly what one walk reports, for every
    /// chain a database writer can leave (with or without renumbering) and every way of
    /// cutting it into segments, with the key and without it.
    #[test]
    fn r13_a_chain_walked_in_segments_gets_the_verdict_of_one_walk(
        rewrites in proptest::collection::vec(rewrite(), 0..3),
        renumbered in any::<bool>(),
        starts in proptest::collection::vec(0..12usize, 0..4),
        with_keys in any::<bool>(),
    ) {
        let (mut chain, checkpoints) = mixed_chain();
        for rewrite in rewrites {
            apply(&mut chain, rewrite);
        }
        if renumbered {
            renumber(&mut chain);
        }
        let keyring = keys(&[1, 2]);
        let evidence = || Evidence {
            keys: with_keys.then_some(&keyring),
            checkpoints: checkpoints.clone(),
            public_key: Some(signer().public_key()),
        };
        let head = Some(12);
        let one_walk = verify_with(&chain, evidence(), head);
        prop_assert_eq!(verify_in_segments(&chain, evidence(), head, &starts), one_walk);
    }
}

#[test]
fn segments_of_an_intact_chain_verify_and_a_break_at_a_boundary_is_found_there() {
    let (chain, checkpoints) = mixed_chain();
    let keyring = keys(&[1, 2]);
    let evidence = || Evidence { keys: Some(&keyring), checkpoints: checkpoints.clone(), public_key: None };
    assert_eq!(verify_in_segments(&chain, evidence(), Some(12), &[4, 8]), Ok(12));
    // The boundary entry of the second segment changed: only the join can find it.
    let mut edited = chain.clone();
    edited[4].actor_name = "mallory".into();
    rehash_from(&mut edited, 4);
    let broken = verify_in_segments(&edited, evidence(), Some(12), &[4, 8]).unwrap_err();
    assert_eq!((broken.seq, broken.kind), (5, BreakKind::Link));
    // A segment missing its first entry: the join finds the gap.
    let mut cut = chain.clone();
    cut.remove(8);
    let broken = verify_in_segments(&cut, evidence(), Some(12), &[8]).unwrap_err();
    assert_eq!((broken.seq, broken.kind), (10, BreakKind::Removed));
}
