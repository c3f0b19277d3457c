//! Sessions and sign-in limits live in the database: any replica honours what another made.

use crate::cluster::{answer, with_cluster, Cluster, REPLICAS};
use crate::harness::{assert_problem, Setup, PASSWORD};
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::json;

async fn login(c: &Cluster, node: usize, username: &str, password: &str) -> (crate::cluster::Answer, Option<String>) {
    let response = c
        .http
        .post(c.url(node, "/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    // Only the `name=value` part of Set-Cookie goes back, as a browser would send it.
    let cookie =
        response.headers().get(SET_COOKIE).map(|v| v.to_str().unwrap().split(';').next().unwrap().trim().to_owned());
    (answer(response).await, cookie)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_made_on_one_replica_works_on_every_other() {
    with_cluster("a_session_made_on_one_replica_works_on_every_other", Setup::protected(), |c| async move {
        let (signed_in, cookie) = login(&c, 0, "alice", PASSWORD).await;
        assert_eq!(signed_in.status, StatusCode::OK, "{:?}", signed_in.body);
        let cookie = cookie.expect("a session cookie");
        assert!(cookie.starts_with("countersign_session="), "{cookie}");
        let csrf = signed_in.body["csrfToken"].as_str().unwrap().to_owned();

        for node in 0..REPLICAS {
            let me = answer(c.http.get(c.url(node, "/api/v1/me")).header(COOKIE, &cookie).send().await.unwrap()).await;
            assert_eq!(me.status, StatusCode::OK, "replica {}: {:?}", node + 1, me.body);
            assert_eq!(me.body["account"]["username"], "alice");
            // Without the cookie the same replica does not know the caller: the cookie carried it.
            let anonymous = answer(c.http.get(c.url(node, "/api/v1/me")).send().await.unwrap()).await;
            assert_problem(anonymous.status, &anonymous.body, 401, "unauthenticated");
        }

        // A cookie write on replica 3 checks the CSRF token that replica 1 issued.
        let url = c.url(2, "/api/v1/resources/script");
        let body = json!({"name": "cleanup", "document": {}, "justification": "disk space"});
        let forged = answer(c.http.post(&url).header(COOKIE, &cookie).json(&body).send().await.unwrap()).await;
        assert_problem(forged.status, &forged.body, 403, "csrf_failed");
        let wrong = c.http.post(&url).header(COOKIE, &cookie).header("X-CSRF-Token", "guess").json(&body);
        let wrong = answer(wrong.send().await.unwrap()).await;
        assert_problem(wrong.status, &wrong.body, 403, "csrf_failed");
        let held = c.http.post(&url).header(COOKIE, &cookie).header("X-CSRF-Token", &csrf).json(&body);
        let held = answer(held.send().await.unwrap()).await;
        assert_eq!(held.status, StatusCode::ACCEPTED, "{:?}", held.body);
        assert_eq!(held.body["requestedBy"]["id"], c.app.alice.id.as_str());

        // Signing out on replica 2 ends the session on every replica.
        let out = c.http.post(c.url(1, "/api/v1/auth/logout")).header(COOKIE, &cookie).header("X-CSRF-Token", &csrf);
        assert_eq!(out.send().await.unwrap().status(), StatusCode::NO_CONTENT);
        for node in 0..REPLICAS {
            let me = answer(c.http.get(c.url(node, "/api/v1/me")).header(COOKIE, &cookie).send().await.unwrap()).await;
            assert_problem(me.status, &me.body, 401, "unauthenticated");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_sign_ins_on_every_replica_count_towards_one_limit() {
    with_cluster("failed_sign_ins_on_every_replica_count_towards_one_limit", Setup::protected(), |c| async move {
        // Five failures, spread so that no replica sees more than two of them.
        for attempt in 0..5 {
            let (failed, _) = login(&c, attempt % REPLICAS, "carol", "not her password").await;
            assert_problem(failed.status, &failed.body, 401, "unauthenticated");
        }
        for node in 0..REPLICAS {
            let (refused, cookie) = login(&c, node, "carol", PASSWORD).await;
            assert_problem(refused.status, &refused.body, 429, "too_many_attempts");
            assert!(cookie.is_none());
        }
        let (_, failures) = c.get(1, &c.app.admin, "/api/v1/audit?action=signInFailed&limit=50").await;
        assert_eq!(failures["value"].as_array().unwrap().len(), 5, "{failures}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_concurrent_guesses_over_three_replicas_check_at_most_the_limit() {
    with_cluster(
        "forty_concurrent_guesses_over_three_replicas_check_at_most_the_limit",
        Setup::protected(),
        |c| async move {
            let guesses = (0..40).map(|i| {
                let c = &c;
                async move { login(c, i % REPLICAS, "carol", &format!("guess number {i}")).await.0 }
            });
            let answers = futures::future::join_all(guesses).await;
            for a in &answers {
                assert!([401, 429, 503].contains(&a.status.as_u16()), "{a:?}");
            }
            let checked = answers.iter().filter(|a| a.status == StatusCode::UNAUTHORIZED).count();
            assert!(checked <= 5, "{checked} of 40 guesses were checked; the limit is 5");
            let (_, failures) = c.get(1, &c.app.admin, "/api/v1/audit?action=signInFailed&limit=100").await;
            assert_eq!(failures["value"].as_array().unwrap().len(), checked, "{failures}");
            for node in 0..REPLICAS {
                let (refused, _) = login(&c, node, "carol", PASSWORD).await;
                assert_problem(refused.status, &refused.body, 429, "too_many_attempts");
            }
        },
    )
    .await;
}
