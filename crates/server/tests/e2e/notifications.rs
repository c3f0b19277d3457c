//! Notifications through real receivers on loopback: a webhook receiver (HTTP) and an SMTP sink
//! speaking SMTP. Retries are driven by moving the test clock, not by sleeping.

use crate::harness::*;
use countersign_core::policy::Completion;
use countersign_core::profile::ProfileType;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// What a receiver got: headers as (name, value) and the body.
type Hits = Arc<Mutex<Vec<(Vec<(String, String)>, String)>>>;

/// An HTTP receiver answering a scripted sequence of statuses (then 200).
async fn receiver(listener: tokio::net::TcpListener, script: Vec<u16>) -> Hits {
    let hits: Hits = Arc::default();
    let script = Arc::new(Mutex::new(VecDeque::from(script)));
    let (h, sc) = (hits.clone(), script.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let (h, sc) = (h.clone(), sc.clone());
            async move {
                let headers =
                    headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned())).collect();
                h.lock().unwrap().push((headers, body));
                let status = sc.lock().unwrap().pop_front().unwrap_or(200);
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    hits
}

async fn wait_for_hits(hits: &Hits, n: usize) {
    for _ in 0..200 {
        if hits.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("expected {n} deliveries, got {}", hits.lock().unwrap().len());
}

fn header<'a>(hit: &'a (Vec<(String, String)>, String), name: &str) -> &'a str {
    hit.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_default()
}

const SECRET: &str = "a-long-webhook-signing-secret";

async fn webhook_channel(app: &TestApp, url: &str) {
    let (s, channel) = app
        .post(
            &app.admin,
            "/api/v1/notificationChannels",
            json!({"displayName": "SOC", "kind": "webhook", "url": url, "signingSecret": SECRET}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{channel}");
    assert!(
        !channel.to_string().contains(SECRET) && !channel.to_string().contains("/hook"),
        "secrets are never shown: {channel}"
    );
    let host = url.split("://").nth(1).unwrap().split('/').next().unwrap();
    assert_eq!(channel["target"], format!("http://{host}/…"));
}

fn apps_only() -> Setup {
    Setup::only(&[(ProfileType::App, 1, Completion::Requester)])
}

backend_tests!(a_signed_webhook_is_retried_until_it_is_delivered_once);
async fn a_signed_webhook_is_retried_until_it_is_delivered_once(backend: TestBackend) {
    with_app(backend, apps_only(), |app| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        // The receiver fails twice, then accepts.
        let hits = receiver(listener, vec![500, 500]).await;
        webhook_channel(&app, &url).await;
        let app_id =
            app.samples.iter().find(|(t, _)| *t == countersign_core::profile::ResourceType::App).unwrap().1.clone();
        let (s, request) = app.update_app(&app.alice, &app_id, "2.0").await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let request_id = request["id"].as_str().unwrap().to_owned();
        wait_for_hits(&hits, 1).await;
        app.clock.advance(countersign_server::notify::backoff(0));
        wait_for_hits(&hits, 2).await;
        app.clock.advance(countersign_server::notify::backoff(1));
        wait_for_hits(&hits, 3).await;
        // Delivered: nothing more comes, however long we wait.
        tokio::time::sleep(Duration::from_millis(200)).await;
        app.clock.advance(3_600_000);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let hits = hits.lock().unwrap().clone();
        assert_eq!(hits.len(), 3, "delivered once, after two failures");
        let ids: Vec<&str> = hits.iter().map(|h| header(h, "x-countersign-event-id")).collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "retries carry the same id, so receivers can dedupe");
        let last = hits.last().unwrap();
        let event: Value = serde_json::from_str(&last.1).unwrap();
        assert_eq!(event["type"], "request.created");
        assert_eq!(event["id"], ids[0]);
        assert_eq!(event["request"]["justification"], "upgrade");
        assert!(event["url"].as_str().unwrap().ends_with(&format!("/requests/{request_id}")));
        // The signature verifies with the shared secret over "t.body".
        let signature = header(last, "x-countersign-signature");
        let (t, v1) = signature.trim_start_matches("t=").split_once(",v1=").unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(format!("{t}.{}", last.1).as_bytes());
        assert_eq!(hex::encode(mac.finalize().into_bytes()), v1);
        let (_, delivered) = app.get(&app.admin, "/api/v1/notificationDeliveries?status=delivered").await;
        assert_eq!(delivered["value"].as_array().unwrap().len(), 1);
        assert_eq!(delivered["value"][0]["attempts"], 3);
    })
    .await;
}

backend_tests!(failures_back_off_and_the_message_arrives_once_when_the_receiver_recovers);
async fn failures_back_off_and_the_message_arrives_once_when_the_receiver_recovers(backend: TestBackend) {
    with_app(backend, apps_only(), |app| async move {
        // The receiver is down: its port refuses connections.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/hook");
        webhook_channel(&app, &url).await;
        let (s, held) = app
            .post(
                &app.alice,
                "/api/v1/resources/app",
                json!({"name": "VPN", "document": {}, "justification": "new VPN"}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{held}");
        // Two failed attempts, each pushed further out (10 s, then 20 s).
        for round in 1..=2 {
            for _ in 0..200 {
                let p = pending(&app).await;
                if p.first().is_some_and(|d| d["attempts"] == round) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            let p = pending(&app).await;
            assert_eq!(p[0]["attempts"], round, "{p:?}");
            assert!(p[0]["lastError"].as_str().unwrap().contains("cannot reach"), "{p:?}");
            app.clock.advance(countersign_server::notify::backoff(round - 1));
        }
        // The receiver comes back on the same port.
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let hits = receiver(listener, vec![]).await;
        app.clock.advance(60_000);
        wait_for_hits(&hits, 1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(hits.lock().unwrap().len(), 1, "delivered once");
        let (_, delivered) = app.get(&app.admin, "/api/v1/notificationDeliveries?status=delivered").await;
        assert_eq!(delivered["value"][0]["attempts"], 3);
        // A channel test message goes through the same path.
        let channel = app.store.notification_channel_ids().await.unwrap().remove(0);
        let (s, _) = app.post(&app.admin, &format!("/api/v1/notificationChannels/{channel}/test"), json!({})).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        wait_for_hits(&hits, 2).await;
        assert!(hits.lock().unwrap()[1].1.contains("\"type\":\"test\""));
    })
    .await;
}

backend_tests!(after_the_retry_window_a_delivery_is_dead_and_can_be_retried_by_hand);
async fn after_the_retry_window_a_delivery_is_dead_and_can_be_retried_by_hand(backend: TestBackend) {
    with_app(backend, apps_only(), |app| async move {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        webhook_channel(&app, &format!("http://127.0.0.1:{port}/hook")).await;
        app.post(&app.alice, "/api/v1/resources/app", json!({"name": "VPN", "document": {}, "justification": "j"}))
            .await;
        let mut dead = json!([]);
        for _ in 0..400 {
            app.clock.advance(3_600_000);
            tokio::time::sleep(Duration::from_millis(20)).await;
            dead = app.get(&app.admin, "/api/v1/notificationDeliveries?status=dead").await.1["value"].clone();
            if dead.as_array().is_some_and(|d| !d.is_empty()) {
                break;
            }
        }
        let id = dead[0]["id"].as_str().expect("the delivery died after 24 hours").to_owned();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let hits = receiver(listener, vec![]).await;
        let (s, _) = app.post(&app.admin, &format!("/api/v1/notificationDeliveries/{id}/retry"), json!({})).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        wait_for_hits(&hits, 1).await;
        let (s, body) = app.get(&app.admin, "/api/v1/notificationDeliveries?status=lost").await;
        assert_problem(s, &body, 400, "validation_failed");
    })
    .await;
}

async fn pending(app: &TestApp) -> Vec<Value> {
    let (_, d) = app.get(&app.admin, "/api/v1/notificationDeliveries?status=pending").await;
    d["value"].as_array().unwrap().clone()
}

/// A minimal SMTP server: enough of RFC 5321 for a client to deliver; keeps every message.
type Mail = Arc<Mutex<Vec<(Vec<String>, String)>>>;

async fn smtp_sink() -> (u16, Mail) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mail: Mail = Arc::default();
    let store = mail.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else { return };
            let store = store.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 sink ESMTP\r\n").await;
                let mut recipients = Vec::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250 sink\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        recipients.push(line[8..].trim().trim_matches(['<', '>']).to_owned());
                        b"250 OK\r\n"
                    } else if upper.starts_with("DATA") {
                        let _ = write.write_all(b"354 go ahead\r\n").await;
                        let mut data = String::new();
                        while let Ok(Some(l)) = lines.next_line().await {
                            if l == "." {
                                break;
                            }
                            // RFC 5321 §4.5.2: a line's leading dot is doubled in transit.
                            data.push_str(l.strip_prefix('.').filter(|rest| rest.starts_with('.')).unwrap_or(&l));
                            data.push('\n');
                        }
                        store.lock().unwrap().push((std::mem::take(&mut recipients), data));
                        b"250 queued\r\n"
                    } else if upper.starts_with("QUIT") {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"250 OK\r\n"
                    };
                    let _ = write.write_all(reply).await;
                }
            });
        }
    });
    (port, mail)
}

/// Undoes quoted-printable soft line breaks so assertions can look for whole phrases.
fn unfold(data: &str) -> String {
    data.replace("=\n", "").replace("=3D", "=")
}

backend_tests!(approvers_and_not_the_requester_get_the_new_request_email_and_the_requester_the_rejection);
async fn approvers_and_not_the_requester_get_the_new_request_email_and_the_requester_the_rejection(
    backend: TestBackend,
) {
    let (port, mail) = smtp_sink().await;
    let app = TestApp::start_with(backend, &apps_only(), |config| {
        config.smtp_url = Some(format!("smtp://127.0.0.1:{port}").into());
        config.smtp_from = Some("Countersign <countersign@example.test>".into());
        config.public_url = "https://countersign.example.test".into();
    })
    .await;
    // Each sets their own address (an administrator's change to an approver's is held, R9).
    for user in [&app.alice, &app.bob, &app.carol, &app.dave] {
        let (_, me) = app.get(user, "/api/v1/me").await;
        let name = me["account"]["username"].as_str().unwrap().to_owned();
        let body = json!({"email": format!("{name}@example.test"), "optOuts": []});
        let (s, _) = app.call(user, reqwest::Method::PUT, "/api/v1/me/notifications", Some(body)).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }
    let (s, _) =
        app.post(&app.admin, "/api/v1/notificationChannels", json!({"displayName": "E-mail", "kind": "email"})).await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, request) = app
        .post(
            &app.alice,
            "/api/v1/resources/app",
            json!({"name": "Zoom", "document": {}, "justification": "Video calls for the sales team"}),
        )
        .await;
    let rid = request["id"].as_str().unwrap().to_owned();
    for _ in 0..200 {
        if mail.lock().unwrap().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut to: Vec<String> = mail.lock().unwrap().iter().flat_map(|(r, _)| r.clone()).collect();
    to.sort();
    assert_eq!(to, vec!["bob@example.test", "carol@example.test", "dave@example.test"], "approvers only, never alice");
    let (_, first) = mail.lock().unwrap()[0].clone();
    let first = unfold(&first);
    assert!(first.contains("Subject: [Countersign] New approval request"), "{first}");
    assert!(first.contains("Video calls for the sales team"), "{first}");
    assert!(first.contains(&format!("https://countersign.example.test/requests/{rid}")), "{first}");

    let (s, _) = app
        .post(&app.carol, &format!("/api/v1/requests/{rid}/reject"), json!({"notes": "Use the approved Teams instead"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    for _ in 0..200 {
        if mail.lock().unwrap().len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (to, body) = mail.lock().unwrap()[3].clone();
    assert_eq!(to, vec!["alice@example.test"]);
    let body = unfold(&body);
    assert!(body.contains("Request rejected") && body.contains("Use the approved Teams instead"), "{body}");
}

backend_tests!(the_expiring_soon_reminder_is_sent_once_at_the_right_time);
async fn the_expiring_soon_reminder_is_sent_once_at_the_right_time(backend: TestBackend) {
    with_app(backend, apps_only(), |app| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let hits = receiver(listener, vec![]).await;
        webhook_channel(&app, &url).await;
        let (_, request) = app
            .post(&app.alice, "/api/v1/resources/app", json!({"name": "VPN", "document": {}, "justification": "j"}))
            .await;
        let rid = request["id"].as_str().unwrap().to_owned();
        wait_for_hits(&hits, 1).await;
        let lead = 24 * 60 * 60 * 1000;
        // Expires 30 days after submission: the reminder is due one day before.
        app.clock.advance(29 * DAY - 60_000);
        use countersign_core::Clock;
        assert_eq!(app.store.send_reminders(app.clock.now(), lead).await.unwrap(), 0, "not yet");
        app.clock.advance(60_000);
        assert_eq!(app.store.send_reminders(app.clock.now(), lead).await.unwrap(), 1);
        assert_eq!(app.store.send_reminders(app.clock.now(), lead).await.unwrap(), 0, "once");
        wait_for_hits(&hits, 2).await;
        let event: Value = serde_json::from_str(&hits.lock().unwrap()[1].1).unwrap();
        assert_eq!(event["type"], "request.expiringSoon");
        assert_eq!(event["request"]["id"], rid.as_str());
    })
    .await;
}

/// Reads a server-sent event stream for `wait`, returning what arrived.
async fn read_stream(mut response: reqwest::Response, wait: Duration) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, response.chunk()).await {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    seen
}

backend_tests!(an_event_stream_sees_status_changes_it_may_see_and_nothing_else);
async fn an_event_stream_sees_status_changes_it_may_see_and_nothing_else(backend: TestBackend) {
    with_app(backend, apps_only(), |app| async move {
        let (s, nobody) = app
            .post(
                &app.admin,
                "/api/v1/accounts",
                json!({"username": "pipeline", "displayName": "No roles", "kind": "service"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let outsider =
            User { id: nobody["id"].as_str().unwrap().to_owned(), token: nobody["token"].as_str().unwrap().to_owned() };
        let open = |user: &User| app.http.get(format!("{}/api/v1/events", app.base)).bearer_auth(&user.token).send();
        let (bob, stranger) = (open(&app.bob).await.unwrap(), open(&outsider).await.unwrap());
        assert_eq!(bob.headers()["content-type"], "text/event-stream");
        let app_id =
            app.samples.iter().find(|(t, _)| *t == countersign_core::profile::ResourceType::App).unwrap().1.clone();
        let (_, request) = app.update_app(&app.alice, &app_id, "2.0").await;
        let rid = request["id"].as_str().unwrap().to_owned();
        let started = std::time::Instant::now();
        let (seen, unseen) =
            tokio::join!(read_stream(bob, Duration::from_secs(1)), read_stream(stranger, Duration::from_secs(1)));
        // Each read ends at its own one-second deadline; the bound only catches one that does
        // not (a wall-clock bound tighter than this fails on a loaded two-core machine).
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
        assert!(
            seen.contains("event: request.created") && seen.contains(&rid),
            "bob sees it within a second: {seen:?}"
        );
        assert!(!unseen.contains(&rid) && !unseen.contains("event:"), "the outsider gets nothing: {unseen:?}");
    })
    .await;
}

backend_tests!(an_approver_may_opt_out_of_new_request_emails_but_not_of_security_relevant_ones);
async fn an_approver_may_opt_out_of_new_request_emails_but_not_of_security_relevant_ones(backend: TestBackend) {
    let (port, mail) = smtp_sink().await;
    let app = TestApp::start_with(backend, &apps_only(), |config| {
        config.smtp_url = Some(format!("smtp://127.0.0.1:{port}").into());
        config.smtp_from = Some("countersign@example.test".into());
    })
    .await;
    for (user, name) in [(&app.bob, "bob"), (&app.carol, "carol"), (&app.dave, "dave")] {
        let opt_outs = if name == "bob" { json!(["request.created"]) } else { json!([]) };
        let body = json!({"email": format!("{name}@example.test"), "optOuts": opt_outs});
        let (s, b) = app.call(user, reqwest::Method::PUT, "/api/v1/me/notifications", Some(body)).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    }
    let (s, b) = app
        .call(
            &app.bob,
            reqwest::Method::PUT,
            "/api/v1/me/notifications",
            Some(json!({"optOuts": ["request.completed"]})),
        )
        .await;
    assert_problem(s, &b, 400, "validation_failed");
    let (_, mine) = app.get(&app.bob, "/api/v1/me/notifications").await;
    assert_eq!(mine["optOuts"], json!(["request.created"]), "the refused change changed nothing");
    app.post(&app.admin, "/api/v1/notificationChannels", json!({"displayName": "E-mail", "kind": "email"})).await;
    app.post(&app.alice, "/api/v1/resources/app", json!({"name": "Zoom", "document": {}, "justification": "j"})).await;
    for _ in 0..200 {
        if mail.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut to: Vec<String> = mail.lock().unwrap().iter().flat_map(|(r, _)| r.clone()).collect();
    to.sort();
    assert_eq!(to, vec!["carol@example.test", "dave@example.test"], "bob opted out");
}

backend_tests!(a_server_restarted_between_attempts_still_delivers);
async fn a_server_restarted_between_attempts_still_delivers(backend: TestBackend) {
    // The tenant's own dispatcher ticks once at start and then sleeps: the two "runs" below
    // are the only ones delivering.
    let app = TestApp::start_with(backend, &apps_only(), |c| c.notify_interval = Duration::from_secs(3600)).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    webhook_channel(&app, &format!("http://127.0.0.1:{port}/hook")).await;
    app.post(&app.alice, "/api/v1/resources/app", json!({"name": "VPN", "document": {}, "justification": "j"})).await;
    let loopback = vec!["127.0.0.0/8".parse().unwrap()];
    let client = countersign_server::outbound::client(&countersign_server::outbound::Allow::new(&loopback)).unwrap();
    let run = |store: countersign_store::Store| {
        let config = countersign_server::ServerConfig { notify_allow_networks: loopback.clone(), ..Default::default() };
        let state = countersign_server::AppState::new(store, app.clock.clone(), config);
        let client = client.clone();
        async move { countersign_server::notify::dispatch_once(&state, &client).await }
    };
    // First run: the receiver is down; the attempt fails and the run ends.
    let first = countersign_store::Store::connect(&app.database_url, app.store_options(10)).await.unwrap();
    assert_eq!(run(first.clone()).await, 1);
    first.close().await;
    // The receiver comes up; a new run (a restarted server) picks the message up.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let hits = receiver(listener, vec![]).await;
    app.clock.advance(countersign_server::notify::backoff(0));
    let second = countersign_store::Store::connect(&app.database_url, app.store_options(10)).await.unwrap();
    assert_eq!(run(second.clone()).await, 1);
    wait_for_hits(&hits, 1).await;
    assert_eq!(run(second).await, 0, "nothing left to deliver");
    let (_, delivered) = app.get(&app.admin, "/api/v1/notificationDeliveries?status=delivered").await;
    assert_eq!(delivered["value"][0]["attempts"], 2);
}

/// What a requester or an approver could type to dress a phishing link up as ours, forge a
/// line, or rewrite what follows (other control characters, such as a terminal's escape, are
/// refused as input: issue 15).
const HOSTILE: &str = "<https://evil.example|Open request> [Open request](https://evil.example) *urgent* \
    <!channel> \rApproved\nby the CISO \u{202e}exe.txt";

/// Every string in a JSON document, with the key it is under.
fn strings<'a>(value: &'a Value, key: &'a str, out: &mut Vec<(&'a str, &'a str)>) {
    match value {
        Value::String(s) => out.push((key, s)),
        Value::Array(items) => items.iter().for_each(|v| strings(v, key, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| strings(v, k, out)),
        _ => {}
    }
}

/// The objects of a JSON document that carry `needle` in one of their own string fields.
fn carriers<'a>(value: &'a Value, needle: &str, out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| carriers(v, needle, out)),
        Value::Object(map) => {
            if map.values().any(|v| v.as_str().is_some_and(|s| s.contains(needle))) {
                out.push(value);
            }
            map.values().for_each(|v| carriers(v, needle, out));
        }
        _ => {}
    }
}

/// No hidden character anywhere, and the only link is the request's own.
fn inert(message: &Value, request_url: &str) {
    let mut all = vec![];
    strings(message, "", &mut all);
    for (key, s) in &all {
        assert!(!s.chars().any(countersign_core::text::is_hidden), "{key}: {s:?}");
    }
    let urls: Vec<_> = all.iter().filter(|(k, _)| k.eq_ignore_ascii_case("url")).map(|(_, u)| *u).collect();
    assert_eq!(urls, vec![request_url], "{message}");
}

backend_tests!(chat_and_email_show_hostile_text_as_text_and_name_people_with_usernames);
async fn chat_and_email_show_hostile_text_as_text_and_name_people_with_usernames(backend: TestBackend) {
    let (port, mail) = smtp_sink().await;
    let app = TestApp::start_with(backend, &apps_only(), |config| {
        config.smtp_url = Some(format!("smtp://127.0.0.1:{port}").into());
        config.smtp_from = Some("countersign@example.test".into());
        config.public_url = "https://countersign.example.test".into();
    })
    .await;
    let (slack_listener, teams_listener) = (
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    );
    let slack_url = format!("http://{}/hook", slack_listener.local_addr().unwrap());
    let teams_url = format!("http://{}/hook", teams_listener.local_addr().unwrap());
    let (slack, teams) = (receiver(slack_listener, vec![]).await, receiver(teams_listener, vec![]).await);
    for (kind, url) in [("slack", Some(slack_url)), ("teams", Some(teams_url)), ("email", None)] {
        let (s, b) = app
            .post(&app.admin, "/api/v1/notificationChannels", json!({"displayName": kind, "kind": kind, "url": url}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let body = json!({"email": "alice@example.test", "optOuts": []});
    let (s, _) = app.call(&app.alice, reqwest::Method::PUT, "/api/v1/me/notifications", Some(body)).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, request) = app
        .post(&app.alice, "/api/v1/resources/app", json!({"name": "Zoom", "document": {}, "justification": HOSTILE}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{request}");
    let rid = request["id"].as_str().unwrap().to_owned();
    let request_url = format!("https://countersign.example.test/requests/{rid}");
    let (_, alice) = app.get(&app.alice, "/api/v1/me").await;
    let alice_named = format!(
        "{} (@{})",
        alice["account"]["displayName"].as_str().unwrap(),
        alice["account"]["username"].as_str().unwrap()
    );

    wait_for_hits(&slack, 1).await;
    let message: Value = serde_json::from_str(&slack.lock().unwrap()[0].1).unwrap();
    inert(&message, &request_url);
    let mut holders = vec![];
    carriers(&message["blocks"], "evil.example", &mut holders);
    assert!(
        !holders.is_empty() && holders.iter().all(|o| o["type"] == "plain_text"),
        "Slack: only as plain text: {message}"
    );
    let fallback = message["text"].as_str().unwrap();
    assert!(!fallback.contains('<') && !fallback.contains('>') && fallback.contains(&alice_named), "{fallback}");
    let mut named = vec![];
    carriers(&message["blocks"], &alice_named, &mut named);
    assert!(!named.is_empty(), "R20: the requester with their username: {message}");

    wait_for_hits(&teams, 1).await;
    let card: Value = serde_json::from_str(&teams.lock().unwrap()[0].1).unwrap();
    inert(&card, &request_url);
    let mut holders = vec![];
    carriers(&card, "evil.example", &mut holders);
    assert!(!holders.is_empty() && holders.iter().all(|o| o["type"] == "TextRun"), "Teams: only in TextRuns: {card}");
    assert!(!card.to_string().contains("FactSet"), "Fact values render markdown: {card}");

    // Carol rejects with notes of the same kind; alice is told by e-mail, naming carol.
    let (s, _) = app.post(&app.carol, &format!("/api/v1/requests/{rid}/reject"), json!({"notes": HOSTILE})).await;
    assert_eq!(s, StatusCode::OK);
    for _ in 0..200 {
        if mail.lock().unwrap().iter().any(|(to, _)| to.contains(&"alice@example.test".to_owned())) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let rejection = mail.lock().unwrap().iter().find(|(to, _)| to.contains(&"alice@example.test".to_owned())).cloned();
    let (_, data) = rejection.expect("alice hears of the rejection");
    let data = unfold(&data);
    let html = &data[data.find("<h2>").expect("an HTML part")..];
    assert_eq!(html.matches("<a ").count(), 1, "one link, ours: {html}");
    assert!(html.contains(&format!("<a href=\"{request_url}\">")), "{html}");
    assert!(html.contains("&lt;https://evil.example|Open request&gt;"), "{html}");
    assert!(data.contains("\\u{d}Approved\\u{a}by the CISO \\u{202e}exe.txt"), "{data}");
    assert!(!data.lines().any(|l| l.starts_with("by the CISO")), "no forged line: {data}");
    let (_, carol) = app.get(&app.carol, "/api/v1/me").await;
    assert!(
        data.contains(&format!("(@{})", carol["account"]["username"].as_str().unwrap())),
        "R20: the approver: {data}"
    );

    wait_for_hits(&slack, 2).await;
    let message: Value = serde_json::from_str(&slack.lock().unwrap()[1].1).unwrap();
    inert(&message, &request_url);
    let mut named = vec![];
    carriers(&message["blocks"], "(@carol)", &mut named);
    assert!(!named.is_empty(), "R20: the approver with their username: {message}");
}
