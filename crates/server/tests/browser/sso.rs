//! Single sign-on in a real Chromium, with the provider on another site (`localhost`, while
//! Countersign is `127.0.0.1`), so that the provider's return is a cross-site navigation as in
//! life: the browser-binding cookie (`SameSite=Lax`) must come back with it, and the session
//! cookie (`SameSite=Strict`) set on that return must be sent by the next page.

use crate::harness::{Setup, TestApp};
use crate::idp::Idp;
use crate::{driver, Browser};
use countersign_store::testing::TestBackend;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erin_signs_in_with_single_sign_on_and_her_approver_membership_is_held() {
    let Some(driver) = driver().await else { return };
    let accounts = json!({"erin-subject": {"email": "erin@example.com", "email_verified": true, "name": "Erin Example",
        "preferred_username": "erin", "groups": ["cs-approvers"]}});
    let Some(idp) = Idp::start("localhost", "browser::sso", &accounts) else { return };
    let provider = idp.provider(true, &[("cs-approvers", "Approvers")]);
    let app =
        TestApp::start_with(TestBackend::Sqlite, &Setup::protected(), |c| c.oidc_providers = vec![provider]).await;
    let erin = Browser::open(&driver, &app).await;

    erin.goto("/login").await;
    erin.click("#sso-test").await;
    // The provider's own (development) sign-in page, on another site.
    erin.wait_for("input[name=login]").await;
    assert_eq!(erin.client.current_url().await.unwrap().host_str(), Some("localhost"));
    erin.fill("input[name=login]", "erin-subject").await;
    erin.fill("input[name=password]", "anything").await;
    erin.click("button[type=submit]").await;
    // Back at Countersign, signed in: the page after the return carries the session.
    erin.wait_for("header.topbar .who").await;
    let url = erin.client.current_url().await.unwrap();
    assert_eq!((url.host_str(), url.path()), (Some("127.0.0.1"), "/"), "{url}");
    assert!(erin.text("header.topbar .who").await.contains("Erin Example"));

    erin.goto("/account").await;
    erin.wait_for("#identities").await;
    assert!(erin.text("#identities").await.contains("erin@example.com"));
    assert!(erin.exists("#no-password").await, "an account made by single sign-on has no password");
    erin.screenshot("sso-account").await;

    // Her membership of the approver group is a request, not a fact (R9).
    let (_, group) = app.get(&app.admin, &format!("/api/v1/groups/{}", app.approvers_group)).await;
    assert!(!group.to_string().contains("\"erin\""), "{group}");
    let (_, requests) = app.get(&app.admin, "/api/v1/requests?view=all").await;
    let held = requests["value"].as_array().unwrap().iter().find(|r| r["objectId"] == app.approvers_group.as_str());
    assert_eq!(held.expect("a request for the approver group")["status"], "needsApproval");

    // Sign-out ends the session.
    erin.client.find(fantoccini::Locator::Css("form[action='/logout'] button")).await.unwrap().click().await.unwrap();
    erin.wait_for("#username").await;
    erin.goto("/account").await;
    assert!(erin.client.current_url().await.unwrap().path().starts_with("/login"));
    erin.close().await;
}
