//! Sign-in, sessions, CSRF, tokens, the audit chain (R13) and the operational endpoints.

use crate::harness::*;
use countersign_store::testing::TestBackend;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn login(
    app: &TestApp,
    client: &reqwest::Client,
    username: &str,
    password: &str,
) -> (StatusCode, Value, Option<String>) {
    let response = client
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let cookie = response.headers().get("set-cookie").map(|c| c.to_str().unwrap().to_owned());
    (status, response.json().await.unwrap(), cookie)
}

backend_tests!(a_session_cookie_is_strict_and_cookie_writes_need_the_csrf_token);
async fn a_session_cookie_is_strict_and_cookie_writes_need_the_csrf_token(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let (s, body, cookie) = login(&app, &client, "alice", PASSWORD).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let cookie = cookie.unwrap();
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        assert!(body["account"].get("passwordHash").is_none() && !body.to_string().contains("argon2"));
        let csrf = body["csrfToken"].as_str().unwrap();
        let me: Value = client.get(format!("{}/api/v1/me", app.base)).send().await.unwrap().json().await.unwrap();
        assert_eq!(me["account"]["username"], "alice");
        assert!(me["permissions"].as_array().unwrap().iter().any(|p| p == "apps.write"));
        let url = format!("{}/api/v1/resources/script", app.base);
        let body = json!({"name": "s", "document": {}, "justification": "j"});
        let forged = client.post(&url).json(&body).send().await.unwrap();
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
        assert_eq!(forged.json::<Value>().await.unwrap()["code"], "csrf_failed");
        let wrong = client.post(&url).header("X-CSRF-Token", "guess").json(&body).send().await.unwrap();
        assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
        let ok = client.post(&url).header("X-CSRF-Token", csrf).json(&body).send().await.unwrap();
        assert_eq!(ok.status(), StatusCode::ACCEPTED);
        let out =
            client.post(format!("{}/api/v1/auth/logout", app.base)).header("X-CSRF-Token", csrf).send().await.unwrap();
        assert_eq!(out.status(), StatusCode::NO_CONTENT);
        let after = client.get(format!("{}/api/v1/me", app.base)).send().await.unwrap();
        assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    })
    .await;
}

backend_tests!(failed_sign_ins_are_audited_and_rate_limited);
async fn failed_sign_ins_are_audited_and_rate_limited(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let client = reqwest::Client::new();
        for _ in 0..5 {
            let (s, body, _) = login(&app, &client, "carol", "wrong password").await;
            assert_problem(s, &body, 401, "unauthenticated");
        }
        let (s, body, _) = login(&app, &client, "carol", PASSWORD).await;
        assert_problem(s, &body, 429, "too_many_attempts");
        let (_, failures) = app.get(&app.admin, "/api/v1/audit?action=signInFailed&limit=50").await;
        assert_eq!(failures["value"].as_array().unwrap().len(), 5);
        assert_eq!(failures["value"][0]["details"]["username"], "carol");
        app.clock.advance(16 * 60 * 1000);
        let (s, _, _) = login(&app, &client, "carol", PASSWORD).await;
        assert_eq!(s, StatusCode::OK, "the window passes");
        let (_, ok) = app.get(&app.admin, "/api/v1/audit?action=signIn&actor=carol").await;
        assert_eq!(ok["value"].as_array().unwrap().len(), 1);
        let (s, body, _) = login(&app, &client, "svc", "anything at all").await;
        assert_problem(s, &body, 401, "unauthenticated");
    })
    .await;
}

backend_tests!(personal_tokens_are_shown_once_stored_hashed_and_revocable);
async fn personal_tokens_are_shown_once_stored_hashed_and_revocable(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let (s, created) = app.post(&app.carol, "/api/v1/tokens", json!({"displayName": "laptop"})).await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        let token = created["token"].as_str().unwrap().to_owned();
        assert!(token.starts_with("cs_"));
        let (_, listed) = app.get(&app.carol, "/api/v1/tokens").await;
        assert!(!listed.to_string().contains(&token), "never shown again");
        let carol2 = User { token: token.clone(), ..app.carol.clone() };
        let (s, me) = app.get(&carol2, "/api/v1/me").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(me["account"]["username"], "carol");
        let (s, _) = app
            .call(
                &app.carol,
                reqwest::Method::DELETE,
                &format!("/api/v1/tokens/{}", created["id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = app.get(&carol2, "/api/v1/me").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, body) = app.post(&app.svc, "/api/v1/tokens", json!({"displayName": "more"})).await;
        assert_problem(s, &body, 403, "forbidden");
    })
    .await;
}

backend_tests!(an_approver_may_always_change_their_own_password_with_the_current_one);
async fn an_approver_may_always_change_their_own_password_with_the_current_one(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let (s, body) = app
            .post(
                &app.bob,
                "/api/v1/me/password",
                json!({"currentPassword": "nope", "newPassword": "a much better password"}),
            )
            .await;
        assert_problem(s, &body, 403, "wrong_password");
        let (s, _) = app
            .post(
                &app.bob,
                "/api/v1/me/password",
                json!({"currentPassword": PASSWORD, "newPassword": "a much better password"}),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let client = reqwest::Client::new();
        let (s, _, _) = login(&app, &client, "bob", "a much better password").await;
        assert_eq!(s, StatusCode::OK);
    })
    .await;
}

backend_tests!(r13_every_step_is_audited_in_one_verified_chain);
async fn r13_every_step_is_audited_in_one_verified_chain(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let id = app.create_app("Zoom").await;
        let (_, request) = app.update_app(&app.alice, &id, "2.0").await;
        let rid = request["id"].as_str().unwrap();
        app.approve(&app.bob, rid).await;
        app.post(&app.alice, &format!("/api/v1/requests/{rid}/complete"), json!({})).await;
        let (_, entries) = app.get(&app.admin, &format!("/api/v1/audit?target={rid}")).await;
        let actions: Vec<_> =
            entries["value"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect();
        assert_eq!(actions, vec!["completed", "approved", "created"]);
        let (_, category) = app.get(&app.admin, "/api/v1/audit?category=change&limit=1").await;
        assert_eq!(category["value"][0]["action"], "applied");
        assert_eq!(category["value"][0]["details"]["requestId"], rid);
        let (_, verify) = app.get(&app.admin, "/api/v1/audit/verify").await;
        assert_eq!(verify["valid"], true, "{verify}");
        assert_eq!(verify["entriesChecked"].as_i64().unwrap(), app.audit_len().await);
    })
    .await;
}

backend_tests!(the_append_only_guard_refuses_updates_and_deletes);
async fn the_append_only_guard_refuses_updates_and_deletes(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        use sqlx::{Connection, Executor};
        let mut conn = sqlx::AnyConnection::connect(&app.database_url).await.unwrap();
        assert!(conn.execute("UPDATE audit_log SET actor_name = 'x' WHERE seq = 1").await.is_err());
        assert!(conn.execute("DELETE FROM audit_log WHERE seq = 1").await.is_err());
    })
    .await;
}

backend_tests!(operational_endpoints_and_openapi);
async fn operational_endpoints_and_openapi(backend: TestBackend) {
    let scraper = |c: &mut countersign_server::ServerConfig| c.metrics_token = Some("scraper".to_owned().into());
    with_configured_app(backend, Setup::protected(), scraper, |app| async move {
        let get = |path: &str| app.http.get(format!("{}{path}", app.base)).bearer_auth("scraper").send();
        assert_eq!(get("/healthz").await.unwrap().status(), StatusCode::OK);
        assert_eq!(get("/readyz").await.unwrap().status(), StatusCode::OK);
        let id = app.create_app("Zoom").await;
        let (_, request) = app.update_app(&app.alice, &id, "2").await;
        app.approve(&app.bob, request["id"].as_str().unwrap()).await;
        let metrics = get("/metrics").await.unwrap().text().await.unwrap();
        assert!(metrics.contains("countersign_requests{status=\"approved\",type=\"app\"} 1"), "{metrics}");
        assert!(metrics.contains("countersign_decision_latency_seconds_count"), "{metrics}");
        // SQLite reports how its writes shared commits; PostgreSQL has no such writer.
        let sqlite_gauge = |name: &str| -> Option<i64> {
            metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        };
        match app.backend {
            TestBackend::Sqlite => {
                let (writes, commits) =
                    (sqlite_gauge("countersign_sqlite_writes"), sqlite_gauge("countersign_sqlite_commits"));
                assert!(
                    writes.is_some_and(|w| w >= 3) && commits.is_some_and(|c| c >= 1 && Some(c) <= writes),
                    "{metrics}"
                );
            }
            TestBackend::Postgres => assert!(!metrics.contains("countersign_sqlite"), "{metrics}"),
        }
        let spec: Value = get("/api/v1/openapi.json").await.unwrap().json().await.unwrap();
        assert_eq!(spec["openapi"], "3.1.0");
        // Every documented endpoint is routed: with a real id it never answers "no such endpoint".
        // (Every route is documented by construction: the JSON adapters route through `routes!`.)
        let some_id = uuid::Uuid::now_v7().to_string();
        let paths = spec["paths"].as_object().unwrap();
        let operations: usize = paths.values().map(|item| item.as_object().unwrap().len()).sum();
        assert!(operations >= 70, "{operations} operations");
        assert!(paths.contains_key("/beta/deviceManagement/operationApprovalRequests/{id}/{action}"));
        for (path, item) in paths {
            let key = path
                .replace("{type}", "app")
                .replace("{action}", if path.starts_with("/beta/") { "approve" } else { "wipe" })
                .replace("{segment}", &some_id)
                .replace("{id}", &some_id);
            for method in item.as_object().unwrap().keys() {
                let response = app
                    .http
                    .request(method.to_uppercase().parse().unwrap(), format!("{}{key}", app.base))
                    .bearer_auth(&app.admin.token)
                    .header("X-CSRF-Token", "-")
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                // A live event stream never ends: its answering at all is the proof.
                let streams = response
                    .headers()
                    .get("content-type")
                    .is_some_and(|t| t.to_str().is_ok_and(|t| t.starts_with("text/event-stream")));
                let body = if streams { String::new() } else { response.text().await.unwrap() };
                assert!(
                    !body.contains("no such endpoint")
                        && !body.contains("no such resource or function")
                        && status != StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path}: {status} {body}"
                );
            }
        }
    })
    .await;
}

backend_tests!(a_service_account_gets_its_token_once_and_submits_but_cannot_decide);
async fn a_service_account_gets_its_token_once_and_submits_but_cannot_decide(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let (s, created) = app
            .post(
                &app.admin,
                "/api/v1/accounts",
                json!({"username": "pipeline", "displayName": "CI pipeline", "kind": "service"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        let robot = User {
            id: created["id"].as_str().unwrap().to_owned(),
            token: created["token"].as_str().unwrap().to_owned(),
        };
        let (_, read) = app.get(&app.admin, &format!("/api/v1/accounts/{}", robot.id)).await;
        assert!(read.get("token").is_none(), "shown once");
        assert_eq!(read["kind"], "service");
        let (s, _) = app.get(&robot, "/api/v1/me").await;
        assert_eq!(s, StatusCode::OK);
        let (s, body) = app
            .post(
                &app.admin,
                "/api/v1/accounts",
                json!({"username": "pipeline2", "displayName": "x", "kind": "service", "password": "a password here"}),
            )
            .await;
        assert_problem(s, &body, 400, "validation_failed");
    })
    .await;
}

backend_tests!(a_request_is_invisible_to_those_who_may_not_read_it);
async fn a_request_is_invisible_to_those_who_may_not_read_it(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let (_, account) = app
            .post(&app.admin, "/api/v1/accounts", json!({"username": "nobody", "displayName": "No roles", "kind": "human", "password": "a password here"}))
            .await;
        let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let (s, signed_in, _) = login(&app, &client, "nobody", "a password here").await;
        assert_eq!(s, StatusCode::OK);
        let changed = client
            .post(format!("{}/api/v1/me/password", app.base))
            .header("x-csrf-token", signed_in["csrfToken"].as_str().unwrap())
            .json(&json!({"currentPassword": "a password here", "newPassword": "nobody chose this"}))
            .send()
            .await
            .unwrap();
        assert_eq!(changed.status(), StatusCode::NO_CONTENT, "R16: first the password");
        let id = app.create_app("Zoom").await;
        let (_, request) = app.update_app(&app.alice, &id, "2").await;
        let response = client.get(format!("{}/api/v1/requests/{}", app.base, request["id"].as_str().unwrap())).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{account}");
        let all: Value = client.get(format!("{}/api/v1/requests?view=all", app.base)).send().await.unwrap().json().await.unwrap();
        assert_eq!(all["value"], json!([]));
    })
    .await;
}

backend_tests!(pages_carry_security_headers_and_signed_out_visitors_go_to_sign_in);
async fn pages_carry_security_headers_and_signed_out_visitors_go_to_sign_in(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let response = client.get(format!("{}/requests", app.base)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()["location"], "/login?next=/requests");
        let login = client.get(format!("{}/login", app.base)).send().await.unwrap();
        let headers = login.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'self'")
                && csp.contains("frame-ancestors 'none'")
                && csp.contains("form-action 'self'")
        );
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "same-origin");
        let page = login.text().await.unwrap();
        assert!(!page.contains("<script>") && !page.contains(" style="), "no inline script or style");
        let missing = client.get(format!("{}/no/such/page", app.base)).send().await.unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    })
    .await;
}

/// A browser-like client: keeps cookies, does not follow redirects.
fn browser_client() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Opens the sign-in page as a browser would and returns the form's token.
async fn form_token(app: &TestApp, client: &reqwest::Client) -> String {
    let page = client.get(format!("{}/login", app.base)).send().await.unwrap().text().await.unwrap();
    let at = page.find("name=\"csrf\" value=\"").expect("the form carries a token") + "name=\"csrf\" value=\"".len();
    page[at..].split('"').next().unwrap().to_owned()
}

/// Posts the sign-in form with `fields`, from a page of this site (`Origin`, `Sec-Fetch-Site`).
async fn post_form(app: &TestApp, client: &reqwest::Client, fields: &[(&str, &str)]) -> reqwest::Response {
    client
        .post(format!("{}/login", app.base))
        .header("origin", &app.base)
        .header("sec-fetch-site", "same-origin")
        .form(fields)
        .send()
        .await
        .unwrap()
}

async fn audited_failures(app: &TestApp) -> usize {
    let (_, failures) = app.get(&app.admin, "/api/v1/audit?action=signInFailed&limit=200").await;
    failures["value"].as_array().unwrap().len()
}

backend_tests!(finding_2_after_sign_in_only_a_local_path_is_followed);
async fn finding_2_after_sign_in_only_a_local_path_is_followed(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let cases = [
            ("/requests?view=all", "/requests?view=all"),
            ("/%09/evil.example", "/"),
            ("/\t/evil.example", "/"),
            ("/\r\n/evil.example", "/"),
            ("//evil.example", "/"),
            ("/\\evil.example", "/"),
            ("/%5Cevil.example", "/"),
            ("/%2F%2Fevil.example", "/"),
            ("https://evil.example/", "/"),
            ("/requests\u{1}", "/"),
            ("/requests\u{7f}", "/"),
            ("/requests x", "/"),
            ("/caf\u{e9}", "/"),
            ("", "/"),
        ];
        for (next, expected) in cases {
            let client = browser_client();
            let token = form_token(&app, &client).await;
            let response = post_form(
                &app,
                &client,
                &[("csrf", &token), ("username", "alice"), ("password", PASSWORD), ("next", next)],
            )
            .await;
            assert_eq!(response.status(), StatusCode::SEE_OTHER, "next={next:?}");
            assert_eq!(response.headers()["location"], expected, "next={next:?}");
        }
        // The sign-in page never puts a foreign `next` into its form either.
        let page = browser_client()
            .get(format!("{}/login?next=/%09/evil.example", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("name=\"next\" value=\"/\""), "{page}");
    })
    .await;
}

backend_tests!(finding_3_of_forty_concurrent_guesses_at_most_the_limit_are_checked);
async fn finding_3_of_forty_concurrent_guesses_at_most_the_limit_are_checked(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let app = &app;
        let guesses = (0..40).map(|i| async move {
            let client = reqwest::Client::new();
            login(app, &client, "carol", &format!("guess number {i}")).await
        });
        let answers = futures::future::join_all(guesses).await;
        let checked = answers.iter().filter(|(s, _, _)| *s == StatusCode::UNAUTHORIZED).count();
        for (status, body, _) in &answers {
            assert!(
                [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS, StatusCode::SERVICE_UNAVAILABLE]
                    .contains(status),
                "{status} {body}"
            );
        }
        assert!(checked <= 5, "{checked} of 40 guesses were checked; the limit is 5");
        assert_eq!(audited_failures(app).await, checked, "every checked guess is audited");
        let (s, body, _) = login(app, &reqwest::Client::new(), "carol", PASSWORD).await;
        assert_problem(s, &body, 429, "too_many_attempts");
    })
    .await;
}

backend_tests!(finding_4_strangers_cannot_lock_the_owner_s_browser_out);
async fn finding_4_strangers_cannot_lock_the_owner_s_browser_out(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        // Earlier, carol signed in on her laptop's browser (which keeps the device cookie) and
        // from a script (which keeps the device token); bob on his.
        let laptop = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let (s, _, _) = login(&app, &laptop, "carol", PASSWORD).await;
        assert_eq!(s, StatusCode::OK);
        let (s, script, _) = login(&app, &reqwest::Client::new(), "carol", PASSWORD).await;
        assert_eq!(s, StatusCode::OK, "{script}");
        let device_token = script["deviceToken"].as_str().unwrap().to_owned();
        let (_, bob, _) = login(&app, &reqwest::Client::new(), "bob", PASSWORD).await;
        let bobs_token = bob["deviceToken"].as_str().unwrap().to_owned();

        // A stranger spends the budget of carol's untrusted clients.
        for _ in 0..5 {
            let (s, body, _) = login(&app, &reqwest::Client::new(), "carol", "a wrong guess").await;
            assert_problem(s, &body, 401, "unauthenticated");
        }
        let (s, body, _) = login(&app, &reqwest::Client::new(), "carol", PASSWORD).await;
        assert_problem(s, &body, 429, "too_many_attempts");

        // Her browser still gets in, and so does the script with its token.
        let (s, body, _) = login(&app, &laptop, "carol", PASSWORD).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let with_token = |token: String| {
            let client = reqwest::Client::new();
            let url = format!("{}/api/v1/auth/login", app.base);
            async move {
                let response = client
                    .post(url)
                    .json(&json!({"username": "carol", "password": PASSWORD, "deviceToken": token}))
                    .send()
                    .await
                    .unwrap();
                (response.status(), response.json::<Value>().await.unwrap())
            }
        };
        let (s, body) = with_token(device_token.clone()).await;
        assert_eq!(s, StatusCode::OK, "{body}");

        // A forged token, bob's token, or a made-up one earns no exemption.
        let mut forged = device_token.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        for token in [forged, bobs_token, "Y2Fyb2w.nonce.1800000000000.tag".to_owned()] {
            let (s, body) = with_token(token.clone()).await;
            assert_problem(s, &body, 429, "too_many_attempts");
        }
        let (s, body, _) = login(&app, &reqwest::Client::new(), "carol", PASSWORD).await;
        assert_problem(s, &body, 429, "too_many_attempts");

        // A device has a budget of its own: a stolen cookie gives five guesses, then it too waits.
        for _ in 0..5 {
            let (s, body, _) = login(&app, &laptop, "carol", "a wrong guess").await;
            assert_problem(s, &body, 401, "unauthenticated");
        }
        let (s, body, _) = login(&app, &laptop, "carol", PASSWORD).await;
        assert_problem(s, &body, 429, "too_many_attempts");
        let (s, body) = with_token(device_token).await;
        assert_eq!(s, StatusCode::OK, "the script's device is another device: {body}");
        let (_, failures) = app.get(&app.admin, "/api/v1/audit?action=signInFailed&limit=50").await;
        let trusted = failures["value"].as_array().unwrap().iter().filter(|e| e["details"]["trustedDevice"] == true);
        assert_eq!(trusted.count(), 5);
    })
    .await;
}

backend_tests!(finding_5_sign_in_refuses_cross_site_posts_and_non_json_bodies);
async fn finding_5_sign_in_refuses_cross_site_posts_and_non_json_bodies(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let fields = |token: &str| {
            vec![
                ("csrf", token.to_owned()),
                ("username", "alice".to_owned()),
                ("password", PASSWORD.to_owned()),
                ("next", "/".to_owned()),
            ]
        };
        let client = browser_client();
        let token = form_token(&app, &client).await;
        let url = format!("{}/login", app.base);
        // Another site's form, posted in the victim's browser: its Origin, or Sec-Fetch-Site.
        for (name, value) in [
            ("origin", "https://evil.example"),
            ("origin", "null"),
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-site", "same-site"),
        ] {
            let response = client.post(&url).header(name, value).form(&fields(&token)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{name}: {value}");
            assert!(response.headers().get("set-cookie").is_none_or(|c| !c.to_str().unwrap().contains("session")));
            assert!(response.text().await.unwrap().contains("did not come from Countersign"));
        }
        // A form without the token, with another browser's token, or with no form cookie.
        let response = post_form(&app, &client, &[("username", "alice"), ("password", PASSWORD)]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let other = form_token(&app, &browser_client()).await;
        let response =
            post_form(&app, &client, &[("csrf", &other), ("username", "alice"), ("password", PASSWORD)]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let cookieless = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let response =
            post_form(&app, &cookieless, &[("csrf", &token), ("username", "alice"), ("password", PASSWORD)]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        // The page's own form signs in.
        let response =
            post_form(&app, &client, &[("csrf", &token), ("username", "alice"), ("password", PASSWORD)]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(audited_failures(&app).await, 0, "no refused post reached a password check");

        // The API's sign-in takes JSON only: a cross-site form can send text/plain, not JSON.
        let body = json!({"username": "alice", "password": PASSWORD}).to_string();
        let api = format!("{}/api/v1/auth/login", app.base);
        for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
            let mut request = reqwest::Client::new().post(&api).body(body.clone());
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            assert_problem(status, &response.json().await.unwrap(), 415, "unsupported_media_type");
        }
        let response = reqwest::Client::new()
            .post(&api)
            .header("origin", "https://evil.example")
            .json(&json!({"username": "alice", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_problem(response.status(), &response.json().await.unwrap(), 403, "csrf_failed");
        // Every JSON endpoint, not only sign-in.
        let response = app
            .http
            .post(format!("{}/api/v1/tokens", app.base))
            .bearer_auth(&app.alice.token)
            .header("content-type", "text/plain")
            .body(json!({"displayName": "t"}).to_string())
            .send()
            .await
            .unwrap();
        assert_problem(response.status(), &response.json().await.unwrap(), 415, "unsupported_media_type");
    })
    .await;
}

backend_tests!(finding_11_a_full_password_queue_answers_server_busy_and_other_requests_go_on);
async fn finding_11_a_full_password_queue_answers_server_busy_and_other_requests_go_on(backend: TestBackend) {
    let app = TestApp::start_with(backend, &Setup::protected(), |config| {
        config.password_workers = 1;
        config.password_queue = 0;
    })
    .await;
    let app = &app;
    // Twelve strangers at once (each a name of its own, so no budget refuses them first).
    let sign_ins = futures::future::join_all((0..12).map(|i| async move {
        let client = reqwest::Client::new();
        let response = client
            .post(format!("{}/api/v1/auth/login", app.base))
            .json(&json!({"username": format!("stranger{i}"), "password": "a guess"}))
            .send()
            .await
            .unwrap();
        let retry_after = response.headers().get("retry-after").cloned();
        (response.status(), response.json::<Value>().await.unwrap(), retry_after)
    }));
    let health = async {
        let response = app.http.get(format!("{}/healthz", app.base)).send().await.unwrap();
        response.status()
    };
    let (answers, health) = tokio::join!(sign_ins, health);
    assert_eq!(health, StatusCode::OK);
    let mut busy = 0;
    for (status, body, retry_after) in &answers {
        match status.as_u16() {
            401 => assert_problem(*status, body, 401, "unauthenticated"),
            _ => {
                assert_problem(*status, body, 503, "server_busy");
                assert_eq!(retry_after.as_ref().unwrap(), "1");
                busy += 1;
            }
        }
    }
    assert!(busy > 0, "one worker and no queue: twelve at once cannot all be checked");
    assert_eq!(audited_failures(app).await, 12 - busy, "a busy answer checks nothing");
}
