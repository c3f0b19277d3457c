//! Crash safety (issue 15): the real `countersign serve`, killed with SIGKILL about ten times
//! under a mixed load (submit, approve, reject, cancel, complete, group changes) and started
//! again, loses no acknowledged write and applies nothing twice, and the audit chain verifies
//! afterwards. Three replicas over one PostgreSQL database, and one server on a SQLite file.
//!
//! Every action's outcome is journaled: acknowledged (a 2xx arrived) or lost (no answer: the
//! server died under it). Afterwards the database must hold every acknowledged action exactly
//! once, and each object's history must be one unbroken chain of applied versions.

use countersign_core::permission::BUILT_IN_ROLES;
use countersign_core::policy::Completion;
use countersign_core::profile::{ProfileType, ResourceType};
use countersign_core::Clock;
use countersign_store::testing::{postgres_available, TestBackend, TestDatabase};
use countersign_store::{Actor, PolicyPlan, Store, StoreOptions, TenantPlan};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::{Connection, Row};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_countersign");
const KILLS: usize = 10;
const REQUEST_WORKERS: usize = 12;
const DIRECTORY_WORKERS: usize = 4;
const PASSWORD: &str = "crash test password";
/// Longer than any restart takes; a call that finds no server up for this long fails the test.
const NO_SERVER_LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_of_three_postgresql_replicas_under_load_loses_no_acknowledged_write() {
    if postgres_available("sigkill_of_three_postgresql_replicas_under_load_loses_no_acknowledged_write") {
        crash_run(TestBackend::Postgres, 3).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_of_a_sqlite_server_under_load_loses_no_acknowledged_write() {
    crash_run(TestBackend::Sqlite, 1).await;
}

/// One account's bearer token.
#[derive(Clone)]
struct User {
    id: String,
    token: String,
}

/// The seeded tenant: alice and dave propose, bob, carol and dave approve (dave never his own).
struct Tenant {
    alice: User,
    bob: User,
    carol: User,
    dave: User,
    admin: User,
    /// One protected app per request worker.
    apps: Vec<String>,
}

fn role(name: &str) -> &'static str {
    BUILT_IN_ROLES.iter().find(|r| r.display_name == name).map(|r| r.id).unwrap()
}

/// Seeds the tenant straight into the store, as the e2e harness does, before any server runs.
async fn seed(database_url: &str) -> Tenant {
    let store = Store::connect(database_url, StoreOptions { max_connections: 2, ..StoreOptions::default() })
        .await
        .expect("connect");
    let now = countersign_server::time::SystemClock.now();
    store.seed_built_in_roles(now).await.unwrap();
    let hash = countersign_server::auth::hash_password(PASSWORD).unwrap();
    assert!(store.bootstrap_admin("admin", &hash, now).await.unwrap());
    let mut plan = TenantPlan::new();
    let alice = plan.human("alice", "alice", None, Some(&hash));
    let bob = plan.human("bob", "bob", None, Some(&hash));
    let carol = plan.human("carol", "carol", None, Some(&hash));
    let dave = plan.human("dave", "dave", None, Some(&hash));
    let operators = plan.group("Operators", "", &[&alice, &dave]);
    let approvers = plan.group("Approvers", "", &[&bob, &carol, &dave]);
    plan.role_assignment("Operators", role("Administrator"), &[&operators]);
    plan.role_assignment("Approvers", role("Approver"), &[&approvers]);
    let apps = (0..REQUEST_WORKERS)
        .map(|w| {
            let document = serde_json::Map::from_iter([("v".to_owned(), json!(0))]);
            plan.document(ResourceType::App, &format!("crash app {w}"), "", document)
        })
        .collect();
    plan.policy(PolicyPlan {
        required_approvals: 1,
        completion: Completion::Requester,
        ..PolicyPlan::new("App policy", ProfileType::App, &[&approvers])
    });
    assert!(store.seed(plan.into_proposals(), now).await.unwrap());

    let admin = store.account_by_username("admin").await.unwrap().unwrap();
    let system = Actor {
        id: admin.id.clone(),
        name: "admin".into(),
        username: "admin".into(),
        kind: countersign_core::eligibility::AccountKind::Human,
        via: vec![],
    };
    let mut users = Vec::new();
    for id in [alice, bob, carol, dave, admin.id.clone()] {
        let token = countersign_server::auth::new_token();
        let hash = countersign_server::auth::sha256_hex(&token);
        countersign_store::testing::issue_token(&store, &system, &id, "crash", &hash, now).await.unwrap();
        users.push(User { id, token });
    }
    store.close().await;
    let mut users = users.into_iter();
    let mut next = || users.next().unwrap();
    Tenant { alice: next(), bob: next(), carol: next(), dave: next(), admin: next(), apps }
}

/// Starts `countersign serve` on a free port; returns it once it listens, with its URL. Its
/// stderr goes to `log`, which a failure message names.
fn start_server(dir: &Path, database_url: &str, log: &Path) -> (Child, String) {
    let mut command = Command::new(BIN);
    // The test's own COUNTERSIGN_* variables are not the server's settings.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("COUNTERSIGN_") {
            command.env_remove(key);
        }
    }
    let stderr = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let mut child = command
        .current_dir(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--max-connections", "5", "--db", database_url])
        .env("COUNTERSIGN_ADMIN_PASSWORD", PASSWORD)
        .env("COUNTERSIGN_LOG", "warn")
        // One key file for every replica, as a deployment shares it.
        .env("COUNTERSIGN_AUDIT_KEY_FILE", dir.join("shared.audit-key"))
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start countersign serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            let url = rest.split_whitespace().next().unwrap().to_owned();
            // Keep draining stdout so the server never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return (child, url);
        }
    }
    let _ = child.kill();
    let status = child.wait();
    panic!("serve exited before listening ({status:?}); see {}", log.display());
}

/// What the load sees of one call.
enum Reply {
    Answer {
        status: u16,
        body: Value,
    },
    /// No answer: the connection failed or broke, or the server died under the request.
    Lost,
}

/// The servers, the load's HTTP client, and what every call saw.
struct Load {
    http: reqwest::Client,
    /// Each server's URL while it is up.
    urls: Mutex<Vec<Option<String>>>,
    children: Mutex<Vec<Option<Child>>>,
    stop: AtomicBool,
    answers: AtomicUsize,
    lost: AtomicUsize,
    /// Answers of 500 and above: each is a failure of the test.
    server_errors: Mutex<Vec<String>>,
}

impl Drop for Load {
    fn drop(&mut self) {
        for child in self.children.lock().unwrap().iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Load {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// A server that is up, at random; waits while none is.
    async fn pick(&self, rng: &mut StdRng) -> String {
        let started = Instant::now();
        loop {
            let up: Vec<String> = self.urls.lock().unwrap().iter().flatten().cloned().collect();
            if !up.is_empty() {
                return up[rng.gen_range(0..up.len())].clone();
            }
            assert!(started.elapsed() < NO_SERVER_LIMIT, "no server came back up");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn call(&self, rng: &mut StdRng, user: &User, method: Method, path: &str, body: Option<Value>) -> Reply {
        let base = self.pick(rng).await;
        let mut request = self.http.request(method.clone(), format!("{base}{path}")).bearer_auth(&user.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                response.text().await.ok().map(|text| (status, text))
            }
            Err(_) => None,
        };
        let Some((status, text)) = answer else {
            self.lost.fetch_add(1, Ordering::SeqCst);
            // A server is down: give the killer a moment to bring it back.
            tokio::time::sleep(Duration::from_millis(5)).await;
            return Reply::Lost;
        };
        self.answers.fetch_add(1, Ordering::SeqCst);
        if status >= 500 {
            self.server_errors.lock().unwrap().push(format!("{method} {path}: {status} {text}"));
            return Reply::Lost;
        }
        Reply::Answer { status, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
    }

    /// A request's status, asked until some server answers.
    async fn status_of(&self, rng: &mut StdRng, user: &User, request: &str) -> String {
        loop {
            match self.call(rng, user, Method::GET, &format!("/api/v1/requests/{request}"), None).await {
                Reply::Answer { status: 200, body } => return body["status"].as_str().unwrap().to_owned(),
                Reply::Answer { status, body } => panic!("GET request {request}: {status} {body}"),
                Reply::Lost => {}
            }
        }
    }
}

/// One action of the load.
#[derive(Debug, Clone)]
enum Action {
    /// The request's id is known only when the submission was acknowledged.
    Submit {
        object: String,
        request: Option<String>,
    },
    Approve {
        request: String,
        approver: String,
    },
    Reject {
        request: String,
        approver: String,
    },
    Cancel {
        request: String,
    },
    Complete {
        request: String,
    },
    /// The group's id is known only when the creation was acknowledged.
    CreateGroup {
        name: String,
        group: Option<String>,
    },
    /// A rename or a new description; `version` is the one the answer reported.
    ChangeGroup {
        group: String,
        version: Option<i64>,
    },
}

#[derive(Debug)]
struct Record {
    action: Action,
    acknowledged: bool,
}

fn is_open(status: &str) -> bool {
    matches!(status, "needsApproval" | "approved")
}

/// Proposes new versions of one app, over and over, and decides each proposal at random.
async fn request_worker(load: Arc<Load>, w: usize, app: String, requester: User, approvers: Vec<User>) -> Vec<Record> {
    let mut rng = StdRng::seed_from_u64(w as u64);
    let mut journal = Vec::new();
    // The open request on the app, and its status, as far as this worker knows.
    let mut open: Option<(String, String)> = None;
    let mut n = 0;
    while !load.stopped() {
        let Some((request, status)) = open.clone() else {
            n += 1;
            let body = json!({"name": format!("crash app {w}"), "document": {"v": n}, "justification": "crash test"});
            let path = format!("/api/v1/resources/app/{app}");
            match load.call(&mut rng, &requester, Method::PUT, &path, Some(body)).await {
                Reply::Answer { status: 202, body } => {
                    let id = body["id"].as_str().unwrap().to_owned();
                    let action = Action::Submit { object: app.clone(), request: Some(id.clone()) };
                    journal.push(Record { action, acknowledged: true });
                    open = Some((id, body["status"].as_str().unwrap().to_owned()));
                }
                // A submission whose answer was lost went through: R4 names it.
                Reply::Answer { status: 409, body } if body["code"] == "request_open_for_object" => {
                    let id = body["requestId"].as_str().unwrap().to_owned();
                    let status = load.status_of(&mut rng, &requester, &id).await;
                    open = is_open(&status).then_some((id, status));
                }
                Reply::Answer { status, body } => panic!("worker {w}: submit: {status} {body}"),
                Reply::Lost => journal.push(Record {
                    action: Action::Submit { object: app.clone(), request: None },
                    acknowledged: false,
                }),
            }
            continue;
        };
        let roll = rng.gen_range(0..100);
        let approver = approvers[rng.gen_range(0..approvers.len())].clone();
        let (user, verb, action) = match status.as_str() {
            "needsApproval" if roll < 60 => {
                (approver.clone(), "approve", Action::Approve { request: request.clone(), approver: approver.id })
            }
            "needsApproval" if roll < 80 => {
                (approver.clone(), "reject", Action::Reject { request: request.clone(), approver: approver.id })
            }
            "approved" if roll < 85 => (requester.clone(), "complete", Action::Complete { request: request.clone() }),
            _ => (requester.clone(), "cancel", Action::Cancel { request: request.clone() }),
        };
        let path = format!("/api/v1/requests/{request}/{verb}");
        match load.call(&mut rng, &user, Method::POST, &path, Some(json!({}))).await {
            Reply::Answer { status: 200, body } => {
                journal.push(Record { action, acknowledged: true });
                let status = body["status"].as_str().unwrap().to_owned();
                open = is_open(&status).then_some((request, status));
            }
            // Someone's lost answer already moved it on (or R16 refused this approver): look again.
            Reply::Answer { status: 409 | 403, .. } => {
                let status = load.status_of(&mut rng, &requester, &request).await;
                open = is_open(&status).then_some((request, status));
            }
            Reply::Answer { status, body } => panic!("worker {w}: {verb}: {status} {body}"),
            Reply::Lost => {
                journal.push(Record { action, acknowledged: false });
                let status = load.status_of(&mut rng, &requester, &request).await;
                open = is_open(&status).then_some((request, status));
            }
        }
    }
    journal
}

/// Creates groups and renames and redescribes them (directory changes, applied at once).
async fn directory_worker(load: Arc<Load>, w: usize, admin: User) -> Vec<Record> {
    let mut rng = StdRng::seed_from_u64(1000 + w as u64);
    let mut journal = Vec::new();
    let mut group: Option<String> = None;
    let mut n = 0;
    while !load.stopped() {
        n += 1;
        let name = format!("crash group {w}.{n}");
        let Some(id) = group.clone().filter(|_| n % 20 != 0) else {
            let body = json!({"displayName": name, "description": ""});
            match load.call(&mut rng, &admin, Method::POST, "/api/v1/groups", Some(body)).await {
                Reply::Answer { status: 201, body } => {
                    let id = body["id"].as_str().unwrap().to_owned();
                    journal.push(Record {
                        action: Action::CreateGroup { name, group: Some(id.clone()) },
                        acknowledged: true,
                    });
                    group = Some(id);
                }
                Reply::Answer { status, body } => panic!("directory worker {w}: create: {status} {body}"),
                Reply::Lost => {
                    journal.push(Record { action: Action::CreateGroup { name, group: None }, acknowledged: false })
                }
            }
            continue;
        };
        let body = if n % 2 == 0 { json!({"displayName": name}) } else { json!({"description": name}) };
        match load.call(&mut rng, &admin, Method::PATCH, &format!("/api/v1/groups/{id}"), Some(body)).await {
            Reply::Answer { status: 200, body } => {
                let version = body["version"].as_i64();
                journal.push(Record { action: Action::ChangeGroup { group: id, version }, acknowledged: true });
            }
            // A lost change whose COMMIT reached the database just before its server died lands
            // after the next change read the group: that one is refused, as it should be.
            Reply::Answer { status: 409, body } if body["code"] == "stale_object" => {}
            Reply::Answer { status, body } => panic!("directory worker {w}: change: {status} {body}"),
            Reply::Lost => {
                journal.push(Record { action: Action::ChangeGroup { group: id, version: None }, acknowledged: false })
            }
        }
    }
    journal
}

/// The two runs take turns: each is a load test, and sharing two cores would halve both.
static ONE_RUN_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn crash_run(backend: TestBackend, replicas: usize) {
    let _turn = ONE_RUN_AT_A_TIME.lock().await;
    let database = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let tenant = seed(&database.url).await;
    let log = |node: usize| -> PathBuf { dir.path().join(format!("server-{node}.log")) };

    let load = Arc::new(Load {
        http: reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap(),
        urls: Mutex::new(vec![None; replicas]),
        children: Mutex::new((0..replicas).map(|_| None).collect()),
        stop: AtomicBool::new(false),
        answers: AtomicUsize::new(0),
        lost: AtomicUsize::new(0),
        server_errors: Mutex::new(Vec::new()),
    });
    let start = |node: usize| {
        let (load, dir, url, log) = (load.clone(), dir.path().to_owned(), database.url.clone(), log(node));
        async move {
            let (child, base) = tokio::task::spawn_blocking(move || start_server(&dir, &url, &log)).await.unwrap();
            load.children.lock().unwrap()[node] = Some(child);
            load.urls.lock().unwrap()[node] = Some(base);
        }
    };
    for node in 0..replicas {
        start(node).await;
    }

    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for (w, app) in tenant.apps.iter().enumerate() {
        let (requester, approvers) = match w % 2 {
            0 => (tenant.alice.clone(), vec![tenant.bob.clone(), tenant.carol.clone(), tenant.dave.clone()]),
            _ => (tenant.dave.clone(), vec![tenant.bob.clone(), tenant.carol.clone()]),
        };
        workers.spawn(request_worker(load.clone(), w, app.clone(), requester, approvers));
    }
    for w in 0..DIRECTORY_WORKERS {
        workers.spawn(directory_worker(load.clone(), w, tenant.admin.clone()));
    }

    let mut rng = StdRng::seed_from_u64(replicas as u64);
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(700..1800))).await;
        let node = rng.gen_range(0..replicas);
        load.urls.lock().unwrap()[node] = None;
        let child = load.children.lock().unwrap()[node].take();
        if let Some(mut child) = child {
            // std's kill is SIGKILL: no shutdown, no flush, no goodbye.
            child.kill().unwrap();
            child.wait().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..300))).await;
        start(node).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    load.stop.store(true, Ordering::SeqCst);
    let mut journal = Vec::new();
    while let Some(done) = workers.join_next().await {
        journal.extend(done.unwrap());
    }
    let elapsed = started.elapsed();
    // The last crash: every server dies as it stands.
    for child in load.children.lock().unwrap().iter_mut().flatten() {
        child.kill().unwrap();
        child.wait().unwrap();
    }

    let (answers, lost) = (load.answers.load(Ordering::SeqCst), load.lost.load(Ordering::SeqCst));
    let acknowledged = journal.iter().filter(|r| r.acknowledged).count();
    eprintln!(
        "{backend:?}: {answers} answers and {lost} calls lost in {elapsed:?} over {replicas} server(s) killed {KILLS} times; \
         {acknowledged} acknowledged writes, {} lost",
        journal.len() - acknowledged
    );
    let errors = load.server_errors.lock().unwrap().clone();
    assert!(errors.is_empty(), "server errors (logs in {}): {errors:#?}", dir.path().display());
    assert!(acknowledged >= 300, "too little load to mean anything: {acknowledged} acknowledged writes");

    let key_file = dir.path().join("shared.audit-key");
    let verify = Command::new(BIN)
        .args(["audit", "verify", "--db", &database.url, "--key-file", key_file.to_str().unwrap()])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success() && report.starts_with("OK: "),
        "{report}{}",
        String::from_utf8_lossy(&verify.stderr)
    );

    let problems = check(&Database::read(&database.url).await, &journal, &tenant.apps);
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    database.drop_database().await;
}

struct RequestRow {
    object: String,
    status: String,
    before_version: i64,
    after: Value,
}

struct AuditRow {
    action: String,
    target: Option<String>,
    actor: Option<String>,
    details: Value,
}

/// What the database holds after the run, read on a connection of the test's own.
struct Database {
    requests: BTreeMap<String, RequestRow>,
    /// (request, approver) → decision
    approvals: HashMap<(String, String), String>,
    audit: Vec<AuditRow>,
    /// app → (version, document)
    apps: HashMap<String, (i64, Value)>,
    /// group → version
    groups: HashMap<String, i64>,
    group_names: Vec<String>,
}

impl Database {
    async fn read(url: &str) -> Database {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
        let json = |text: String| -> Value { serde_json::from_str(&text).unwrap() };
        let mut requests = BTreeMap::new();
        for row in sqlx::query("SELECT id, object_id, status, before_version, after_state FROM requests")
            .fetch_all(&mut conn)
            .await
            .unwrap()
        {
            let request = RequestRow {
                object: row.get(1),
                status: row.get(2),
                before_version: row.get(3),
                after: json(row.get(4)),
            };
            requests.insert(row.get(0), request);
        }
        let approvals = sqlx::query("SELECT request_id, approver_id, decision FROM approvals")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .map(|row| ((row.get(0), row.get(1)), row.get(2)))
            .collect();
        // Entries keep their details in their canonical bytes (`entry`, the array's last member);
        // those written before the keyed chain, in the `details` column.
        let audit = sqlx::query("SELECT action, target_id, actor_id, details, entry FROM audit_log ORDER BY seq")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .map(|row| {
                let entry: Option<String> = row.get(4);
                let details = match entry {
                    Some(entry) => json(json(entry)[9].as_str().unwrap().to_owned()),
                    None => json(row.get(3)),
                };
                AuditRow { action: row.get(0), target: row.get(1), actor: row.get(2), details }
            })
            .collect();
        let apps = sqlx::query("SELECT id, version, document FROM resources WHERE type = 'app'")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .map(|row| (row.get(0), (row.get(1), json(row.get(2)))))
            .collect();
        let rows =
            sqlx::query("SELECT id, version, display_name FROM directory_groups").fetch_all(&mut conn).await.unwrap();
        let groups = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
        let group_names = rows.iter().map(|row| row.get(2)).collect();
        conn.close().await.unwrap();
        Database { requests, approvals, audit, apps, groups, group_names }
    }

    fn audit_count(&self, action: &str, target: &str, actor: Option<&str>) -> usize {
        self.audit
            .iter()
            .filter(|a| a.action == action && a.target.as_deref() == Some(target))
            .filter(|a| actor.is_none() || a.actor.as_deref() == actor)
            .count()
    }
}

/// Every acknowledged action is in `db` exactly once, and nothing was applied twice. Returns
/// what is wrong, one line each.
fn check(db: &Database, journal: &[Record], apps: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut problem = |text: String| problems.push(text);

    // Each acknowledged action, against the rows and the audit log.
    for record in journal.iter().filter(|r| r.acknowledged) {
        let request_in =
            |id: &str, statuses: &[&str]| db.requests.get(id).is_some_and(|r| statuses.contains(&r.status.as_str()));
        let ok = match &record.action {
            Action::Submit { object, request: Some(id) } => {
                db.requests.get(id).is_some_and(|r| &r.object == object) && db.audit_count("created", id, None) == 1
            }
            Action::Approve { request, approver } => {
                db.approvals.get(&(request.clone(), approver.clone())).is_some_and(|d| d == "approve")
                    && request_in(request, &["approved", "completed", "cancelled"])
                    && db.audit_count("approved", request, Some(approver)) == 1
            }
            Action::Reject { request, approver } => {
                db.approvals.get(&(request.clone(), approver.clone())).is_some_and(|d| d == "reject")
                    && request_in(request, &["rejected"])
                    && db.audit_count("rejected", request, Some(approver)) == 1
            }
            Action::Cancel { request } => {
                request_in(request, &["cancelled"]) && db.audit_count("cancelled", request, None) == 1
            }
            Action::Complete { request } => {
                request_in(request, &["completed"]) && db.audit_count("completed", request, None) == 1
            }
            Action::CreateGroup { group: Some(id), .. } => db.groups.contains_key(id),
            Action::ChangeGroup { group, version: Some(version) } => db.groups.get(group).is_some_and(|v| v >= version),
            Action::Submit { request: None, .. }
            | Action::CreateGroup { group: None, .. }
            | Action::ChangeGroup { version: None, .. } => false,
        };
        if !ok {
            problem(format!("acknowledged but not in the database as answered: {:?}", record.action));
        }
    }

    // Every request, acknowledged or not: one entry for its creation and one for its end.
    for (id, request) in &db.requests {
        if db.audit_count("created", id, None) != 1 {
            problem(format!("request {id}: {} 'created' entries", db.audit_count("created", id, None)));
        }
        for end in ["rejected", "cancelled", "completed", "failed", "expired"] {
            let entries = db.audit_count(end, id, None);
            if entries != usize::from(request.status == end) {
                problem(format!("request {id} is {}: {entries} '{end}' entries", request.status));
            }
        }
        let approvals = db.approvals.keys().filter(|(r, _)| r == id).count();
        if approvals != db.audit_count("approved", id, None) + db.audit_count("rejected", id, None) {
            problem(format!("request {id}: {approvals} decisions, other audit entries"));
        }
    }

    // Each app: its completed requests applied versions 1, 2, … once each, and nothing else did.
    for app in apps {
        let Some((version, document)) = db.apps.get(app) else {
            problem(format!("app {app} is gone"));
            continue;
        };
        let mut completed: Vec<(&String, &RequestRow)> =
            db.requests.iter().filter(|(_, r)| &r.object == app && r.status == "completed").collect();
        completed.sort_by_key(|(_, r)| r.before_version);
        let versions: Vec<i64> = completed.iter().map(|(_, r)| r.before_version).collect();
        let expected: Vec<i64> = (1..*version).collect();
        if versions != expected {
            problem(format!("app {app} at version {version}: its completed requests applied at versions {versions:?}"));
        }
        if let Some((_, last)) = completed.last() {
            if &last.after["document"] != document {
                problem(format!("app {app}: {document} is not what its last completion applied: {}", last.after));
            }
        }
        let applied: Vec<&AuditRow> =
            db.audit.iter().filter(|a| a.action == "applied" && a.target.as_deref() == Some(app.as_str())).collect();
        if applied.len() != completed.len() {
            problem(format!(
                "app {app}: {} 'applied' entries for {} completed requests",
                applied.len(),
                completed.len()
            ));
        }
        for (id, _) in &completed {
            let n = applied.iter().filter(|a| a.details["requestId"].as_str() == Some(id.as_str())).count();
            if n != 1 {
                problem(format!("request {id}: applied {n} times"));
            }
        }
    }

    // Each group: one 'applied' entry per version, and at least its acknowledged changes.
    let mut changes: HashMap<&str, (usize, usize)> = HashMap::new();
    for record in journal {
        if let Action::ChangeGroup { group, .. } = &record.action {
            let (acked, lost) = changes.entry(group.as_str()).or_default();
            if record.acknowledged {
                *acked += 1;
            } else {
                *lost += 1;
            }
        }
    }
    for record in journal {
        match &record.action {
            Action::CreateGroup { group: Some(id), .. } => {
                let Some(version) = db.groups.get(id) else { continue };
                let applied = db.audit_count("applied", id, None);
                let (acked, lost) = changes.get(id.as_str()).copied().unwrap_or_default();
                let made = usize::try_from(*version - 1).unwrap();
                if applied != made + 1 || made < acked || made > acked + lost {
                    problem(format!(
                        "group {id} at version {version}: {applied} 'applied' entries, {acked} acknowledged and {lost} lost changes"
                    ));
                }
            }
            Action::CreateGroup { name, group: None } => {
                let n = db.group_names.iter().filter(|g| *g == name).count();
                if n > 1 {
                    problem(format!("group '{name}' created {n} times"));
                }
            }
            _ => {}
        }
    }
    problems
}
