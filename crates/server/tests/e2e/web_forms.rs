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
        let signed_in = client
            .post(format!("{}/login", app.base))
            .form(&[("username", "alice"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER, "the login form needs no token");
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
