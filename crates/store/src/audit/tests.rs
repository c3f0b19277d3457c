//! R13 on both backends, as the attacker of DESIGN §3 with write access to the database but
//! neither the audit key nor the checkpoint signing key.

use super::*;
use crate::testing::{TestBackend, TestDatabase};
use crate::StoreOptions;
use countersign_core::audit::{AuditKey, CheckpointKind, CheckpointSigner};

fn keys(bytes: &[u8]) -> AuditKeys {
    AuditKeys::new(bytes.iter().map(|&b| AuditKey::new(&[b; 32])).collect()).unwrap()
}

fn signer() -> CheckpointSigner {
    CheckpointSigner::from_seed(&[42; 32])
}

async fn open(database: &TestDatabase, keyring: Option<AuditKeyring>) -> Store {
    Store::connect(&database.url, StoreOptions { audit_keys: keyring, ..StoreOptions::default() }).await.unwrap()
}

/// `entries` entries written in one transaction the way each backend appends.
async fn write(store: &Store, entries: usize, from: i64) {
    let mut tx = store.begin_write().await.unwrap();
    for i in 0..entries {
        let entry = NewAudit::new("auth", "signIn").by("someone", &format!("user {i}"));
        append(&mut tx, entry.details(serde_json::json!({ "n": i, "text": "é \"quoted\" \n tab\t" })), from + i as i64);
    }
    tx.commit().await.unwrap();
}

/// What an auditor holds: a checkpoint of the current head, exported before the attack.
async fn checkpoint(store: &Store, kind: CheckpointKind) -> Checkpoint {
    let signed = Checkpoint::sign(&signer(), kind, &store.audit_head().await.unwrap(), 5_000_000);
    store.save_checkpoint(&signed).await.unwrap();
    signed
}

async fn verify(store: &Store, keys: Option<&AuditKeys>, exported: &[Checkpoint]) -> VerifyReport {
    let inputs = VerifyInputs { keys, public_key: Some(signer().public_key()), checkpoints: exported.to_vec() };
    store.verify_audit(inputs).await.unwrap()
}

fn lift_append_only(backend: TestBackend) -> &'static [&'static str] {
    match backend {
        TestBackend::Sqlite => &[
            "DROP TRIGGER audit_log_no_update",
            "DROP TRIGGER audit_log_no_delete",
            "DROP TRIGGER audit_checkpoints_no_delete",
        ],
        TestBackend::Postgres => &[
            "DROP TRIGGER audit_log_append_only ON audit_log",
            "DROP TRIGGER audit_checkpoints_append_only ON audit_checkpoints",
        ],
    }
}

/// The database writer's rewrite: read every entry, change the list, then renumber and recompute
/// the whole public chain and the stored canonical bytes (no secret needed), keep the links
/// (which need the key), write everything back, move the head, and drop the checkpoints kept
/// in the database.
async fn rewrite(store: &Store, backend: TestBackend, change: impl FnOnce(&mut Vec<AuditRecord>)) {
    let mut chain = store.audit_after(0, i64::MAX).await.unwrap();
    change(&mut chain);
    let mut prev = countersign_core::audit::GENESIS_HASH.to_owned();
    for (i, record) in chain.iter_mut().enumerate() {
        record.seq = i as i64 + 1;
        record.prev_hash = prev;
        record.hash = record.compute_hash();
        prev = record.hash.clone();
    }
    for lift in lift_append_only(backend) {
        sqlx::query(lift).execute(store.pool()).await.unwrap();
    }
    sqlx::query("DELETE FROM audit_log").execute(store.pool()).await.unwrap();
    sqlx::query("DELETE FROM audit_checkpoints").execute(store.pool()).await.unwrap();
    for r in &chain {
        sqlx::query(&format!("INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES ({})", placeholders(1, 15)))
            .bind(r.seq)
            .bind(&r.id)
            .bind(r.at)
            .bind(&r.actor_id)
            .bind(&r.actor_name)
            .bind(&r.category)
            .bind(&r.action)
            .bind(&r.target_type)
            .bind(&r.target_id)
            .bind(&r.details)
            .bind(&r.prev_hash)
            .bind(&r.hash)
            .bind(String::from_utf8(r.canonical_bytes()).unwrap())
            .bind(&r.link)
            .bind(&r.key_id)
            .execute(store.pool())
            .await
            .unwrap();
    }
    let last = chain.last().unwrap();
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2, key_id = $3 WHERE id = 1")
        .bind(last.seq)
        .bind(&last.hash)
        .bind(&last.key_id)
        .execute(store.pool())
        .await
        .unwrap();
}

fn assert_rewritten(report: &VerifyReport, seq: i64, what: &str) {
    assert_eq!(report.result, VerifyResult::Rewritten, "{what}: {report:?}");
    assert!(!report.valid, "{what}");
    assert_eq!(report.first_broken.as_ref().map(|b| b.seq), Some(seq), "{what}: {report:?}");
}

type Attack = (&'static str, fn(&mut Vec<AuditRecord>), i64);

const ATTACKS: [Attack; 5] = [
    ("an edited entry, later hashes recomputed", |c| c[7].actor_name = "mallory".into(), 8),
    ("a deleted entry", |c| drop(c.remove(7)), 8),
    ("a reordering", |c| c.swap(7, 8), 8),
    ("a truncated tail", |c| c.truncate(16), 17),
    ("a replaced head", |c| c.last_mut().unwrap().details = r#"{"approvedBy":"board"}"#.into(), 20),
];

crate::backend_tests!(r13_every_rewrite_by_a_database_writer_is_found_by_the_key_and_by_exported_checkpoints);
async fn r13_every_rewrite_by_a_database_writer_is_found_by_the_key_and_by_exported_checkpoints(backend: TestBackend) {
    for (what, attack, first_bad) in ATTACKS {
        let database = TestDatabase::create(backend).await;
        let store = open(&database, Some(AuditKeyring::fixed(keys(&[1])))).await;
        write(&store, 20, 1_000).await;
        let exported = vec![checkpoint(&store, CheckpointKind::Periodic).await];
        let report = verify(&store, Some(&keys(&[1])), &exported).await;
        assert_eq!((report.result, report.entries_checked, report.links_checked), (VerifyResult::Intact, 20, 20));
        assert_eq!(report.checkpoints_checked, 1, "{backend:?}");

        rewrite(&store, backend, attack).await;
        let keyed = verify(&store, Some(&keys(&[1])), &[]).await;
        if what == "a truncated tail" {
            // A prefix of a keyed chain, with its head moved back, is keyed all through: only a
            // checkpoint from outside the database knows how far the log went.
            assert_eq!(keyed.result, VerifyResult::Intact, "{backend:?} {what}");
        } else {
            assert_rewritten(&keyed, first_bad, &format!("{backend:?} {what}, with the key"));
        }
        let with_exports = verify(&store, Some(&keys(&[1])), &exported).await;
        assert_rewritten(&with_exports, first_bad, &format!("{backend:?} {what}, with the key and the export"));
        let offline = verify(&store, None, &exported).await;
        assert_eq!(
            offline.result,
            VerifyResult::Rewritten,
            "{backend:?} {what}: the public key and the export suffice"
        );
        assert_eq!(offline.links_checked, 0);
        database.drop_database().await;
    }
}

crate::backend_tests!(r13_a_forged_checkpoint_in_the_database_is_reported);
async fn r13_a_forged_checkpoint_in_the_database_is_reported(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let store = open(&database, Some(AuditKeyring::fixed(keys(&[1])))).await;
    write(&store, 3, 1_000).await;
    let forged = Checkpoint::sign(
        &CheckpointSigner::from_seed(&[9; 32]),
        CheckpointKind::Periodic,
        &store.audit_head().await.unwrap(),
        1,
    );
    store.save_checkpoint(&forged).await.unwrap();
    let report = verify(&store, Some(&keys(&[1])), &[]).await;
    assert_eq!(report.first_broken.map(|b| b.kind), Some(BreakKind::Signature), "{backend:?}");
    database.drop_database().await;
}

crate::backend_tests!(r13_an_old_unkeyed_chain_is_keyed_once_and_cannot_be_downgraded);
async fn r13_an_old_unkeyed_chain_is_keyed_once_and_cannot_be_downgraded(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let old = open(&database, None).await;
    write(&old, 5, 1_000).await;
    assert_eq!(old.start_keying(2_000).await.unwrap(), None, "no keys, no keying");
    old.close().await;

    let keyring = AuditKeyring::fixed(keys(&[1]));
    let (first, second) = (open(&database, Some(keyring.clone())).await, open(&database, Some(keyring)).await);
    let (a, b) = tokio::join!(first.start_keying(3_000), second.start_keying(3_000));
    let unkeyed = match (a.unwrap(), b.unwrap()) {
        (Some(head), None) | (None, Some(head)) => head,
        other => panic!("{backend:?}: keying must start exactly once, got {other:?}"),
    };
    assert_eq!((unkeyed.seq, unkeyed.link.as_deref()), (5, None));
    let began = Checkpoint::sign(&signer(), CheckpointKind::KeyingStarted, &unkeyed, 3_000);
    first.save_checkpoint(&began).await.unwrap();
    write(&first, 3, 4_000).await;
    let report = verify(&first, Some(&keys(&[1])), std::slice::from_ref(&began)).await;
    assert_eq!(
        (report.result, report.entries_checked, report.links_checked),
        (VerifyResult::Intact, 9, 4),
        "{backend:?}"
    );
    let keying = first.audit_after(5, 1).await.unwrap().remove(0);
    assert_eq!((keying.category.as_str(), keying.action.as_str()), ("audit", "keyingStarted"));

    // A store without keys may not append to a keyed chain.
    let unkeyed_store = open(&database, None).await;
    let mut tx = unkeyed_store.begin_write().await.unwrap();
    append(&mut tx, NewAudit::new("auth", "signIn"), 5_000);
    let refused = tx.commit().await.unwrap_err().to_string();
    assert!(refused.contains("audit key"), "{backend:?}: {refused}");

    // Stripping the links and recomputing the public chain: every later entry must be keyed.
    rewrite(&first, backend, |chain| {
        for r in chain.iter_mut() {
            (r.link, r.key_id) = (None, None);
        }
    })
    .await;
    let report = verify(&first, Some(&keys(&[1])), &[began]).await;
    assert_eq!(report.first_broken.as_ref().map(|b| (b.seq, b.kind)), Some((6, BreakKind::Unkeyed)), "{backend:?}");
    database.drop_database().await;
}

crate::backend_tests!(r13_key_rotation_continues_the_chain_and_another_replica_follows);
async fn r13_key_rotation_continues_the_chain_and_another_replica_follows(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let before = open(&database, Some(AuditKeyring::fixed(keys(&[1])))).await;
    write(&before, 3, 1_000).await;
    // One replica restarts with the rotated key file; another still holds the old keys, and
    // reads the file again when it meets the new key on the chain's head.
    let rotated = open(&database, Some(AuditKeyring::fixed(keys(&[1, 2])))).await;
    write(&rotated, 2, 2_000).await;
    let lagging = open(&database, Some(AuditKeyring::new(keys(&[1]), || Ok(keys(&[1, 2]))))).await;
    write(&lagging, 2, 3_000).await;
    let chain = before.audit_after(0, 100).await.unwrap();
    let new_key = keys(&[2]).current().id().to_owned();
    assert!(chain[3..].iter().all(|r| r.key_id.as_deref() == Some(new_key.as_str())), "{backend:?}: {chain:?}");
    let report = verify(&before, Some(&keys(&[1, 2])), &[]).await;
    assert_eq!((report.result, report.links_checked), (VerifyResult::Intact, 7), "{backend:?}");
    let without_old = verify(&before, Some(&keys(&[2])), &[]).await;
    assert_eq!(without_old.first_broken.map(|b| (b.seq, b.kind)), Some((1, BreakKind::UnknownKey)));
    database.drop_database().await;
}

crate::backend_tests!(r13_what_is_shown_is_what_was_verified);
async fn r13_what_is_shown_is_what_was_verified(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let store = open(&database, Some(AuditKeyring::fixed(keys(&[1])))).await;
    write(&store, 3, 1_000).await;
    for lift in lift_append_only(backend) {
        sqlx::query(lift).execute(store.pool()).await.unwrap();
    }
    // The index columns changed, the verified bytes not: lists show the bytes, and a filter on
    // the changed column does not pull the entry in.
    sqlx::query("UPDATE audit_log SET actor_name = 'mallory', action = 'approved' WHERE seq = 2")
        .execute(store.pool())
        .await
        .unwrap();
    let all = store.audit_entries(&AuditFilter { limit: 10, ..AuditFilter::default() }).await.unwrap();
    assert_eq!(all.iter().find(|r| r.seq == 2).map(|r| r.actor_name.as_str()), Some("user 1"), "{backend:?}");
    let approved = AuditFilter { action: Some("approved".into()), limit: 10, ..AuditFilter::default() };
    assert!(store.audit_entries(&approved).await.unwrap().is_empty(), "{backend:?}");
    // Bytes that are not an entry leave the list readable, and verification names them.
    sqlx::query("UPDATE audit_log SET entry = '[3,' WHERE seq = 3").execute(store.pool()).await.unwrap();
    let listed = store.audit_entries(&AuditFilter { limit: 10, ..AuditFilter::default() }).await.unwrap();
    assert_eq!(listed.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![2, 1], "{backend:?}");
    assert_rewritten(&verify(&store, Some(&keys(&[1])), &[]).await, 3, "unreadable bytes");
    database.drop_database().await;
}

/// Entries enough for several of the SQLite scan's chunks (each about a megabyte).
const MANY: usize = 6_000;

// A chain longer than several scan chunks, half of it from before the chain was keyed.
crate::backend_tests!(r13_verification_reads_chunk_after_chunk_and_finds_a_change_in_a_later_one);
async fn r13_verification_reads_chunk_after_chunk_and_finds_a_change_in_a_later_one(backend: TestBackend) {
    let entries = MANY + 5;
    let database = TestDatabase::create(backend).await;
    let old = open(&database, None).await;
    write(&old, MANY / 2, 1_000).await;
    old.close().await;
    let store = open(&database, Some(AuditKeyring::fixed(keys(&[1])))).await;
    let unkeyed = store.start_keying(2_000).await.unwrap().unwrap();
    let began = Checkpoint::sign(&signer(), CheckpointKind::KeyingStarted, &unkeyed, 2_000);
    write(&store, entries - MANY / 2 - 1, 3_000).await;
    let report = verify(&store, Some(&keys(&[1])), std::slice::from_ref(&began)).await;
    assert!(report.valid, "{backend:?}: {report:?}");
    assert_eq!(report.entries_checked, entries as u64, "{backend:?}: every entry was read");

    // Someone with write access to the database edits an entry near the end, and one from
    // before keying began.
    let tampered = (MANY - 2) as i64;
    for lift in lift_append_only(backend) {
        sqlx::query(lift).execute(store.pool()).await.unwrap();
    }
    sqlx::query("UPDATE audit_log SET entry = replace(entry, 'user', 'nobody') WHERE seq = $1")
        .bind(tampered)
        .execute(store.pool())
        .await
        .unwrap();
    let report = verify(&store, Some(&keys(&[1])), std::slice::from_ref(&began)).await;
    assert!(!report.valid, "{backend:?}");
    assert_eq!(report.first_broken.map(|b| b.seq), Some(tampered), "{backend:?}");
    assert_eq!(report.entries_checked, tampered as u64 - 1, "{backend:?}: checked up to the change");
    // Entries from before the keyed chain have no stored bytes, and are checked by their
    // columns, in every chunk: as they are, they still fit.
    // (The server now keeps `details` only in the bytes, so the column gets it back first.)
    let unstore = match backend {
        TestBackend::Sqlite => {
            "UPDATE audit_log SET details = json_extract(entry, '$[9]'), entry = NULL WHERE seq <= $1"
        }
        TestBackend::Postgres => "UPDATE audit_log SET details = (entry::json)->>9, entry = NULL WHERE seq <= $1",
    };
    sqlx::query(unstore).bind(MANY as i64 / 2).execute(store.pool()).await.unwrap();
    let report = verify(&store, Some(&keys(&[1])), std::slice::from_ref(&began)).await;
    assert_rewritten(&report, tampered, "entries without stored bytes");
    sqlx::query("UPDATE audit_log SET actor_name = 'nobody' WHERE seq = 1000").execute(store.pool()).await.unwrap();
    assert_rewritten(&verify(&store, Some(&keys(&[1])), &[began]).await, 1000, "an entry from before keying");
    database.drop_database().await;
}

// Verification reads one snapshot: entries appended while it runs are neither half-read nor
// mistaken for a cut-off tail, on either backend.
crate::backend_tests!(r13_verification_while_entries_are_appended_reports_the_snapshot_intact, worker_threads = 4);
async fn r13_verification_while_entries_are_appended_reports_the_snapshot_intact(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let store = open(&database, Some(AuditKeyring::fixed(keys(&[1])))).await;
    write(&store, MANY, 1_000).await;
    let writer = store.clone();
    let appending = tokio::spawn(async move {
        for round in 0..40 {
            write(&writer, 25, 10_000 + round).await;
        }
    });
    let mut reports = Vec::new();
    while !appending.is_finished() {
        reports.push(verify(&store, Some(&keys(&[1])), &[]).await);
    }
    appending.await.unwrap();
    reports.push(verify(&store, Some(&keys(&[1])), &[]).await);
    for report in &reports {
        assert!(report.valid, "{backend:?}: {report:?}");
    }
    assert_eq!(reports.last().map(|r| r.entries_checked), Some((MANY + 1_000) as u64), "{backend:?}");
    database.drop_database().await;
}

// What only a writer around the server can store: a NULL where the server always writes a
// value, and on SQLite (whose columns take any type) a number or bytes where text belongs. Each
// is a rewrite at that entry, never an error or a skipped entry.
crate::backend_tests!(r13_values_of_the_wrong_kind_are_reported_as_rewritten_entries);
async fn r13_values_of_the_wrong_kind_are_reported_as_rewritten_entries(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let store = open(&database, Some(AuditKeyring::fixed(keys(&[1])))).await;
    write(&store, 30, 1_000).await;
    for lift in lift_append_only(backend) {
        sqlx::query(lift).execute(store.pool()).await.unwrap();
    }
    let mut edits = vec![
        ("UPDATE audit_log SET link = NULL WHERE seq = 20", 20),
        ("UPDATE audit_log SET hash = 'é' WHERE seq = 15", 15),
        ("UPDATE audit_log SET entry = NULL WHERE seq = 10", 10),
    ];
    if backend == TestBackend::Sqlite {
        edits.extend([
            ("UPDATE audit_log SET link = 12345 WHERE seq = 8", 8),
            // The same bytes as a blob change nothing: the first break is still entry 8.
            ("UPDATE audit_log SET hash = CAST(hash AS BLOB) WHERE seq = 7", 8),
            ("UPDATE audit_log SET entry = 3.5 WHERE seq = 6", 6),
            // Entry 5 is no longer where it belongs: the chain breaks where 6 stands in for it.
            ("UPDATE audit_log SET seq = 'five' WHERE seq = 5", 6),
            // Bytes that are not text at all, compared as bytes, still do not match.
            ("UPDATE audit_log SET link = x'ff' || link WHERE seq = 4", 4),
        ]);
    }
    for (edit, seq) in edits {
        sqlx::query(edit).execute(store.pool()).await.unwrap();
        assert_rewritten(&verify(&store, Some(&keys(&[1])), &[]).await, seq, edit);
    }
    database.drop_database().await;
}

// An entry copied to a `seq` far past the rest, and a range of entries deleted, are found.
crate::backend_tests!(r13_verification_finds_a_gap_and_an_entry_far_past_the_rest);
async fn r13_verification_finds_a_gap_and_an_entry_far_past_the_rest(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let store = open(&database, Some(AuditKeyring::fixed(keys(&[1])))).await;
    write(&store, MANY + 7, 1_000).await;
    assert!(verify(&store, Some(&keys(&[1])), &[]).await.valid, "{backend:?}");
    for lift in lift_append_only(backend) {
        sqlx::query(lift).execute(store.pool()).await.unwrap();
    }
    let far = 1_000_000_000_000_i64;
    let copy = format!(
        "INSERT INTO audit_log ({AUDIT_COLUMNS}) SELECT $1, {} FROM audit_log WHERE seq = 3",
        &AUDIT_COLUMNS[5..]
    );
    sqlx::query(&copy).bind(far).execute(store.pool()).await.unwrap();
    assert_rewritten(&verify(&store, Some(&keys(&[1])), &[]).await, far, "an entry far past the rest");

    let (from, to) = (MANY as i64 / 3, MANY as i64 / 2);
    sqlx::query("DELETE FROM audit_log WHERE seq >= $1 AND seq <= $2")
        .bind(from)
        .bind(to)
        .execute(store.pool())
        .await
        .unwrap();
    assert_rewritten(&verify(&store, Some(&keys(&[1])), &[]).await, to + 1, "a range of entries deleted");
    database.drop_database().await;
}

// Verification reads rows as they are stored, which for a log only ever appended to is `seq`
// order. Rows moved out of it (deleted and written back as they were) are not by themselves a
// rewrite: the chain is walked again in `seq` order, which finds it intact, and still names the
// first entry whose content changed.
crate::backend_tests!(r13_rows_stored_out_of_seq_order_are_judged_by_their_content);
async fn r13_rows_stored_out_of_seq_order_are_judged_by_their_content(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let store = open(&database, Some(AuditKeyring::fixed(keys(&[1])))).await;
    write(&store, 50, 1_000).await;
    for lift in lift_append_only(backend) {
        sqlx::query(lift).execute(store.pool()).await.unwrap();
    }
    let mut tx = store.pool().begin().await.unwrap();
    let (moves, as_stored): (&[&str], &str) = match backend {
        TestBackend::Sqlite => (
            &[
                "CREATE TEMP TABLE moved AS SELECT * FROM audit_log WHERE seq = 7",
                "DELETE FROM audit_log WHERE seq = 7",
                "INSERT INTO audit_log SELECT * FROM moved",
            ],
            "SELECT seq FROM audit_log ORDER BY rowid",
        ),
        TestBackend::Postgres => (&["UPDATE audit_log SET seq = seq WHERE seq = 7"], "SELECT seq FROM audit_log"),
    };
    for statement in moves {
        sqlx::query(statement).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    let stored: Vec<i64> = sqlx::query_scalar(as_stored).fetch_all(store.pool()).await.unwrap();
    assert!(!stored.is_sorted(), "{backend:?}: the rows are stored out of order: {stored:?}");

    let report = verify(&store, Some(&keys(&[1])), &[]).await;
    assert!(report.valid, "{backend:?}: {report:?}");
    assert_eq!(report.entries_checked, 50, "{backend:?}");
    sqlx::query("UPDATE audit_log SET entry = replace(entry, 'user', 'nobody') WHERE seq = 30")
        .execute(store.pool())
        .await
        .unwrap();
    assert_rewritten(&verify(&store, Some(&keys(&[1])), &[]).await, 30, "a change after the moved row");
    database.drop_database().await;
}
