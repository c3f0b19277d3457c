//! R13 over HTTP, as the red team did it: with write access to the database (not to the key
//! file or the checkpoint file) rewrite history and recompute every hash after it, then ask the
//! server and an auditor holding only the exported checkpoints and the public key.

use crate::harness::*;
use countersign_core::audit::{chain_hash, parse_checkpoints, PublicKey};
use countersign_core::Clock;
use countersign_store::testing::TestBackend;
use countersign_store::{VerifyInputs, VerifyResult};
use reqwest::StatusCode;
use sqlx::{Connection, Executor, Row};

/// Lifts the append-only triggers, as someone with the database's credentials can.
async fn unguarded(app: &TestApp) -> sqlx::AnyConnection {
    let mut conn = sqlx::AnyConnection::connect(&app.database_url).await.unwrap();
    let lift: &[&str] = if app.backend == TestBackend::Sqlite {
        &[
            "DROP TRIGGER audit_log_no_update",
            "DROP TRIGGER audit_log_no_delete",
            "DROP TRIGGER audit_checkpoints_no_delete",
        ]
    } else {
        &[
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
            "ALTER TABLE audit_checkpoints DISABLE TRIGGER audit_checkpoints_append_only",
        ]
    };
    for statement in lift {
        conn.execute(*statement).await.unwrap();
    }
    conn
}

/// Changes entry `victim`'s stored bytes with `edit`, recomputes the public chain from there on
/// and moves the head: all without a secret. The keyed links stay as they were.
async fn rewrite(app: &TestApp, victim: i64, edit: impl Fn(&str) -> String) {
    let mut conn = unguarded(app).await;
    let rows = sqlx::query("SELECT seq, prev_hash, entry FROM audit_log WHERE seq >= $1 ORDER BY seq")
        .bind(victim)
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let mut prev: String = rows[0].get("prev_hash");
    for row in rows {
        let seq: i64 = row.get("seq");
        let mut entry: String = row.get("entry");
        if seq == victim {
            entry = edit(&entry);
        }
        let hash = hex::encode(chain_hash(&prev, entry.as_bytes()));
        sqlx::query("UPDATE audit_log SET entry = $1, prev_hash = $2, hash = $3 WHERE seq = $4")
            .bind(&entry)
            .bind(&prev)
            .bind(&hash)
            .bind(seq)
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("UPDATE audit_head SET hash = $1").bind(&hash).execute(&mut conn).await.unwrap();
        prev = hash;
    }
}

/// A checkpoint of the head now, as the server makes them every N entries or T seconds.
async fn checkpoint_now(app: &TestApp) {
    let mut last = None;
    let made =
        countersign_server::audit::checkpoints::checkpoint_if_due(&app.store, &app.audit, &mut last, app.clock.now())
            .await
            .unwrap();
    assert!(made.is_some());
}

/// What an auditor downloads, and checks without the audit key.
async fn exported(app: &TestApp) -> (PublicKey, Vec<countersign_core::audit::Checkpoint>) {
    let response = app.http.get(format!("{}/api/v1/audit/checkpoints", app.base)).bearer_auth(&app.admin.token);
    let body = response.send().await.unwrap().text().await.unwrap();
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    (PublicKey::from_hex(page["publicKey"].as_str().unwrap()).unwrap(), parse_checkpoints(&body).unwrap())
}

async fn offline(
    app: &TestApp,
    public_key: PublicKey,
    checkpoints: &[countersign_core::audit::Checkpoint],
) -> VerifyResult {
    let inputs = VerifyInputs { keys: None, public_key: Some(public_key), checkpoints: checkpoints.to_vec() };
    app.store.verify_audit(inputs).await.unwrap().result
}

backend_tests!(r13_an_approval_rewritten_in_the_database_with_every_later_hash_recomputed_is_found);
async fn r13_an_approval_rewritten_in_the_database_with_every_later_hash_recomputed_is_found(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        // Proposed, approved by bob, completed.
        app.create_app("Zoom").await;
        checkpoint_now(&app).await;
        let (status, intact) = app.get(&app.admin, "/api/v1/audit/verify").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(intact["result"], "intact", "{intact}");
        assert_eq!(intact["linksChecked"], intact["entriesChecked"], "every entry is keyed: {intact}");
        assert!(intact["checkpointsChecked"].as_u64().unwrap() >= 2, "keying start and the head: {intact}");
        let (public_key, checkpoints) = exported(&app).await;
        assert_eq!(offline(&app, public_key, &checkpoints).await, VerifyResult::Intact);

        // Who approved, rewritten.
        let (_, approvals) = app.get(&app.admin, "/api/v1/audit?action=approved").await;
        assert_eq!(approvals["value"][0]["actor"]["id"], app.bob.id.as_str(), "{approvals}");
        let victim = approvals["value"][0]["seq"].as_i64().unwrap();
        rewrite(&app, victim, |entry| entry.replace(&app.bob.id, &app.carol.id)).await;
        let (_, report) = app.get(&app.admin, "/api/v1/audit/verify").await;
        assert_eq!(report["result"], "rewritten", "{report}");
        assert_eq!(report["firstBroken"]["seq"], victim, "{report}");
        assert_eq!(report["firstBroken"]["kind"], "link", "{report}");
        assert!(report["firstBroken"]["reason"].as_str().unwrap().contains("without the audit key"), "{report}");
        assert_eq!(offline(&app, public_key, &checkpoints).await, VerifyResult::Rewritten, "the export alone finds it");
    })
    .await;
}

backend_tests!(r13_a_cut_off_tail_is_found_by_the_checkpoint_file_though_the_database_loses_its_checkpoints);
async fn r13_a_cut_off_tail_is_found_by_the_checkpoint_file_though_the_database_loses_its_checkpoints(
    backend: TestBackend,
) {
    with_app(backend, Setup::protected(), |app| async move {
        app.create_app("Zoom").await;
        app.create_app("Slack").await;
        checkpoint_now(&app).await;
        let head = app.audit_len().await;
        // The last entries deleted, the head moved back, every checkpoint the database kept gone:
        // what is left is a keyed chain, all of whose links are good.
        let mut conn = unguarded(&app).await;
        conn.execute(format!("DELETE FROM audit_log WHERE seq > {}", head - 3).as_str()).await.unwrap();
        let last = sqlx::query(&format!("SELECT hash, key_id FROM audit_log WHERE seq = {}", head - 3))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2, key_id = $3")
            .bind(head - 3)
            .bind(last.get::<String, _>("hash"))
            .bind(last.get::<Option<String>, _>("key_id"))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.execute("DELETE FROM audit_checkpoints").await.unwrap();
        let (_, report) = app.get(&app.admin, "/api/v1/audit/verify").await;
        assert_eq!(report["result"], "rewritten", "{report}");
        assert_eq!(report["firstBroken"]["kind"], "truncated", "{report}");
        assert_eq!(report["firstBroken"]["seq"], head - 2, "{report}");
    })
    .await;
}

backend_tests!(r13_an_unreadable_checkpoint_file_makes_verification_say_so);
async fn r13_an_unreadable_checkpoint_file_makes_verification_say_so(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        std::fs::write(&app.audit.checkpoint_file, "{ this is not a checkpoint\n").unwrap();
        let (status, report) = app.get(&app.admin, "/api/v1/audit/verify").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(report["result"], "unverifiable", "{report}");
        assert!(report["unverifiable"].as_str().unwrap().contains("checkpoint file"), "{report}");
    })
    .await;
}
