//! Passkeys and step-up (issue 17, R21) in real Chromium, with chromedriver's WebDriver
//! virtual authenticator (a CTAP2 platform authenticator with resident keys and user
//! verification): register a passkey, sign in with it without a username, approve with
//! step-up; the same approval without user verification is refused; and the hand-off a bearer
//! caller (the CLI) is given is completed in the browser.

use crate::harness::{Setup, TestApp};
use crate::{driver, Browser};
use axum::http::Method;
use fantoccini::wd::WebDriverCompatibleCommand;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A raw WebDriver command of the WebAuthn extension (`/session/{id}/webauthn/…`).
#[derive(Debug)]
struct WebAuthnCommand {
    path: String,
    body: Value,
}

impl WebDriverCompatibleCommand for WebAuthnCommand {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/webauthn/{}", session_id.unwrap_or_default(), self.path))
    }

    fn method_and_body(&self, _: &url::Url) -> (Method, Option<String>) {
        (Method::POST, Some(self.body.to_string()))
    }
}

/// Adds a virtual authenticator to the browser; returns its id.
async fn add_authenticator(browser: &Browser) -> String {
    let answer = browser
        .client
        .issue_cmd(WebAuthnCommand {
            path: "authenticator".into(),
            body: json!({
                "protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
                "hasUserVerification": true, "isUserVerified": true, "automaticPresenceSimulation": true,
            }),
        })
        .await
        .expect("chromedriver's WebAuthn extension");
    answer.as_str().map(str::to_owned).unwrap_or_else(|| answer["authenticatorId"].as_str().unwrap().to_owned())
}

/// Whether the authenticator verifies the user (PIN, biometric) from now on.
async fn set_user_verified(browser: &Browser, authenticator: &str, verified: bool) {
    browser
        .client
        .issue_cmd(WebAuthnCommand {
            path: format!("authenticator/{authenticator}/uv"),
            body: json!({"isUserVerified": verified}),
        })
        .await
        .expect("set user verification");
}

/// A tenant whose public URL is `localhost` (browsers refuse WebAuthn on an IP address).
async fn localhost_tenant() -> TestApp {
    let mut app = TestApp::start_with(countersign_store::testing::TestBackend::Sqlite, &Setup::protected(), |config| {
        config.public_url = config.public_url.replace("127.0.0.1", "localhost");
    })
    .await;
    app.base = app.base.replace("127.0.0.1", "localhost");
    app
}

/// The app policy asks for a passkey on every decision (an R9 change, approved with a token:
/// the operationApprovalPolicy policy asks for none).
async fn app_policy_asks_for_passkeys(app: &TestApp) {
    let (_, list) = app.get(&app.admin, "/api/v1/accessPolicies").await;
    let policy = list["value"].as_array().unwrap().iter().find(|p| p["profileType"] == "app").unwrap().clone();
    let id = policy["id"].as_str().unwrap();
    let mut body = json!({
        "displayName": policy["displayName"], "description": policy["description"], "profileType": "app",
        "approverGroupIds": policy["approverGroupIds"], "requiredApprovals": 1, "completion": "requester",
        "requestTtl": policy["requestTtl"], "justification": "R21",
    });
    body["stepUp"] = json!("passkey");
    let (status, held) = app.put(&app.alice, &format!("/api/v1/accessPolicies/{id}"), body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    let request = held["id"].as_str().unwrap();
    app.approve(&app.carol, request).await;
    let (status, done) = app.post(&app.alice, &format!("/api/v1/requests/{request}/complete"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{done}");
}

async fn propose(app: &TestApp, version: &str) -> String {
    let target = app.samples.iter().find(|(t, _)| t.as_str() == "app").map(|(_, id)| id.clone()).unwrap();
    let (status, held) = app.update_app(&app.alice, &target, version).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    held["id"].as_str().unwrap().to_owned()
}

async fn status_of(app: &TestApp, request: &str) -> String {
    let (_, body) = app.get(&app.admin, &format!("/api/v1/requests/{request}")).await;
    body["status"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_sign_in_and_approve_with_a_passkey() {
    let Some(driver) = driver().await else { return };
    let app = localhost_tenant().await;
    let bob = Browser::open(&driver, &app).await;
    let authenticator = add_authenticator(&bob).await;

    // Register: within 5 minutes of signing in, no password is asked again.
    bob.sign_in("bob").await;
    bob.goto("/account#passkeys").await;
    assert!(bob.exists("#no-passkeys").await);
    bob.fill("#passkey-name", "Virtual key").await;
    bob.click("#add-passkey").await;
    bob.wait_for_text("Your passkey was added.").await;
    assert!(bob.text("#passkey-list").await.contains("Virtual key"));
    let (_, listed) = app.get(&app.bob, "/api/v1/me/passkeys").await;
    assert_eq!(listed["value"].as_array().unwrap().len(), 1, "{listed}");
    assert!(listed["value"][0]["publicKey"].as_str().unwrap().starts_with("es256:"), "{listed}");
    bob.screenshot("passkeys").await;

    // Sign in with it: no username typed (a discoverable credential).
    bob.client.delete_all_cookies().await.unwrap();
    bob.goto("/login").await;
    bob.click("#passkey-sign-in").await;
    bob.wait_for("header.topbar .who").await;
    assert!(bob.text("header.topbar .who").await.contains("bob"));

    // Step-up on a policy that asks for it; the policy page says which policies do.
    app_policy_asks_for_passkeys(&app).await;
    let (_, list) = app.get(&app.admin, "/api/v1/accessPolicies").await;
    for policy in list["value"].as_array().unwrap() {
        bob.goto(&format!("/policies/{}", policy["id"].as_str().unwrap())).await;
        let shown = bob.text("#step-up").await;
        let expected = if policy["profileType"] == "app" { "Passkey" } else { "None" };
        assert!(shown.starts_with(expected), "{}: {shown}", policy["profileType"]);
    }
    let request = propose(&app, "2.0").await;
    bob.goto(&format!("/requests/{request}")).await;
    bob.wait_for("#step-up-needed").await;
    bob.fill("#notes", "signed with my passkey").await;
    bob.screenshot("step-up").await;
    bob.click("#approve").await;
    bob.wait_for_text("You approved the request.").await;
    assert_eq!(status_of(&app, &request).await, "approved");
    let rp = countersign_core::step_up::RelyingParty { id: "localhost".into(), origins: vec![app.base.clone()] };
    let report = app.store.verify_step_ups(&rp).await.unwrap();
    assert_eq!((report.checked, report.failed.len()), (1, 0), "{report:?}");

    // Without user verification, the same approval is refused.
    let (status, _) = app.post(&app.alice, &format!("/api/v1/requests/{request}/complete"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let second = propose(&app, "3.0").await;
    set_user_verified(&bob, &authenticator, false).await;
    bob.goto(&format!("/requests/{second}")).await;
    bob.wait_for("#step-up-needed").await;
    bob.click("#approve").await;
    // The browser refuses to make the assertion, or the server refuses the one it made.
    let mut refused = false;
    for _ in 0..100 {
        let body = bob.body().await;
        if body.contains("did not confirm the decision") || body.contains("confirmation is refused") {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(refused, "{}", bob.body().await);
    assert_eq!(status_of(&app, &second).await, "needsApproval");

    // The hand-off: a bearer caller (what the CLI sends) is refused with a link, which the
    // approver opens in the browser and confirms there.
    set_user_verified(&bob, &authenticator, true).await;
    let (status, refused) = app.post(&app.bob, &format!("/api/v1/requests/{second}/approve"), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["code"], "step_up_required");
    let link = refused["link"].as_str().unwrap().to_owned();
    bob.client.goto(&link).await.unwrap();
    bob.wait_for("#step-up-needed").await;
    let mut focused = serde_json::Value::Null;
    for _ in 0..50 {
        focused =
            bob.client.execute("return document.activeElement && document.activeElement.id", vec![]).await.unwrap();
        if focused == "approve" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(focused, "approve", "the link brings the decision it was made for into focus");
    bob.click("#approve").await;
    bob.wait_for_text("You approved the request.").await;
    assert_eq!(status_of(&app, &second).await, "approved");
    bob.close().await;
}
