//! Issue 15, findings 6 to 9, written as the attacks: sessions and event streams that outlive a
//! password change or a sign-out, a forged Host header steering Graph's links, an anonymous
//! `/metrics`, and notification channels aimed inside the server's own network.

use crate::harness::*;
use countersign_core::policy::Completion;
use countersign_core::profile::{ProfileType, ResourceType};
use countersign_core::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn apps_only() -> Setup {
    Setup::only(&[(ProfileType::App, 1, Completion::Requester)])
}

async fn signed_in(app: &TestApp, username: &str, password: &str) -> Session {
    let (session, status, body) = Session::sign_in_with(app, username, password).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    session
}

async fn me(session: &Session) -> StatusCode {
    session.request(Method::GET, "/api/v1/me").send().await.unwrap().status()
}

/// The details of the newest audit entry with this action on `account`.
async fn last_audit(app: &TestApp, action: &str, account: &str) -> Value {
    let (status, body) = app.get(&app.admin, &format!("/api/v1/audit?action={action}&target={account}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["value"].as_array().unwrap().first().cloned().unwrap_or_default()
}

backend_tests!(changing_your_password_ends_your_other_sessions_and_on_request_your_tokens);
async fn changing_your_password_ends_your_other_sessions_and_on_request_your_tokens(backend: TestBackend) {
    with_app(backend, apps_only(), |app| async move {
        // Someone who learnt alice's password signed in elsewhere; alice changes it.
        let (mine, theirs) = (signed_in(&app, "alice", PASSWORD).await, signed_in(&app, "alice", PASSWORD).await);
        let (status, body) = mine
            .call(
                Method::POST,
                "/api/v1/me/password",
                json!({"currentPassword": PASSWORD, "newPassword": "alice's second password"}),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        assert_eq!(me(&mine).await, StatusCode::OK, "the session that changed it stays");
        assert_eq!(me(&theirs).await, StatusCode::UNAUTHORIZED, "every other session ends");
        assert_eq!(app.get(&app.alice, "/api/v1/me").await.0, StatusCode::OK, "tokens stay unless asked");
        let entry = last_audit(&app, "passwordChanged", &app.alice.id).await;
        assert_eq!(entry["details"]["otherSessionsEnded"], 1, "R13: {entry}");
        assert_eq!(entry["details"]["tokensRevoked"], 0, "{entry}");

        // Again, revoking the tokens too.
        let theirs = signed_in(&app, "alice", "alice's second password").await;
        let (status, body) = mine
            .call(
                Method::POST,
                "/api/v1/me/password",
                json!({"currentPassword": "alice's second password", "newPassword": "alice's third password", "revokeTokens": true}),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        assert_eq!(me(&mine).await, StatusCode::OK);
        assert_eq!(me(&theirs).await, StatusCode::UNAUTHORIZED);
        assert_eq!(app.get(&app.alice, "/api/v1/me").await.0, StatusCode::UNAUTHORIZED, "the token is revoked");
        let entry = last_audit(&app, "passwordChanged", &app.alice.id).await;
        assert_eq!(entry["details"]["tokensRevoked"], 1, "{entry}");

        // Changed with a token (no session of its own): every session ends.
        let (s, created) = mine.call(Method::POST, "/api/v1/tokens", json!({"displayName": "ci"})).await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        let token = User { id: app.alice.id.clone(), token: created["token"].as_str().unwrap().to_owned() };
        let (status, body) = app
            .post(
                &token,
                "/api/v1/me/password",
                json!({"currentPassword": "alice's third password", "newPassword": "alice's fourth password"}),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        assert_eq!(me(&mine).await, StatusCode::UNAUTHORIZED);
        assert_eq!(app.get(&token, "/api/v1/me").await.0, StatusCode::OK);
    })
    .await;
}

backend_tests!(the_web_password_form_ends_other_sessions_and_revokes_tokens_when_ticked);
async fn the_web_password_form_ends_other_sessions_and_revokes_tokens_when_ticked(backend: TestBackend) {
    with_app(backend, apps_only(), |app| async move {
        let (mine, theirs) = (signed_in(&app, "alice", PASSWORD).await, signed_in(&app, "alice", PASSWORD).await);
        let page = mine.request(Method::GET, "/account").send().await.unwrap().text().await.unwrap();
        assert!(page.contains("name=\"revoke_tokens\""), "the form offers the choice");
        let csrf = page.split("name=\"csrf\" value=\"").nth(1).and_then(|r| r.split('"').next()).unwrap().to_owned();
        let response = mine
            .request(Method::POST, "/account/password")
            .form(&[
                ("csrf", csrf.as_str()),
                ("current", PASSWORD),
                ("new", "alice's web password"),
                ("revoke_tokens", "on"),
            ])
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success() || response.status().is_redirection(), "{}", response.status());
        assert_eq!(me(&mine).await, StatusCode::OK);
        assert_eq!(me(&theirs).await, StatusCode::UNAUTHORIZED);
        assert_eq!(app.get(&app.alice, "/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    })
    .await;
}

backend_tests!(an_administrators_reset_ends_every_session_and_token_of_the_account);
async fn an_administrators_reset_ends_every_session_and_token_of_the_account(backend: TestBackend) {
    with_app(backend, apps_only(), |app| async move {
        let alice = signed_in(&app, "alice", PASSWORD).await;
        let path = format!("/api/v1/accounts/{}", app.alice.id);
        let (status, body) =
            app.call(&app.admin, Method::PATCH, &path, Some(json!({"password": "reset by the admin"}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(me(&alice).await, StatusCode::UNAUTHORIZED);
        assert_eq!(app.get(&app.alice, "/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    })
    .await;
}

/// Reads a stream until it ends; `None` if it is still open after `wait`.
async fn ends_within(mut response: reqwest::Response, wait: Duration) -> Option<String> {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Err(_) => return None,
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(_) => return Some(seen),
        }
    }
}

backend_tests!(an_event_stream_ends_when_its_session_or_token_does);
async fn an_event_stream_ends_when_its_session_or_token_does(backend: TestBackend) {
    with_app(backend, apps_only(), |app| async move {
        // A session: signed out elsewhere (the same cookie, another request).
        let session = signed_in(&app, "bob", PASSWORD).await;
        let stream = session.request(Method::GET, "/api/v1/events").send().await.unwrap();
        assert_eq!(stream.status(), StatusCode::OK);
        let (s, _) = session.call(Method::POST, "/api/v1/auth/logout", json!({})).await;
        assert!(s.is_success(), "{s}");
        assert!(ends_within(stream, Duration::from_secs(5)).await.is_some(), "the stream ends with its session");

        // A token: revoked.
        let session = signed_in(&app, "bob", PASSWORD).await;
        let (s, created) = session.call(Method::POST, "/api/v1/tokens", json!({"displayName": "watcher"})).await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        let token = created["token"].as_str().unwrap().to_owned();
        let open = || app.http.get(format!("{}/api/v1/events", app.base)).bearer_auth(&token).send();
        let stream = open().await.unwrap();
        assert_eq!(stream.status(), StatusCode::OK);
        let still = open().await.unwrap();
        assert!(ends_within(still, Duration::from_millis(800)).await.is_none(), "a live credential keeps its stream");
        let id = created["id"].as_str().unwrap();
        let (s, body) = session.call(Method::DELETE, &format!("/api/v1/tokens/{id}"), json!({})).await;
        assert!(s.is_success(), "{s} {body}");
        assert!(ends_within(stream, Duration::from_secs(5)).await.is_some(), "the stream ends with its token");

        // A token: expired.
        let expires = countersign_server::time::format(app.clock.now() + 60_000);
        let (s, created) =
            session.call(Method::POST, "/api/v1/tokens", json!({"displayName": "brief", "expiresAt": expires})).await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        let stream = app
            .http
            .get(format!("{}/api/v1/events", app.base))
            .bearer_auth(created["token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), StatusCode::OK);
        app.clock.advance(61_000);
        assert!(ends_within(stream, Duration::from_secs(5)).await.is_some(), "the stream ends when its token expires");
    })
    .await;
}

backend_tests!(graph_links_come_from_public_url_never_from_the_host_header);
async fn graph_links_come_from_public_url_never_from_the_host_header(backend: TestBackend) {
    let public = "https://countersign.example.test";
    let configure = |c: &mut countersign_server::ServerConfig| {
        c.public_url = format!("{public}/");
        c.trust_forwarded_for = true;
    };
    with_configured_app(backend, Setup::protected(), configure, |app| async move {
        for (resource_type, version) in [(ResourceType::App, 2), (ResourceType::Script, 2)] {
            let id = app.samples.iter().find(|(t, _)| *t == resource_type).unwrap().1.clone();
            let (status, body) = app
            .put(
                &app.alice,
                &format!("/api/v1/resources/{resource_type}/{id}"),
                json!({"name": format!("sample {resource_type}"), "document": {"v": version}, "justification": "j"}),
            )
            .await;
            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        }
        let forged = |request: reqwest::RequestBuilder, user: &User| {
            request
                .bearer_auth(&user.token)
                .header("host", "evil.example")
                .header("x-forwarded-host", "evil.example")
                .header("x-forwarded-proto", "gopher")
        };
        let page: Value = forged(
            app.http.get(format!("{}/beta/deviceManagement/operationApprovalRequests?$top=1", app.base)),
            &app.bob,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let (context, next) = (page["@odata.context"].as_str().unwrap(), page["@odata.nextLink"].as_str().unwrap());
        assert!(context.starts_with(&format!("{public}/beta/$metadata#")), "{context}");
        assert!(next.starts_with(&format!("{public}/beta/deviceManagement/operationApprovalRequests?")), "{next}");
        assert!(!page.to_string().contains("evil") && !page.to_string().contains("gopher"), "{page}");

        let policy =
            app.store.policies().await.unwrap().into_iter().find(|p| p.profile_type == ProfileType::Script).unwrap();
        let response = forged(
            app.http.patch(format!("{}/beta/deviceManagement/operationApprovalPolicies/{}", app.base, policy.id)),
            &app.alice,
        )
        .header("X-Justification", "rename")
        .json(&json!({"displayName": "Scripts, renamed"}))
        .send()
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let location = response.headers()["location"].to_str().unwrap();
        assert!(
            location.starts_with(&format!("{public}/beta/deviceManagement/operationApprovalRequests/")),
            "{location}"
        );
    })
    .await;
}

backend_tests!(metrics_need_the_metrics_token_or_their_own_listener);
async fn metrics_need_the_metrics_token_or_their_own_listener(backend: TestBackend) {
    // No token set: the main listener does not serve /metrics at all.
    with_app(backend, apps_only(), |app| async move {
        let anonymous = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::NOT_FOUND);
        let with_api_token = app.http.get(format!("{}/metrics", app.base)).bearer_auth(&app.admin.token).send().await;
        assert_eq!(with_api_token.unwrap().status(), StatusCode::NOT_FOUND, "an API token is not a metrics token");

        // Its own listener serves it (and nothing else), as a Prometheus scrape.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics_base = format!("http://{}", listener.local_addr().unwrap());
        let state = countersign_server::AppState::new(
            app.store.clone(),
            app.clock.clone(),
            countersign_server::ServerConfig::default(),
        );
        tokio::spawn(countersign_server::serve_metrics(listener, state, std::future::pending()));
        let scraped = app.http.get(format!("{metrics_base}/metrics")).send().await.unwrap();
        assert_eq!(scraped.status(), StatusCode::OK);
        assert!(scraped.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
        assert!(scraped.text().await.unwrap().contains("countersign_decision_latency_seconds"));
        let other = app.http.get(format!("{metrics_base}/api/v1/me")).bearer_auth(&app.admin.token).send().await;
        assert_eq!(other.unwrap().status(), StatusCode::NOT_FOUND, "the metrics listener serves only /metrics");
    })
    .await;

    // A token set: the main listener serves /metrics to whoever presents it.
    let token = |c: &mut countersign_server::ServerConfig| c.metrics_token = Some("scrape-me-please".to_owned().into());
    with_configured_app(backend, apps_only(), token, |app| async move {
        let get = |token: Option<&str>| {
            let request = app.http.get(format!("{}/metrics", app.base));
            match token {
                Some(token) => request.bearer_auth(token),
                None => request,
            }
            .send()
        };
        let refused = get(None).await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        let body: Value = refused.json().await.unwrap();
        assert_problem(StatusCode::UNAUTHORIZED, &body, 401, "unauthenticated");
        assert_eq!(get(Some("scrape-me-pleas")).await.unwrap().status(), StatusCode::UNAUTHORIZED);
        assert_eq!(get(Some(&app.admin.token)).await.unwrap().status(), StatusCode::UNAUTHORIZED);
        let scraped = get(Some("scrape-me-please")).await.unwrap();
        assert_eq!(scraped.status(), StatusCode::OK);
        assert!(scraped.text().await.unwrap().contains("countersign_decision_latency_seconds"));
    })
    .await;
}

/// A receiver on loopback that counts what reaches it, answering `status` (and `location`).
async fn counting_receiver(status: u16, location: Option<String>) -> (u16, Arc<Mutex<usize>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(Mutex::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let (counted, location) = (counted.clone(), location.clone());
        async move {
            *counted.lock().unwrap() += 1;
            let mut response = axum::http::Response::new(axum::body::Body::from("internal secret body"));
            *response.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
            if let Some(location) = location {
                response.headers_mut().insert("location", location.parse().unwrap());
            }
            response
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, hits)
}

backend_tests!(channel_urls_to_internal_addresses_are_refused_unless_allowed);
async fn channel_urls_to_internal_addresses_are_refused_unless_allowed(backend: TestBackend) {
    let strict = |c: &mut countersign_server::ServerConfig| c.notify_allow_networks = vec![];
    with_configured_app(backend, apps_only(), strict, |app| async move {
    let (port, hits) = counting_receiver(200, None).await;
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://localhost:{port}/hook"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.5/hook".to_owned(),
        "http://192.168.1.1/hook".to_owned(),
        "http://100.64.0.1/hook".to_owned(),
        "http://0.0.0.0/hook".to_owned(),
        "http://[::1]/hook".to_owned(),
        "http://[fe80::1]/hook".to_owned(),
        "http://[fd00::1]/hook".to_owned(),
        "http://[::ffff:127.0.0.1]/hook".to_owned(),
        "http://[::ffff:169.254.169.254]/hook".to_owned(),
        "http://2130706433/hook".to_owned(),
    ] {
        for kind in ["webhook", "slack", "teams"] {
            let (status, body) = app
                .post(
                    &app.admin,
                    "/api/v1/notificationChannels",
                    json!({"displayName": "Inside", "kind": kind, "url": url, "signingSecret": "a-long-webhook-signing-secret"}),
                )
                .await;
            assert_problem(status, &body, 400, "address_not_allowed");
            assert!(body["detail"].as_str().unwrap().contains("notify_allow_networks"), "{body}");
        }
    }
    let (status, _) = app.get(&app.admin, "/api/v1/notificationChannels").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(*hits.lock().unwrap(), 0);
    })
    .await;
}

backend_tests!(sending_checks_addresses_again_and_follows_no_redirect);
async fn sending_checks_addresses_again_and_follows_no_redirect(backend: TestBackend) {
    // Saved while loopback was allowed (the harness allows it); sent by a server that does not.
    let quiet = |c: &mut countersign_server::ServerConfig| c.notify_interval = Duration::from_secs(3600);
    with_configured_app(backend, apps_only(), quiet, |app| async move {
    let (port, hits) = counting_receiver(200, None).await;
    for url in [format!("http://127.0.0.1:{port}/hook"), format!("http://localhost:{port}/hook")] {
        let (s, body) = app
            .post(
                &app.admin,
                "/api/v1/notificationChannels",
                json!({"displayName": format!("Hook {url}"), "kind": "webhook", "url": url, "signingSecret": "a-long-webhook-signing-secret"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
    }
    app.post(&app.alice, "/api/v1/resources/app", json!({"name": "VPN", "document": {}, "justification": "j"})).await;
    let strict = countersign_server::AppState::new(
        app.store.clone(),
        app.clock.clone(),
        countersign_server::ServerConfig::default(),
    );
    let client = countersign_server::outbound::client(&countersign_server::outbound::Allow::default()).unwrap();
    assert_eq!(countersign_server::notify::dispatch_once(&strict, &client).await, 2);
    assert_eq!(*hits.lock().unwrap(), 0, "nothing reached loopback");
    let (_, pending) = app.get(&app.admin, "/api/v1/notificationDeliveries?status=pending").await;
    let errors: Vec<&str> = pending["value"].as_array().unwrap().iter().filter_map(|d| d["lastError"].as_str()).collect();
    assert_eq!(errors.len(), 2, "{pending}");
    assert!(errors.iter().all(|e| e.starts_with("not sent: ") && e.contains("internal address")), "{errors:?}");

    // The resolver itself refuses a name that resolves inward (DNS rebinding cannot slip past).
    let refused = client.get(format!("http://localhost:{port}/")).send().await.unwrap_err();
    assert!(countersign_server::outbound::refused_in(&refused).is_some(), "{refused:?}");
    assert_eq!(*hits.lock().unwrap(), 0);

    // A redirect is not followed, even to an allowed address.
    let (inner_port, inner_hits) = counting_receiver(200, None).await;
    let (outer_port, outer_hits) = counting_receiver(307, Some(format!("http://127.0.0.1:{inner_port}/"))).await;
    let loopback = countersign_server::outbound::Allow::new(&["127.0.0.0/8".parse().unwrap()]);
    let allowed = countersign_server::outbound::client(&loopback).unwrap();
    let answer = allowed.post(format!("http://127.0.0.1:{outer_port}/hook")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!((*outer_hits.lock().unwrap(), *inner_hits.lock().unwrap()), (1, 0));
    })
    .await;
}

backend_tests!(readers_of_tenant_configuration_see_only_the_class_of_a_failure);
async fn readers_of_tenant_configuration_see_only_the_class_of_a_failure(backend: TestBackend) {
    with_app(backend, apps_only(), |app| async move {
        let (port, hits) = counting_receiver(503, None).await;
        let (s, body) = app
            .post(
                &app.admin,
                "/api/v1/notificationChannels",
                json!({"displayName": "SOC", "kind": "webhook", "url": format!("http://127.0.0.1:{port}/hook"), "signingSecret": "a-long-webhook-signing-secret"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        app.post(&app.alice, "/api/v1/resources/app", json!({"name": "VPN", "document": {}, "justification": "j"}))
            .await;
        for _ in 0..200 {
            if *hits.lock().unwrap() > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (_, writer) = app.get(&app.admin, "/api/v1/notificationDeliveries").await;
        let error = writer["value"][0]["lastError"].as_str().unwrap().to_owned();
        assert_eq!(error, "the receiver answered HTTP 503", "{writer}");

        // A Read Only Operator reads tenant configuration but may not change channels.
        let (s, reader) = app
            .post(&app.admin, "/api/v1/accounts", json!({"username": "auditor", "displayName": "Auditor", "kind": "service"}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{reader}");
        let reader_id = reader["id"].as_str().unwrap();
        let read_only = countersign_core::permission::BUILT_IN_ROLES
            .iter()
            .find(|r| r.display_name == "Read Only Operator")
            .unwrap()
            .id;
        let (s, group) = app.post(&app.admin, "/api/v1/groups", json!({"displayName": "Auditors"})).await;
        assert_eq!(s, StatusCode::CREATED, "{group}");
        let members = format!("/api/v1/groups/{}/members", group["id"].as_str().unwrap());
        let (s, body) = app.put(&app.admin, &members, json!({"members": [reader_id]})).await;
        assert!(s.is_success(), "{body}");
        let (s, assignment) = app
            .post(
                &app.admin,
                "/api/v1/roleAssignments",
                json!({"displayName": "Auditors", "roleId": read_only, "groupIds": [group["id"]]}),
            )
            .await;
        assert!(s.is_success(), "{assignment}");
        let auditor = User { id: reader_id.to_owned(), token: reader["token"].as_str().unwrap().to_owned() };
        let (s, seen) = app.get(&auditor, "/api/v1/notificationDeliveries").await;
        assert_eq!(s, StatusCode::OK, "{seen}");
        assert_eq!(seen["value"][0]["lastError"], "the receiver failed (5xx)", "{seen}");
        assert!(!seen.to_string().contains("503") && !seen.to_string().contains("secret body"), "{seen}");
        assert!(!writer.to_string().contains("secret body"), "no receiver body, ever: {writer}");
    })
    .await;
}
