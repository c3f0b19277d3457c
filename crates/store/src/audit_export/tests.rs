//! Export cursors and leases on both backends.

use super::*;
use crate::testing::{TestBackend, TestDatabase};
use crate::{NewAudit, StoreOptions};
use countersign_core::audit::{ChainHeadEntry, CheckpointKind, CheckpointSigner};

async fn open(database: &TestDatabase) -> Store {
    Store::connect(&database.url, StoreOptions::default()).await.unwrap()
}

fn checkpoint(seq: i64, at: Millis) -> Checkpoint {
    let head = ChainHeadEntry { seq, hash: format!("{seq:064}"), link: None };
    Checkpoint::sign(&CheckpointSigner::from_seed(&[7; 32]), CheckpointKind::Periodic, &head, at)
}

crate::backend_tests!(one_exporter_holds_a_sink_until_its_lease_ends_or_it_lets_go);
async fn one_exporter_holds_a_sink_until_its_lease_ends_or_it_lets_go(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let store = open(&database).await;
    let start = ExportCursor { entry_seq: 0, checkpoint_at: 0 };
    assert_eq!(
        store.lease_audit_export("siem", "a", 1_000, 31_000).await.unwrap(),
        Some(start),
        "a new sink starts at the beginning"
    );
    assert_eq!(store.lease_audit_export("siem", "b", 2_000, 32_000).await.unwrap(), None, "b waits while a holds it");
    assert_eq!(
        store.lease_audit_export("archive", "b", 2_000, 32_000).await.unwrap(),
        Some(start),
        "sinks are leased apart"
    );
    assert_eq!(store.lease_audit_export("siem", "a", 3_000, 33_000).await.unwrap(), Some(start), "a renews");

    let moved = ExportCursor { entry_seq: 5, checkpoint_at: 900 };
    assert!(
        !store.advance_audit_export("siem", "b", moved, &[], 4_000).await.unwrap(),
        "only the holder moves the cursor"
    );
    assert!(store.advance_audit_export("siem", "a", moved, &[], 4_000).await.unwrap());
    assert_eq!(store.lease_audit_export("siem", "b", 32_999, 60_000).await.unwrap(), None, "not before a's lease ends");
    assert_eq!(
        store.lease_audit_export("siem", "b", 33_000, 63_000).await.unwrap(),
        Some(moved),
        "b resumes where a was"
    );
    assert!(!store.advance_audit_export("siem", "a", start, &[], 34_000).await.unwrap(), "a lost it");

    store.release_audit_export("siem", "b").await.unwrap();
    assert_eq!(
        store.lease_audit_export("siem", "a", 34_000, 64_000).await.unwrap(),
        Some(moved),
        "released: a takes over at once"
    );
    assert_eq!(store.audit_export_positions().await.unwrap(), [("archive".to_owned(), 0), ("siem".to_owned(), 5)]);
    database.drop_database().await;
}

crate::backend_tests!(a_checkpoint_saved_late_is_still_sent_and_each_is_sent_once);
async fn a_checkpoint_saved_late_is_still_sent_and_each_is_sent_once(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let store = open(&database).await;
    for i in 0..3 {
        store.audit(NewAudit::new("auth", "signIn"), 1_000 + i).await.unwrap();
    }
    let pending = |since, up_to| {
        let store = store.clone();
        async move {
            let found = store.audit_export_checkpoints("siem", since, up_to, 100).await.unwrap();
            found.into_iter().map(|c| (c.seq, c.at)).collect::<Vec<_>>()
        }
    };
    store.save_checkpoint(&checkpoint(2, 5_000_000)).await.unwrap();
    store.save_checkpoint(&checkpoint(3, 5_000_100)).await.unwrap();
    assert_eq!(pending(0, 2).await, [(2, 5_000_000)], "none for entries the sink has not been sent yet");
    assert_eq!(pending(0, 3).await, [(2, 5_000_000), (3, 5_000_100)], "oldest first");

    let lease = store.lease_audit_export("siem", "a", 1, 100_000).await.unwrap().unwrap();
    let sent = store.audit_export_checkpoints("siem", lease.checkpoint_at - LATE_CHECKPOINTS, 3, 100).await.unwrap();
    let cursor = ExportCursor { entry_seq: 3, checkpoint_at: 5_000_100 };
    assert!(store.advance_audit_export("siem", "a", cursor, &sent, 2).await.unwrap());
    assert_eq!(pending(cursor.checkpoint_at - LATE_CHECKPOINTS, 3).await, [], "each is sent once");

    // Another replica stamped this one before the last one sent, and saved it after.
    store.save_checkpoint(&checkpoint(1, 5_000_050)).await.unwrap();
    assert_eq!(pending(cursor.checkpoint_at - LATE_CHECKPOINTS, 3).await, [(1, 5_000_050)]);
    database.drop_database().await;
}
