//! Single sign-on (issue 17) against a real OpenID provider: `oidc-provider` (OpenID Certified),
//! run with the machine's Node.js from `tests/oidc/provider.mjs`, the package installed outside
//! the clone (`COUNTERSIGN_OIDC_NODE_MODULES`, default `/work/.npm-oidc`; `.ci/run` installs it
//! from `tests/oidc/package-lock.json`). Without node or the package each test prints one
//! `skipped:` line; under `COUNTERSIGN_REQUIRE_ALL_TESTS=1` it fails instead.
//!
//! A reqwest client with a cookie store plays the browser: it follows every redirect by hand
//! and signs in on the provider's development login page.

use crate::harness::*;
use crate::idp::Idp;
use countersign_core::policy::Completion;
use countersign_core::profile::ProfileType;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn location(response: &reqwest::Response) -> String {
    let to = response.headers().get("location").unwrap().to_str().unwrap();
    response.url().join(to).unwrap().to_string()
}

/// Follows redirects from `url` as a browser would, signing in at the provider's login page as
/// `login`, until the provider sends the browser back to Countersign's callback; returns that
/// callback URL (not yet visited).
async fn through_provider(client: &reqwest::Client, url: &str, login: &str) -> String {
    let mut url = url.to_owned();
    for _ in 0..20 {
        if url.contains("/sso/test/callback") {
            return url;
        }
        let response = client.get(&url).send().await.unwrap();
        if response.status().is_redirection() {
            url = location(&response);
            continue;
        }
        let at = response.url().clone();
        let page = response.text().await.unwrap();
        assert!(at.path().starts_with("/interaction/"), "an unexpected page at {at}: {page}");
        let prompt = if page.contains(r#"value="consent""#) { "consent" } else { "login" };
        let posted = client
            .post(at.as_str())
            .form(&[("prompt", prompt), ("login", login), ("password", "anything")])
            .send()
            .await
            .unwrap();
        assert!(posted.status().is_redirection(), "the provider's {prompt} form: {}", posted.status());
        url = location(&posted);
    }
    panic!("too many redirects");
}

/// Starts a sign-in at Countersign and returns the callback URL the provider sends back.
async fn start_sign_in(app: &TestApp, client: &reqwest::Client, login: &str) -> String {
    through_provider(client, &format!("{}/sso/test/start?next=/requests", app.base), login).await
}

/// Visits the callback: `(status, page)`.
async fn finish(client: &reqwest::Client, callback: &str) -> (StatusCode, String) {
    let response = client.get(callback).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// A whole sign-in as `login`; the account it signed in as (`GET /api/v1/me` with the new
/// session), and the callback page.
async fn sign_in(app: &TestApp, login: &str) -> (Value, String) {
    let client = browser();
    let callback = start_sign_in(app, &client, login).await;
    let (status, page) = finish(&client, &callback).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(r#"http-equiv="refresh" content="0;url=/requests""#), "{page}");
    let me: Value = client.get(format!("{}/api/v1/me", app.base)).send().await.unwrap().json().await.unwrap();
    (me["account"].clone(), page)
}

async fn members(app: &TestApp, group: &str) -> Vec<String> {
    let (status, body) = app.get(&app.admin, &format!("/api/v1/groups/{group}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut ids: Vec<String> = body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().or(m.as_str()).unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// The open request for `object`, as the admin sees it.
async fn open_request(app: &TestApp, object: &str) -> Option<Value> {
    let (status, body) = app.get(&app.admin, "/api/v1/requests?view=all").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["objectId"] == object && (r["status"] == "needsApproval" || r["status"] == "approved"))
        .cloned()
}

fn erin(groups: &[&str]) -> Value {
    json!({"email": "erin@example.com", "email_verified": true, "name": "Erin Example",
           "preferred_username": "erin", "groups": groups})
}

fn accounts(erin_groups: &[&str]) -> Value {
    json!({
        "erin-subject": erin(erin_groups),
        "alice-subject": {"email": "alice@example.com", "preferred_username": "alice.idp", "name": "Alice at the IdP"},
        // Claims bob's username and e-mail address: never matched to bob's account.
        "mallory-subject": {"email": "bob@example.com", "email_verified": true, "preferred_username": "bob", "name": "Not Bob"},
    })
}

/// First sign-in creates the account (as the provider, through the gate) and links it; later
/// sign-ins reuse it; the claim mapping adds a plain group at once and holds membership of the
/// approver group as a request (R9) that takes effect only once approved and completed; a claim
/// gone removes; an identity claiming another's username is not given that account.
async fn sign_in_creates_links_and_maps_groups(backend: TestBackend) {
    let Some(idp) =
        Idp::start("127.0.0.1", "sso::sign_in_creates_links_and_maps_groups", &accounts(&["cs-ops", "cs-approvers"]))
    else {
        return;
    };
    let setup = Setup::only(&[(ProfileType::OperationApprovalPolicy, 1, Completion::Requester)]);
    let provider = idp.provider(true, &[("cs-ops", "Empty"), ("cs-approvers", "Approvers")]);
    with_configured_app(
        backend,
        setup,
        |c| c.oidc_providers = vec![provider],
        |app| async move {
            // The sign-in page offers the provider.
            let login = reqwest::get(format!("{}/login", app.base)).await.unwrap().text().await.unwrap();
            assert!(
                login.contains("Sign in with Test IdP") && login.contains(r#"href="/sso/test/start?next=/""#),
                "{login}"
            );

            let (me, page) = sign_in(&app, "erin-subject").await;
            assert_eq!(me["username"], "erin", "{me}");
            assert_eq!(me["displayName"], "Erin Example");
            let erin_id = me["id"].as_str().unwrap().to_owned();
            let identity = app.store.sso_identity(&idp.issuer, "erin-subject").await.unwrap().expect("linked");
            assert_eq!((identity.account_id.as_str(), identity.provider_id.as_str()), (erin_id.as_str(), "test"));

            // A plain group: applied at once. The approver group: held (R9), not a member.
            assert!(members(&app, &app.empty_group).await.contains(&erin_id), "{page}");
            assert!(!members(&app, &app.approvers_group).await.contains(&erin_id));
            let held = open_request(&app, &app.approvers_group).await.expect("a request for the approver group");
            assert_eq!(held["status"], "needsApproval");
            assert_eq!(held["requestedBy"]["id"], "sso:test", "{held}");
            assert!(held["justification"].as_str().unwrap().contains("'cs-approvers' for erin"), "{held}");
            // Her sign-in drove it: she controls the request (R16), so it is never hers to approve.
            let stored = app.store.request(held["id"].as_str().unwrap()).await.unwrap();
            assert_eq!(stored.requester_controllers, vec![erin_id.clone()], "{held}");
            assert!(page.contains("Membership of Approvers needs approval"), "{page}");
            assert_eq!(app.audit_actions("ssoIdentityLinked", &erin_id).await, 1);

            // Again: the same account, nothing new to add; the request stays open (R4).
            let (again, page) = sign_in(&app, "erin-subject").await;
            assert_eq!(again["id"], erin_id.as_str());
            assert!(page.contains("has an open request"), "{page}");
            assert!(!members(&app, &app.approvers_group).await.contains(&erin_id));
            assert_eq!(app.store.sso_identities_of(&erin_id).await.unwrap().len(), 1);

            // bob approves; erin is still not a member until the change is completed, which the
            // provider does at her next sign-in. Its page names the provider as the requester.
            let request_id = held["id"].as_str().unwrap().to_owned();
            let bob = browser();
            app.web_sign_in(&bob, "bob", PASSWORD).await;
            let review = bob.get(format!("{}/requests/{request_id}", app.base)).send().await.unwrap();
            assert_eq!(review.status(), StatusCode::OK);
            let review = review.text().await.unwrap();
            assert!(review.contains("Single sign-on (Test IdP)") && review.contains("erin"), "{review}");
            let approved = app.approve(&app.bob, &request_id).await;
            assert_eq!(approved["status"], "approved", "{approved}");
            assert!(!members(&app, &app.approvers_group).await.contains(&erin_id));
            let (_, page) = sign_in(&app, "erin-subject").await;
            assert!(page.contains("is applied"), "{page}");
            assert!(members(&app, &app.approvers_group).await.contains(&erin_id));
            let (_, done) = app.get(&app.admin, &format!("/api/v1/requests/{request_id}")).await;
            assert_eq!(done["status"], "completed", "{done}");

            // The provider drops cs-ops: erin leaves Empty at her next sign-in.
            idp.set_accounts(&accounts(&["cs-approvers"]));
            let (_, page) = sign_in(&app, "erin-subject").await;
            assert!(page.contains("Removed from Empty"), "{page}");
            assert!(!members(&app, &app.empty_group).await.contains(&erin_id));

            // An identity whose username and e-mail address are bob's is not bob (no takeover by a
            // matching claim) and gets no account.
            let client = browser();
            let callback = start_sign_in(&app, &client, "mallory-subject").await;
            let (status, page) = finish(&client, &callback).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
            assert!(page.contains("sso_not_linked"), "{page}");
            assert!(app.store.sso_identity(&idp.issuer, "mallory-subject").await.unwrap().is_none());
            let me = client.get(format!("{}/api/v1/me", app.base)).send().await.unwrap();
            assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
        },
    )
    .await;
}
backend_tests!(sign_in_creates_links_and_maps_groups);

/// A signed-in person links an identity to their own account; then that identity signs in as
/// them. Without `create_accounts`, an unlinked identity is refused.
async fn a_person_links_an_identity_to_their_own_account(backend: TestBackend) {
    let Some(idp) = Idp::start("127.0.0.1", "sso::a_person_links_an_identity_to_their_own_account", &accounts(&[]))
    else {
        return;
    };
    let provider = idp.provider(false, &[]);
    with_configured_app(
        backend,
        Setup::protected(),
        |c| c.oidc_providers = vec![provider],
        |app| async move {
            // Not linked, and accounts are not created: refused, audited.
            let client = browser();
            let callback = start_sign_in(&app, &client, "alice-subject").await;
            let (status, page) = finish(&client, &callback).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
            assert!(page.contains("sso_not_linked") && page.contains("not linked to an account"), "{page}");

            // alice signs in with her password and links the identity from My account.
            let client = browser();
            let signed_in = app.web_sign_in(&client, "alice", PASSWORD).await;
            assert!(signed_in.status().is_redirection());
            let account = client.get(format!("{}/account", app.base)).send().await.unwrap().text().await.unwrap();
            assert!(account.contains("No identity is linked"), "{account}");
            let csrf =
                account.split(r#"name="csrf" value=""#).nth(1).and_then(|r| r.split('"').next()).unwrap().to_owned();
            // The link form is a CSRF-checked form like every other.
            let forged = client
                .post(format!("{}/account/sso/test/link", app.base))
                .form(&[("csrf", "forged")])
                .send()
                .await
                .unwrap();
            assert_eq!(forged.status(), StatusCode::FORBIDDEN);
            // A session alone is not enough: the person confirms their password first.
            let wrong = client
                .post(format!("{}/account/sso/test/link", app.base))
                .form(&[("csrf", csrf.as_str()), ("password", "not alice's password")])
                .send()
                .await
                .unwrap();
            assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
            assert!(wrong.text().await.unwrap().contains("wrong_password"));
            let onward = client
                .post(format!("{}/account/sso/test/link", app.base))
                .form(&[("csrf", csrf.as_str()), ("password", PASSWORD)])
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let to = onward.split(r#"id="continue" href=""#).nth(1).and_then(|r| r.split('"').next()).unwrap();
            let to = to.replace("&amp;", "&");
            let callback = through_provider(&client, &to, "alice-subject").await;
            let (status, page) = finish(&client, &callback).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            assert!(page.contains("now linked to your account"), "{page}");
            let account = client.get(format!("{}/account", app.base)).send().await.unwrap().text().await.unwrap();
            assert!(account.contains("alice@example.com"), "{account}");

            // Now the identity signs in as alice.
            let (me, _) = sign_in(&app, "alice-subject").await;
            assert_eq!(me["id"], app.alice.id.as_str(), "{me}");
            // The API lists it for alice (bob has none).
            let (status, mine) = app.get(&app.alice, "/api/v1/me/identities").await;
            assert_eq!(status, StatusCode::OK, "{mine}");
            assert_eq!(mine["value"][0]["subject"], "alice-subject", "{mine}");
            assert_eq!(mine["value"][0]["provider"], "test");
            let identity_id = mine["value"][0]["id"].as_str().unwrap().to_owned();
            let (_, bobs) = app.get(&app.bob, "/api/v1/me/identities").await;
            assert_eq!(bobs["value"], json!([]));
            // bob cannot unlink alice's identity.
            let (status, _) =
                app.call(&app.bob, Method::DELETE, &format!("/api/v1/me/identities/{identity_id}"), None).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            // bob cannot link the same identity to his account: it is alice's.
            let client = browser();
            app.web_sign_in(&client, "bob", PASSWORD).await;
            let account = client.get(format!("{}/account", app.base)).send().await.unwrap().text().await.unwrap();
            let csrf =
                account.split(r#"name="csrf" value=""#).nth(1).and_then(|r| r.split('"').next()).unwrap().to_owned();
            let onward = client
                .post(format!("{}/account/sso/test/link", app.base))
                .form(&[("csrf", csrf.as_str()), ("password", PASSWORD)])
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let to = onward.split(r#"id="continue" href=""#).nth(1).and_then(|r| r.split('"').next()).unwrap();
            let callback = through_provider(&client, &to.replace("&amp;", "&"), "alice-subject").await;
            let (status, page) = finish(&client, &callback).await;
            assert_eq!(status, StatusCode::CONFLICT, "{page}");
            assert!(page.contains("sso_identity_taken"), "{page}");

            // alice unlinks it; it no longer signs in.
            let (status, _) =
                app.call(&app.alice, Method::DELETE, &format!("/api/v1/me/identities/{identity_id}"), None).await;
            assert_eq!(status, StatusCode::NO_CONTENT);
            let client = browser();
            let callback = start_sign_in(&app, &client, "alice-subject").await;
            let (status, page) = finish(&client, &callback).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
            assert_eq!(app.audit_actions("ssoIdentityUnlinked", &app.alice.id).await, 1);
            assert_eq!(app.audit_actions("ssoIdentityLinked", &app.alice.id).await, 1);
        },
    )
    .await;
}
backend_tests!(a_person_links_an_identity_to_their_own_account);

/// The return from the provider is refused when its state is forged, used twice, from another
/// browser, or when the ID token's nonce is not this sign-in's.
async fn a_forged_replayed_or_foreign_return_is_refused(backend: TestBackend) {
    let Some(idp) = Idp::start("127.0.0.1", "sso::a_forged_replayed_or_foreign_return_is_refused", &accounts(&[]))
    else {
        return;
    };
    let provider = idp.provider(true, &[]);
    with_configured_app(
        backend,
        Setup::protected(),
        |c| c.oidc_providers = vec![provider],
        |app| async move {
            let refused = |status: StatusCode, page: &str| {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{page}");
                assert!(page.contains("sso_failed"), "{page}");
            };
            // A state nobody issued.
            let client = browser();
            let (status, page) = finish(&client, &format!("{}/sso/test/callback?code=x&state=forged", app.base)).await;
            refused(status, &page);

            // A real return, finished in another browser (a login CSRF: the attacker's code and
            // state fed to the victim): refused, and the state is spent.
            let attacker = browser();
            let callback = start_sign_in(&app, &attacker, "erin-subject").await;
            let (status, page) = finish(&browser(), &callback).await;
            refused(status, &page);
            assert!(page.contains("another browser"), "{page}");
            let (status, page) = finish(&attacker, &callback).await;
            refused(status, &page);

            // A real return used twice: the second is refused.
            let client = browser();
            let callback = start_sign_in(&app, &client, "erin-subject").await;
            let (status, page) = finish(&client, &callback).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let (status, page) = finish(&client, &callback).await;
            refused(status, &page);

            // The ID token carries the nonce of the sign-in the provider saw; when the sign-in
            // expects another, the token is refused.
            let client = browser();
            let callback = start_sign_in(&app, &client, "erin-subject").await;
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&app.database_url).await.unwrap();
            sqlx::query("UPDATE sso_logins SET nonce = 'not the nonce the provider saw'").execute(&pool).await.unwrap();
            pool.close().await;
            let (status, page) = finish(&client, &callback).await;
            refused(status, &page);

            // A sign-in left too long at the provider has expired (the server's clock).
            let client = browser();
            let callback = start_sign_in(&app, &client, "erin-subject").await;
            app.clock.advance(countersign_server::sso::LOGIN_TTL + 1);
            let (status, page) = finish(&client, &callback).await;
            refused(status, &page);

            // Each refusal is audited with the provider.
            let (_, audit) = app.get(&app.admin, "/api/v1/audit?action=signInFailed").await;
            let failures = audit["value"].as_array().unwrap();
            assert!(failures.len() >= 6, "{audit}");
            assert!(failures.iter().all(|f| f["details"]["provider"] == "test"), "{audit}");
        },
    )
    .await;
}
backend_tests!(a_forged_replayed_or_foreign_return_is_refused);

/// R16: an account created by its first sign-in is controlled by nobody here; an identity
/// linked in a session another account controls (a password the admin set) is controlled by
/// that account, so the link does not launder the takeover.
async fn an_identity_carries_the_control_of_the_session_that_linked_it(backend: TestBackend) {
    let Some(idp) =
        Idp::start("127.0.0.1", "sso::an_identity_carries_the_control_of_the_session_that_linked_it", &accounts(&[]))
    else {
        return;
    };
    let provider = idp.provider(true, &[]);
    with_configured_app(
        backend,
        Setup::protected(),
        |c| c.oidc_providers = vec![provider],
        |app| async move {
            let (erin, _) = sign_in(&app, "erin-subject").await;
            let erin_id = erin["id"].as_str().unwrap();
            let (_, account) = app.get(&app.admin, &format!("/api/v1/accounts/{erin_id}")).await;
            assert_eq!(account["controlledBy"], json!([]), "{account}");
            assert_eq!(account["identities"][0]["subject"], "erin-subject", "{account}");
            let linked = app.store.sso_identities_of(erin_id).await.unwrap();
            assert!(linked[0].controllers.is_empty());

            // The admin makes frank with a password; frank (still on it) links an identity.
            let (status, body) = app
                .post(
                    &app.admin,
                    "/api/v1/accounts",
                    json!({"username": "frank", "displayName": "Frank", "kind": "human", "password": PASSWORD}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            let frank = body["id"].as_str().unwrap().to_owned();
            Session::first_sign_in(&app, "frank").await;
            let client = browser();
            app.web_sign_in(&client, "frank", "frank chose this one").await;
            let page = client.get(format!("{}/account", app.base)).send().await.unwrap().text().await.unwrap();
            let csrf =
                page.split(r#"name="csrf" value=""#).nth(1).and_then(|r| r.split('"').next()).unwrap().to_owned();
            let onward = client
                .post(format!("{}/account/sso/test/link", app.base))
                .form(&[("csrf", csrf.as_str()), ("password", "frank chose this one")])
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let to = onward.split(r#"id="continue" href=""#).nth(1).and_then(|r| r.split('"').next()).unwrap();
            let callback = through_provider(&client, &to.replace("&amp;", "&"), "alice-subject").await;
            let (status, page) = finish(&client, &callback).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let linked = app.store.sso_identities_of(&frank).await.unwrap();
            assert_eq!(linked[0].controllers, std::slice::from_ref(&app.admin.id));
            // A session opened with the identity is the admin's too.
            let (me, _) = sign_in(&app, "alice-subject").await;
            assert_eq!(me["id"], frank.as_str());
            let (_, account) = app.get(&app.admin, &format!("/api/v1/accounts/{frank}")).await;
            let hows: Vec<&str> =
                account["controlledBy"].as_array().unwrap().iter().map(|c| c["how"].as_str().unwrap()).collect();
            assert!(account["controlledBy"][0]["id"] == app.admin.id.as_str(), "{account}");
            assert!(!hows.is_empty(), "{account}");
        },
    )
    .await;
}
backend_tests!(an_identity_carries_the_control_of_the_session_that_linked_it);
