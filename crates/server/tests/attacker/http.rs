//! Calls to the REST API with one credential: a bearer token, or a session opened with a
//! password (its cookie and the CSRF token its writes send).

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A signed-in session.
#[derive(Clone)]
pub struct Session {
    client: reqwest::Client,
    csrf: String,
}

/// What one call presents.
#[derive(Clone)]
pub enum Credential {
    Token(String),
    Session(Session),
}

impl Credential {
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::Token(_) => "token",
            Credential::Session(_) => "session",
        }
    }
}

/// An answer: the status and the JSON body (a string when it is not JSON).
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    /// The problem's stable `code`, if the answer is one.
    pub fn code(&self) -> Option<&str> {
        self.body.get("code").and_then(Value::as_str)
    }

    pub fn id(&self) -> Option<String> {
        self.body.get("id").and_then(Value::as_str).map(str::to_owned)
    }

    /// `status` and `code` as the trace shows them.
    pub fn summary(&self) -> String {
        match self.code() {
            Some(code) => format!("{} {code}", self.status.as_u16()),
            None => self.status.as_u16().to_string(),
        }
    }
}

/// Signs in with a password; the answer when it is refused.
pub async fn sign_in(base: &str, username: &str, password: &str) -> Result<Session, Answer> {
    let client = reqwest::Client::builder().cookie_store(true).build().expect("an HTTP client");
    let response = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("the server answers");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    match body.get("csrfToken").and_then(Value::as_str) {
        Some(csrf) if status.is_success() => Ok(Session { client, csrf: csrf.to_owned() }),
        _ => Err(Answer { status, body }),
    }
}

/// One call to `path` (under the server's base) with `credential`. Bearer calls go through
/// `bearer`, a client without cookies.
pub async fn send(
    base: &str,
    bearer: &reqwest::Client,
    credential: &Credential,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Answer {
    let url = format!("{base}{path}");
    let mut request = match credential {
        Credential::Token(token) => bearer.request(method, url).bearer_auth(token),
        Credential::Session(session) => session.client.request(method, url).header("x-csrf-token", &session.csrf),
    };
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    Answer { status, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
}
