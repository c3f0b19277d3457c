//! R21 over HTTP with a software authenticator (an ES256 key the test holds): on a policy with
//! `stepUp: passkey` a bearer token alone is refused with a link; an assertion without user
//! verification, made for another request, for the other decision, or replayed is refused; a
//! good one is accepted, stored, and verifies offline, and a database writer who edits what was
//! approved is caught. Issue 17's passkey rules (R9, fresh check) too.

use crate::harness::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use countersign_core::step_up::{
    step_up_challenge_text, CredentialPublicKey, Decision as Signed, RelyingParty, StepUpContext,
};
use countersign_store::NewPasskey;
use p256::ecdsa::signature::Signer;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Connection;
use std::sync::atomic::{AtomicU32, Ordering};

const UP: u8 = 0x01;
const UV: u8 = 0x04;

/// A software passkey: its key, the credential id the server knows it by, and its counter.
struct SoftKey {
    key: p256::ecdsa::SigningKey,
    credential_id: String,
    counter: AtomicU32,
}

impl SoftKey {
    fn new(seed: u8) -> SoftKey {
        SoftKey {
            key: p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap(),
            credential_id: URL_SAFE_NO_PAD.encode([seed; 16]),
            counter: AtomicU32::new(0),
        }
    }

    fn public_key(&self) -> String {
        CredentialPublicKey::Es256(self.key.verifying_key().to_encoded_point(false).as_bytes().to_vec()).to_text()
    }

    /// An assertion over `challenge` as a browser on `origin` returns it, with these flags.
    fn assert(&self, rp: &RelyingParty, challenge: &str, flags: u8) -> Value {
        let mut authenticator_data = Sha256::digest(rp.id.as_bytes()).to_vec();
        authenticator_data.push(flags);
        let count = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        authenticator_data.extend_from_slice(&count.to_be_bytes());
        let client_data =
            json!({"type": "webauthn.get", "challenge": challenge, "origin": rp.origins[0]}).to_string().into_bytes();
        let mut signed = authenticator_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let signature: p256::ecdsa::Signature = self.key.sign(&signed);
        json!({
            "credentialId": self.credential_id,
            "authenticatorData": URL_SAFE_NO_PAD.encode(&authenticator_data),
            "clientDataJSON": URL_SAFE_NO_PAD.encode(&client_data),
            "signature": URL_SAFE_NO_PAD.encode(signature.to_der().as_bytes()),
        })
    }
}

fn relying_party(app: &TestApp) -> RelyingParty {
    let host = app.base.trim_start_matches("http://").split(':').next().unwrap().to_owned();
    RelyingParty { id: host, origins: vec![app.base.clone()] }
}

/// Registers `key` as a passkey of `user` (as the store's own-account path does after the
/// browser ceremony; the ceremony itself is tested in the browser suite).
async fn give_passkey(app: &TestApp, user: &User, key: &SoftKey) -> String {
    let actor = app.store.account(&user.id).await.unwrap().unwrap().actor();
    let id = uuid::Uuid::now_v7().to_string();
    let new = NewPasskey {
        id: id.clone(),
        name: "software key".into(),
        credential_id: key.credential_id.clone(),
        credential: "{}".into(),
        public_key: key.public_key(),
    };
    app.store.add_own_passkey(&actor, &new, START).await.unwrap();
    id
}

/// The app policy asks for a passkey on every decision (changed through R9 like any policy
/// change: the operationApprovalPolicy policy still asks for none).
async fn app_policy_asks_for_passkeys(app: &TestApp) {
    let (_, list) = app.get(&app.admin, "/api/v1/accessPolicies").await;
    let policy = list["value"].as_array().unwrap().iter().find(|p| p["profileType"] == "app").unwrap().clone();
    assert_eq!(policy["stepUp"], "none", "policies from before R21 keep their behaviour");
    let id = policy["id"].as_str().unwrap();
    let (status, held) = app
        .put(
            &app.alice,
            &format!("/api/v1/accessPolicies/{id}"),
            json!({
                "displayName": policy["displayName"], "description": policy["description"],
                "profileType": "app", "approverGroupIds": policy["approverGroupIds"],
                "requiredApprovals": policy["requiredApprovals"], "completion": policy["completion"],
                "requestTtl": policy["requestTtl"], "stepUp": "passkey",
                "justification": "R21: approvals of apps are signed by a passkey",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    let request = held["id"].as_str().unwrap();
    app.approve(&app.bob, request).await;
    let (status, done) = app.post(&app.alice, &format!("/api/v1/requests/{request}/complete"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let (_, policy) = app.get(&app.admin, &format!("/api/v1/accessPolicies/{id}")).await;
    assert_eq!(policy["stepUp"], "passkey", "{policy}");
}

/// Begins a step-up: the nonce and the challenge the server derived.
async fn begin(app: &TestApp, user: &User, request: &str, decision: &str) -> (String, String) {
    let (status, body) =
        app.post(user, &format!("/api/v1/requests/{request}/stepUp"), json!({"decision": decision})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (body["nonce"].as_str().unwrap().to_owned(), body["options"]["publicKey"]["challenge"].as_str().unwrap().to_owned())
}

async fn approve_with(
    app: &TestApp,
    user: &User,
    request: &str,
    nonce: &str,
    assertion: &Value,
) -> (StatusCode, Value) {
    app.post(
        user,
        &format!("/api/v1/requests/{request}/approve"),
        json!({"notes": "signed", "stepUp": {"nonce": nonce, "assertion": assertion}}),
    )
    .await
}

async fn digest_of(app: &TestApp, request: &str) -> String {
    let (_, body) = app.get(&app.admin, &format!("/api/v1/requests/{request}")).await;
    body["changeDigest"].as_str().unwrap().to_owned()
}

backend_tests!(r21_a_decision_needs_a_fresh_user_verified_assertion_over_this_request);
async fn r21_a_decision_needs_a_fresh_user_verified_assertion_over_this_request(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let bob_key = SoftKey::new(7);
        let bob_passkey = give_passkey(&app, &app.bob, &bob_key).await;
        let target = app.create_app("Payroll").await;
        app_policy_asks_for_passkeys(&app).await;
        let rp = relying_party(&app);

        let (status, held) = app.update_app(&app.alice, &target, "2.0").await;
        assert_eq!(status, StatusCode::ACCEPTED, "{held}");
        let first = held["id"].as_str().unwrap().to_owned();
        let (status, held) = app
            .post(&app.alice, "/api/v1/resources/app", json!({"name": "Other", "document": {}, "justification": "new"}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{held}");
        let second = held["id"].as_str().unwrap().to_owned();

        // A bearer token alone: refused, with the link to confirm in a browser.
        let (status, body) =
            app.post(&app.bob, &format!("/api/v1/requests/{first}/approve"), json!({"notes": "token only"})).await;
        assert_problem(status, &body, 403, "step_up_required");
        assert_eq!(body["link"], format!("{}/requests/{first}?decide=approve", app.base), "{body}");

        // The server's challenge is core's derivation over this request, digest, decision, nonce.
        let (nonce, challenge) = begin(&app, &app.bob, &first, "approve").await;
        let digest = digest_of(&app, &first).await;
        let expected = step_up_challenge_text(&StepUpContext {
            request_id: &first,
            change_digest: &digest,
            decision: Signed::Approve,
            nonce: &nonce,
        });
        assert_eq!(challenge, expected);

        // Without user verification (presence only): refused.
        let (status, body) = approve_with(&app, &app.bob, &first, &nonce, &bob_key.assert(&rp, &challenge, UP)).await;
        assert_problem(status, &body, 403, "step_up_rejected");
        assert!(body["detail"].as_str().unwrap().contains("step_up_not_user_verified"), "{body}");

        // Made for the other request: refused, whether its nonce or its assertion is sent here.
        let (other_nonce, other_challenge) = begin(&app, &app.bob, &second, "approve").await;
        let for_other = bob_key.assert(&rp, &other_challenge, UP | UV);
        let (status, body) = approve_with(&app, &app.bob, &first, &other_nonce, &for_other).await;
        assert_problem(status, &body, 403, "step_up_rejected");
        let (status, body) = approve_with(&app, &app.bob, &first, &nonce, &for_other).await;
        assert_problem(status, &body, 403, "step_up_rejected");
        assert!(body["detail"].as_str().unwrap().contains("step_up_wrong_challenge"), "{body}");

        // Made to reject, sent to approve: refused.
        let (reject_nonce, reject_challenge) = begin(&app, &app.bob, &first, "reject").await;
        let to_reject = bob_key.assert(&rp, &reject_challenge, UP | UV);
        let (status, body) = approve_with(&app, &app.bob, &first, &reject_nonce, &to_reject).await;
        assert_problem(status, &body, 403, "step_up_rejected");

        // Someone else's (carol's) passkey for bob's nonce: refused.
        let carol_key = SoftKey::new(9);
        give_passkey(&app, &app.carol, &carol_key).await;
        let (status, body) =
            approve_with(&app, &app.bob, &first, &nonce, &carol_key.assert(&rp, &challenge, UP | UV)).await;
        assert_problem(status, &body, 403, "step_up_rejected");

        // Good: accepted, and stored with the approval.
        let good = bob_key.assert(&rp, &challenge, UP | UV);
        let (status, body) = approve_with(&app, &app.bob, &first, &nonce, &good).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "approved", "{body}");
        assert!(body["approvals"][0]["confirmedWithPasskey"].is_string(), "{body}");

        // Replayed (same nonce and assertion) on the other request: refused.
        let (status, body) = approve_with(&app, &app.bob, &second, &nonce, &good).await;
        assert_problem(status, &body, 403, "step_up_rejected");
        assert!(body["detail"].as_str().unwrap().contains("already used"), "{body}");

        // `countersign audit verify`'s check: the stored assertion verifies offline.
        let report = app.store.verify_step_ups(&rp).await.unwrap();
        assert_eq!((report.checked, report.failed.len()), (1, 0), "{report:?}");

        // A database writer who changes the digest the approval recorded is caught by it.
        let mut conn = sqlx::AnyConnection::connect(&app.database_url).await.unwrap();
        sqlx::query("UPDATE approvals SET change_digest = $1 WHERE request_id = $2")
            .bind("0".repeat(64))
            .bind(&first)
            .execute(&mut conn)
            .await
            .unwrap();
        let report = app.store.verify_step_ups(&rp).await.unwrap();
        assert_eq!(report.failed.len(), 1, "{report:?}");
        assert!(report.failed[0].reason.contains("step_up_wrong_challenge"), "{report:?}");

        // The stronger rewrite: the digest put back, a key of the writer's own in the passkeys
        // table, and an assertion it signed over the same challenge. It verifies as a signature,
        // but the keyed audit log recorded another key and another assertion.
        sqlx::query("UPDATE approvals SET change_digest = $1 WHERE request_id = $2")
            .bind(&digest)
            .bind(&first)
            .execute(&mut conn)
            .await
            .unwrap();
        assert!(app.store.verify_step_ups(&rp).await.unwrap().failed.is_empty(), "restored");
        let mut forger = SoftKey::new(99);
        forger.credential_id = bob_key.credential_id.clone();
        let forged = forger.assert(&rp, &challenge, UP | UV);
        sqlx::query("UPDATE passkeys SET public_key = $1 WHERE id = $2")
            .bind(forger.public_key())
            .bind(&bob_passkey)
            .execute(&mut conn)
            .await
            .unwrap();
        let stored = json!({"passkeyId": bob_passkey, "nonce": nonce, "assertion": forged}).to_string();
        sqlx::query("UPDATE approvals SET step_up = $1 WHERE request_id = $2")
            .bind(&stored)
            .bind(&first)
            .execute(&mut conn)
            .await
            .unwrap();
        let report = app.store.verify_step_ups(&rp).await.unwrap();
        assert_eq!(report.failed.len(), 1, "{report:?}");
        assert!(report.failed[0].reason.contains("audit log"), "{report:?}");
    })
    .await;
}

backend_tests!(r9_another_accounts_passkey_of_an_approver_is_held_and_own_changes_need_a_fresh_check);
async fn r9_another_accounts_passkey_of_an_approver_is_held_and_own_changes_need_a_fresh_check(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let bob_key = SoftKey::new(11);
        let passkey = give_passkey(&app, &app.bob, &bob_key).await;

        // The attack: an administrator removes an approver's passkey (to block their step-up)
        // or would add their own (to approve as them): held, never applied at once.
        let (status, body) = app
            .call(
                &app.alice,
                reqwest::Method::DELETE,
                &format!("/api/v1/accounts/{}/passkeys/{passkey}", app.bob.id),
                Some(json!({"justification": "lost key"})),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "R9: held: {body}");
        assert_eq!(body["after"]["passkey"]["action"], "removed", "{body}");
        let (_, list) = app.get(&app.bob, "/api/v1/me/passkeys").await;
        assert_eq!(list["value"].as_array().unwrap().len(), 1, "still there: {list}");

        // Removing one's own: a bearer token without the password is not a fresh check.
        let path = format!("/api/v1/me/passkeys/{passkey}");
        let (status, body) = app.call(&app.bob, reqwest::Method::DELETE, &path, None).await;
        assert_problem(status, &body, 403, "reauthentication_required");
        let (status, body) =
            app.call(&app.bob, reqwest::Method::DELETE, &path, Some(json!({"currentPassword": "wrong guess"}))).await;
        assert_problem(status, &body, 403, "wrong_password");
        // Registering one is refused the same way.
        let (status, body) = app.post(&app.bob, "/api/v1/me/passkeys/register", json!({"name": "phone"})).await;
        assert_problem(status, &body, 403, "reauthentication_required");

        let (status, body) =
            app.call(&app.bob, reqwest::Method::DELETE, &path, Some(json!({"currentPassword": PASSWORD}))).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (_, list) = app.get(&app.bob, "/api/v1/me/passkeys").await;
        assert!(list["value"].as_array().unwrap().is_empty(), "{list}");
        assert_eq!(app.audit_actions("passkeyRemoved", &app.bob.id).await, 1);
    })
    .await;
}

backend_tests!(passwordless_accounts_keep_a_passkey_and_passkeys_are_renamed);
async fn passwordless_accounts_keep_a_passkey_and_passkeys_are_renamed(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        // Without a passkey the password cannot go: it is the only way in.
        let (status, body) = app
            .call(
                &app.carol,
                reqwest::Method::DELETE,
                "/api/v1/me/password",
                Some(json!({"currentPassword": PASSWORD})),
            )
            .await;
        assert_problem(status, &body, 400, "validation_failed");
        let key = SoftKey::new(21);
        let passkey = give_passkey(&app, &app.carol, &key).await;
        let (status, body) = app
            .call(&app.carol, reqwest::Method::DELETE, "/api/v1/me/password", Some(json!({"currentPassword": "nope"})))
            .await;
        assert_problem(status, &body, 403, "wrong_password");
        let (status, body) = app
            .call(
                &app.carol,
                reqwest::Method::DELETE,
                "/api/v1/me/password",
                Some(json!({"currentPassword": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (_, refused, _) = Session::sign_in_with(&app, "carol", PASSWORD).await;
        assert_eq!(refused, StatusCode::UNAUTHORIZED, "a passwordless account has no password to sign in with");

        // Renamed (a label, no fresh check); the last passkey of a passwordless account stays.
        let path = format!("/api/v1/me/passkeys/{passkey}");
        let (status, renamed) =
            app.call(&app.carol, reqwest::Method::PATCH, &path, Some(json!({"name": "Laptop"}))).await;
        assert_eq!(status, StatusCode::OK, "{renamed}");
        assert_eq!(renamed["name"], "Laptop");
        // A token has no session to be fresh, and there is no password any more.
        let (status, body) = app.call(&app.carol, reqwest::Method::DELETE, &path, None).await;
        assert_problem(status, &body, 403, "reauthentication_required");
        // Even after a fresh check (the store's rule): the last one stays.
        let actor = app.store.account(&app.carol.id).await.unwrap().unwrap().actor();
        let kept = app.store.remove_own_passkey(&actor, &passkey, START).await;
        assert!(kept.is_err_and(|e| e.to_string().contains("last passkey")), "the last passkey stays");
        let (_, list) = app.get(&app.carol, "/api/v1/me/passkeys").await;
        assert_eq!(list["value"].as_array().unwrap().len(), 1, "{list}");
        assert_eq!(app.audit_actions("passwordRemoved", &app.carol.id).await, 1);
        assert_eq!(app.audit_actions("passkeyRenamed", &app.carol.id).await, 1);
    })
    .await;
}

backend_tests!(r19_an_account_manager_cannot_remove_the_passkey_of_an_account_that_holds_more);
async fn r19_an_account_manager_cannot_remove_the_passkey_of_an_account_that_holds_more(backend: TestBackend) {
    use countersign_core::policy::Completion;
    use countersign_core::profile::ProfileType;
    let setup = Setup::only(&[(ProfileType::App, 1, Completion::Requester)]);
    with_app(backend, setup, |app| async move {
        // mallory may manage accounts, and nothing else; alice (an Administrator, no approver)
        // holds a passkey.
        let account = json!({"username": "mallory", "displayName": "mallory", "kind": "human", "password": PASSWORD});
        let (_, mallory) = app.post(&app.admin, "/api/v1/accounts", account).await;
        let (_, role) = app
            .post(
                &app.admin,
                "/api/v1/roles",
                json!({"displayName": "Account managers", "permissions": ["accounts.read", "accounts.write"]}),
            )
            .await;
        let (_, group) = app.post(&app.admin, "/api/v1/groups", json!({"displayName": "Account managers"})).await;
        let group_id = group["id"].as_str().unwrap();
        let (s, _) = app
            .put(&app.admin, &format!("/api/v1/groups/{group_id}/members"), json!({"members": [mallory["id"]]}))
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, assigned) = app
            .post(&app.admin, "/api/v1/roleAssignments", json!({"roleId": role["id"], "groupIds": [group_id]}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{assigned}");
        let passkey = give_passkey(&app, &app.alice, &SoftKey::new(31)).await;

        let mallory = Session::first_sign_in(&app, "mallory").await;
        let path = format!("/api/v1/accounts/{}/passkeys/{passkey}", app.alice.id);
        let (status, body) = mallory.call(reqwest::Method::DELETE, &path, json!({})).await;
        assert_problem(status, &body, 403, "would_escalate");
        let (_, list) = app.get(&app.alice, "/api/v1/me/passkeys").await;
        assert_eq!(list["value"].as_array().unwrap().len(), 1, "untouched: {list}");
        // An Administrator holds every permission alice does, and alice is no approver: applied.
        let (status, body) = app.call(&app.admin, reqwest::Method::DELETE, &path, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (_, list) = app.get(&app.alice, "/api/v1/me/passkeys").await;
        assert!(list["value"].as_array().unwrap().is_empty(), "{list}");
    })
    .await;
}
