//! The admin center's forms: every one refuses a post without the session's CSRF token.

use crate::harness::*;
use reqwest::redirect::Policy;
use reqwest::StatusCode;

/// A path of `web::form_paths` with its parameters filled in. The CSRF layer answers before
/// any handler runs, so the values need only route.
fn concrete(path: &str) -> String {
    path.replace("{type}", "app")
        .replace("{action}", "approve")
        .replace("{what}", "credentials")
        .replace("{id}", "019a0000-0000-7000-8000-000000000000")
}

/// The session's CSRF token, from a form on a page.
fn csrf_token(page: &str) -> String {
    let field = r#"name="csrf" value=""#;
    let start = page.find(field).map(|at| at + field.len()).expect("a page with a form");
    page[start..].split('"').next().unwrap_or_default().to_owned()
}

backend_tests!(every_web_form_refuses_a_post_without_the_session_csrf_token);
async fn every_web_form_refuses_a_post_without_the_session_csrf_token(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let client = reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap();
        let signed_in = app.web_sign_in(&client, "alice", PASSWORD).await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER, "the sign-in page's own form signs in");
        let paths = countersign_server::web::form_paths();
        assert!(paths.len() >= 20, "{paths:?}");
        for path in paths {
            let url = format!("{}{}", app.base, concrete(path));
            for form in [vec![], vec![("csrf", "guess"), ("justification", "forged")]] {
                let response = client.post(&url).form(&form).send().await.unwrap();
                assert_eq!(response.status(), StatusCode::FORBIDDEN, "POST {path} with {form:?}");
                let page = response.text().await.unwrap();
                assert!(page.contains("csrf_failed"), "POST {path}: {page}");
            }
        }
        let account = client.get(format!("{}/account", app.base)).send().await.unwrap().text().await.unwrap();
        let out =
            client.post(format!("{}/logout", app.base)).form(&[("csrf", csrf_token(&account))]).send().await.unwrap();
        assert_eq!(out.status(), StatusCode::SEE_OTHER, "the session's own token passes");
        assert_eq!(out.headers()["location"], "/login");
    })
    .await;
}

/// The success banner's text, if the page has one.
fn banner(page: &str) -> Option<String> {
    let start = page.find(r#"id="notice">"#)? + r#"id="notice">"#.len();
    Some(page[start..].split("</p>").next().unwrap_or_default().to_owned())
}

backend_tests!(the_success_banner_says_only_what_the_server_did_once_on_any_replica);
async fn the_success_banner_says_only_what_the_server_did_once_on_any_replica(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let client = reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap();
        let signed_in = app.web_sign_in(&client, "alice", PASSWORD).await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        let get = |base: String, path: String| {
            let client = client.clone();
            async move {
                let response = client.get(format!("{base}{path}")).send().await.unwrap();
                assert_eq!(response.status(), StatusCode::OK, "GET {path}");
                response.text().await.unwrap()
            }
        };
        // A link in a phishing mail: no page puts its words in the banner.
        let forged = "notice=%3Cscript%3Ealert(1)%3C/script%3EYour+approval+was+recorded";
        for path in ["/", "/requests", "/account", "/policies", "/groups", "/roles", "/accounts", "/notifications"] {
            let page = get(app.base.clone(), format!("{path}?{forged}")).await;
            assert_eq!(banner(&page), None, "GET {path}?{forged}");
            assert!(!page.contains("Your approval was recorded") && !page.contains("alert(1)"), "GET {path}");
        }
        let app_id =
            app.samples.iter().find(|(t, _)| *t == countersign_core::profile::ResourceType::App).unwrap().1.clone();
        let page = get(app.base.clone(), format!("/resources/app/{app_id}?{forged}")).await;
        assert_eq!(banner(&page), None);

        // An action: the redirect carries no notice; the next page shows the server's, once,
        // and a link's still nothing.
        let account = get(app.base.clone(), "/account".into()).await;
        let saved = client
            .post(format!("{}/account/notifications", app.base))
            .form(&[("csrf", csrf_token(&account)), ("email", "alice@example.test".into())])
            .send()
            .await
            .unwrap();
        assert_eq!(saved.status(), StatusCode::SEE_OTHER);
        let location = saved.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(location, "/account", "nothing for a link to imitate");
        // Another replica on the same database serves the next page.
        let replica = app.start_replica(2).await;
        let next = get(replica.base.clone(), format!("{location}?{forged}")).await;
        assert_eq!(banner(&next).as_deref(), Some("Your notification settings were saved."), "once");
        let again = get(app.base.clone(), location.clone()).await;
        assert_eq!(banner(&again), None, "and not again");

        // A request action names what happened.
        let (s, held) = app.update_app(&app.alice, &app_id, "9.9").await;
        assert_eq!(s, StatusCode::ACCEPTED, "{held}");
        let rid = held["id"].as_str().unwrap();
        let page = get(app.base.clone(), format!("/requests/{rid}")).await;
        let cancelled = client
            .post(format!("{}/requests/{rid}/cancel", app.base))
            .form(&[("csrf", csrf_token(&page))])
            .send()
            .await
            .unwrap();
        assert_eq!(cancelled.status(), StatusCode::SEE_OTHER);
        let shown = get(app.base.clone(), format!("/requests/{rid}")).await;
        assert_eq!(banner(&shown).as_deref(), Some("You cancelled the request."));
        assert_eq!(banner(&get(app.base.clone(), format!("/requests/{rid}")).await), None);
    })
    .await;
}
