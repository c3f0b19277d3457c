//! Starts a real Countersign server on `127.0.0.1:0` over a real database (see
//! `countersign_store::testing`: SQLite always, PostgreSQL when configured). Time comes from a
//! `TestClock` the test moves by hand.

use countersign_core::permission::BUILT_IN_ROLES;
use countersign_core::policy::Completion;
use countersign_core::profile::{ProfileType, ResourceType};
use countersign_core::{Clock, Millis};
use countersign_server::{AppState, ServerConfig};
#[allow(unused_imports)] // for the e2e and graph tests, not the browser and replica ones
pub use countersign_store::backend_tests;
pub use countersign_store::testing::TestBackend;
use countersign_store::testing::TestDatabase;
use countersign_store::{Actor, PolicyPlan, Store, StoreOptions, TenantPlan};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

pub const START: Millis = 1_800_000_000_000;
pub const DAY: Millis = countersign_core::MILLIS_PER_DAY;
pub const PASSWORD: &str = "correct horse battery";

pub struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

impl TestClock {
    pub fn advance(&self, ms: Millis) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

/// Runs `test` on a fresh tenant made by `setup` on `backend` (one test per backend is declared
/// with `backend_tests!`), then drops its database.
pub async fn with_app<F, Fut>(backend: TestBackend, setup: Setup, test: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    run(TestApp::start(backend, &setup).await, test).await
}

/// [`with_app`], with the server's settings adjusted first.
pub async fn with_configured_app<F, Fut>(
    backend: TestBackend,
    setup: Setup,
    configure: impl FnOnce(&mut ServerConfig),
    test: F,
) where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    run(TestApp::start_with(backend, &setup, configure).await, test).await
}

async fn run<F, Fut>(mut app: TestApp, test: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    // The test may capture only some fields of `app`; the database must outlive it.
    let database = app.database.take().expect("database");
    test(app).await;
    database.drop_database().await;
}

/// Which access policies the tenant starts with.
#[derive(Clone)]
pub struct Setup {
    pub policies: Vec<(ProfileType, i64, Completion)>,
}

impl Setup {
    /// An access policy for every profile type, one approval, requester completes.
    pub fn protected() -> Self {
        Setup { policies: ProfileType::ALL.iter().map(|p| (*p, 1, Completion::Requester)).collect() }
    }

    pub fn unprotected() -> Self {
        Setup { policies: vec![] }
    }

    pub fn only(policies: &[(ProfileType, i64, Completion)]) -> Self {
        Setup { policies: policies.to_vec() }
    }
}

/// One account's API access.
#[derive(Clone)]
pub struct User {
    pub id: String,
    pub token: String,
}

pub struct TestApp {
    pub base: String,
    pub store: Store,
    pub clock: Arc<TestClock>,
    pub http: reqwest::Client,
    pub backend: TestBackend,
    pub database_url: String,
    /// alice and dave propose (Administrator); bob, carol and dave approve (Approver role);
    /// svc is a service account with Administrator permissions, also in the approver group.
    pub admin: User,
    pub alice: User,
    pub bob: User,
    pub carol: User,
    pub dave: User,
    pub svc: User,
    pub operators_group: String,
    pub approvers_group: String,
    pub empty_group: String,
    /// One object of each document type and one device, made before the policies.
    pub samples: Vec<(ResourceType, String)>,
    /// The audit key file's keys and the checkpoint settings, shared by every replica.
    pub keyring: countersign_store::AuditKeyring,
    pub audit: countersign_server::audit::AuditSettings,
    /// Holds the audit key file and the checkpoint file, outside the database.
    _audit_dir: std::sync::Arc<tempfile::TempDir>,
    database: Option<TestDatabase>,
}

fn role(name: &str) -> &'static str {
    BUILT_IN_ROLES.iter().find(|r| r.display_name == name).map(|r| r.id).unwrap()
}

impl TestApp {
    pub async fn start(backend: TestBackend, setup: &Setup) -> TestApp {
        Self::start_with(backend, setup, |_| {}).await
    }

    /// Like [`TestApp::start`], with the server's settings adjusted first.
    pub async fn start_with(backend: TestBackend, setup: &Setup, configure: impl FnOnce(&mut ServerConfig)) -> TestApp {
        // Server-side warnings and errors appear in the failing test's output.
        let _ = tracing_subscriber::fmt().with_env_filter("warn").with_test_writer().try_init();
        let database = TestDatabase::create(backend).await;
        let database_url = database.url.clone();
        // The audit key file outside the database, as `countersign serve` keeps it.
        let audit_dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
        let trail =
            countersign_server::audit::AuditTrail::open(&audit_dir.path().join("test.audit-key"), START).unwrap();
        let audit = countersign_server::audit::AuditSettings {
            signer: trail.signer.clone(),
            checkpoint_file: audit_dir.path().join("test.audit-checkpoints"),
            checkpoint_entries: 1000,
            checkpoint_interval: std::time::Duration::from_secs(60),
        };
        let keyring = trail.keyring;
        let options = StoreOptions { max_connections: 5, audit_keys: Some(keyring.clone()), ..StoreOptions::default() };
        let store = Store::connect(&database_url, options).await.expect("connect");
        countersign_server::audit::start(&store, &audit, START).await.unwrap();
        let clock = Arc::new(TestClock(AtomicI64::new(START)));
        store.seed_built_in_roles(START).await.unwrap();
        let hash = countersign_server::auth::hash_password(PASSWORD).unwrap();
        assert!(store.bootstrap_admin("admin", &hash, START).await.unwrap());

        let mut plan = TenantPlan::new();
        let alice = plan.human("alice", "alice", None, Some(&hash));
        let bob = plan.human("bob", "bob", None, Some(&hash));
        let carol = plan.human("carol", "carol", None, Some(&hash));
        let dave = plan.human("dave", "dave", None, Some(&hash));
        let svc = plan.service("svc", "svc");
        let operators_group = plan.group("Operators", "", &[&alice, &dave, &svc]);
        let approvers_group = plan.group("Approvers", "", &[&bob, &carol, &dave, &svc]);
        let empty_group = plan.group("Empty", "", &[] as &[&str]);
        plan.role_assignment("Operators", role("Administrator"), &[&operators_group]);
        plan.role_assignment("Approvers", role("Approver"), &[&approvers_group]);
        let ids = vec![alice, bob, carol, dave, svc];
        // One object of each document type, and a device, made before any policy protects them.
        let mut samples = Vec::new();
        for resource_type in ResourceType::DOCUMENT_TYPES {
            let document = serde_json::Map::from_iter([("v".to_owned(), json!(1))]);
            samples
                .push((resource_type, plan.document(resource_type, &format!("sample {resource_type}"), "", document)));
        }
        samples.push((ResourceType::Device, plan.device("PC-0", "Windows 11", None)));
        for (profile_type, required, completion) in &setup.policies {
            plan.policy(PolicyPlan {
                required_approvals: *required,
                completion: *completion,
                ..PolicyPlan::new(&format!("{profile_type} policy"), *profile_type, &[&approvers_group])
            });
        }
        assert!(store.seed(plan.into_proposals(), START).await.unwrap());

        let admin_account = store.account_by_username("admin").await.unwrap().unwrap();
        let system = Actor {
            id: admin_account.id.clone(),
            name: "admin".into(),
            username: "admin".into(),
            kind: countersign_core::eligibility::AccountKind::Human,
            via: vec![],
        };
        let mut users = Vec::new();
        for (_, id) in std::iter::once(("admin".to_owned(), admin_account.id.clone()))
            .chain(["alice", "bob", "carol", "dave", "svc"].iter().map(|u| u.to_string()).zip(ids))
        {
            let token = countersign_server::auth::new_token();
            countersign_store::testing::issue_token(
                &store,
                &system,
                &id,
                "test",
                &countersign_server::auth::sha256_hex(&token),
                START,
            )
            .await
            .unwrap();
            users.push(User { id, token });
        }
        let mut users = users.into_iter();
        let mut next = || users.next().unwrap();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut config = ServerConfig {
            body_limit: 64 * 1024,
            notify_interval: std::time::Duration::from_millis(50),
            public_url: base.clone(),
            // The tests' receivers listen on loopback, which channels may not reach by default.
            notify_allow_networks: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
            event_credential_check: std::time::Duration::from_millis(200),
            audit: Some(audit.clone()),
            ..ServerConfig::default()
        };
        configure(&mut config);
        let state = AppState::new(store.clone(), clock.clone(), config);
        tokio::spawn(countersign_server::serve(listener, state, std::future::pending()));
        TestApp {
            base,
            store,
            clock,
            http: reqwest::Client::builder().cookie_store(true).build().unwrap(),
            backend,
            database_url,
            admin: next(),
            alice: next(),
            bob: next(),
            carol: next(),
            dave: next(),
            svc: next(),
            operators_group,
            approvers_group,
            empty_group,
            samples,
            keyring,
            audit,
            _audit_dir: audit_dir,
            database: Some(database),
        }
    }

    /// Store options for another connection to this app's database, with its audit keys.
    pub fn store_options(&self, max_connections: u32) -> StoreOptions {
        StoreOptions { max_connections, audit_keys: Some(self.keyring.clone()), ..StoreOptions::default() }
    }

    pub async fn call(&self, user: &User, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&user.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn get(&self, user: &User, path: &str) -> (StatusCode, Value) {
        self.call(user, Method::GET, path, None).await
    }

    pub async fn post(&self, user: &User, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(user, Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, user: &User, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(user, Method::PUT, path, Some(body)).await
    }

    /// Creates an app (through approval when apps are protected) and returns its id.
    pub async fn create_app(&self, name: &str) -> String {
        let policies = self.store.policies().await.unwrap();
        let protected = policies.iter().any(|p| p.profile_type == ProfileType::App);
        let (status, body) = self
            .post(
                &self.admin,
                "/api/v1/resources/app",
                json!({"name": name, "document": {"version": "1.0"}, "justification": "new app"}),
            )
            .await;
        if !protected {
            assert_eq!(status, StatusCode::CREATED, "{body}");
            return body["id"].as_str().unwrap().to_owned();
        }
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let request = body["id"].as_str().unwrap().to_owned();
        let mut decided = self.approve(&self.bob, &request).await;
        if decided["status"] == "needsApproval" {
            decided = self.approve(&self.carol, &request).await;
        }
        if decided["status"] == "approved" {
            let (status, done) =
                self.post(&self.admin, &format!("/api/v1/requests/{request}/complete"), json!({})).await;
            assert_eq!(status, StatusCode::OK, "{done}");
            decided = done;
        }
        assert_eq!(decided["status"], "completed", "{decided}");
        decided["objectId"].as_str().unwrap().to_owned()
    }

    pub async fn approve(&self, user: &User, request: &str) -> Value {
        let (status, body) =
            self.post(user, &format!("/api/v1/requests/{request}/approve"), json!({"notes": "looks right"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Proposes an update of an app as `user`; returns the HTTP answer.
    pub async fn update_app(&self, user: &User, app: &str, version: &str) -> (StatusCode, Value) {
        self.put(
            user,
            &format!("/api/v1/resources/app/{app}"),
            json!({"name": "App", "document": {"version": version}, "justification": "upgrade"}),
        )
        .await
    }

    pub async fn audit_len(&self) -> i64 {
        self.store.audit_count().await.unwrap()
    }

    /// Audit entries with this action on this target.
    pub async fn audit_actions(&self, action: &str, target: &str) -> usize {
        let (status, body) =
            self.get(&self.admin, &format!("/api/v1/audit?action={action}&target={target}&limit=500")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["value"].as_array().unwrap().len()
    }
}

/// A browser-like API session: the cookie, and the CSRF token its writes send.
pub struct Session {
    client: reqwest::Client,
    base: String,
    csrf: String,
}

impl Session {
    pub async fn call(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or_default())
    }
}

pub fn assert_problem(status: StatusCode, body: &Value, expected_status: u16, code: &str) {
    assert_eq!(status.as_u16(), expected_status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], expected_status, "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
    assert!(body["type"].as_str().is_some() && body["title"].as_str().is_some(), "{body}");
}

/// Another replica of a `TestApp`'s server, for the replica tests: its own connection pool on the
/// same database, its own listener, the same clock (one deployment shares one time).
#[allow(dead_code)] // used by the replicas test binary, not by this one
pub struct Replica {
    pub base: String,
    pub store: Store,
}

#[allow(dead_code)] // used by the replicas test binary, not by this one
impl TestApp {
    /// Starts another replica on this app's database, as `countersign serve` on a second
    /// machine would: connect (which migrates), then serve.
    pub async fn start_replica(&self, max_connections: u32) -> Replica {
        let store =
            Store::connect(&self.database_url, self.store_options(max_connections)).await.expect("connect a replica");
        countersign_server::audit::start(&store, &self.audit, self.clock.now()).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let config = ServerConfig { body_limit: 64 * 1024, audit: Some(self.audit.clone()), ..ServerConfig::default() };
        let state = AppState::new(store.clone(), self.clock.clone(), config);
        tokio::spawn(countersign_server::serve(listener, state, std::future::pending()));
        Replica { base, store }
    }

    /// The test database, for a test that drops it itself (as `with_app` does).
    pub fn take_database(&mut self) -> Option<TestDatabase> {
        self.database.take()
    }
}

#[allow(dead_code)] // used by the e2e tests, not by every test binary that includes the harness
impl TestApp {
    /// Signs in through the sign-in page as a browser does: opens the page (which gives
    /// `client` its form cookie and the form its token), then posts the form.
    pub async fn web_sign_in(&self, client: &reqwest::Client, username: &str, password: &str) -> reqwest::Response {
        let page = client.get(format!("{}/login", self.base)).send().await.unwrap().text().await.unwrap();
        let field = r#"name="csrf" value=""#;
        let at = page.find(field).expect("the sign-in form carries a token") + field.len();
        let token = page[at..].split('"').next().unwrap_or_default().to_owned();
        client
            .post(format!("{}/login", self.base))
            .form(&[("csrf", token.as_str()), ("username", username), ("password", password)])
            .send()
            .await
            .unwrap()
    }
}

#[allow(dead_code)] // used by the e2e tests, not by every test binary that includes the harness
impl Session {
    /// Signs `username` in with `password`; the answer is `(status, body)` of the sign-in.
    pub async fn sign_in_with(app: &TestApp, username: &str, password: &str) -> (Session, StatusCode, Value) {
        let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let response = client
            .post(format!("{}/api/v1/auth/login", app.base))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        let csrf = body["csrfToken"].as_str().unwrap_or_default().to_owned();
        (Session { client, base: app.base.clone(), csrf }, status, body)
    }

    /// Signs in an account another account created with the harness password, and replaces that
    /// password at once (R16: nothing else is allowed before).
    pub async fn first_sign_in(app: &TestApp, username: &str) -> Session {
        let (session, status, body) = Session::sign_in_with(app, username, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        session.choose_password(PASSWORD, &format!("{username} chose this one")).await;
        session
    }

    /// A request of this session (its cookie, and the CSRF token a write needs).
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base)).header("x-csrf-token", &self.csrf)
    }

    /// R16's first sign-in: replaces a password someone else set with one of the account's own.
    pub async fn choose_password(&self, current: &str, new: &str) {
        let (status, body) = self
            .call(Method::POST, "/api/v1/me/password", json!({"currentPassword": current, "newPassword": new}))
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
}
