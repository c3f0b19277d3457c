//! The `countersign` binary end to end: `serve` on a SQLite file in its working directory, the
//! client commands with a token, and `audit verify` offline on a tampered file.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_countersign");

/// A running `countersign serve`, killed on drop.
struct Server {
    child: Child,
    url: String,
    stdout: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path, args: &[&str], admin_password: Option<&str>) -> Server {
    let env: Vec<_> = admin_password.map(|password| ("COUNTERSIGN_ADMIN_PASSWORD", password)).into_iter().collect();
    serve_with_env(dir, args, &env)
}

fn serve_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
    let mut command = Command::new(BIN);
    command.current_dir(dir).arg("serve").args(["--listen", "127.0.0.1:0"]).args(args);
    command
        .env_remove("COUNTERSIGN_DATABASE_URL")
        .env_remove("COUNTERSIGN_ADMIN_PASSWORD")
        .env("COUNTERSIGN_LOG", "warn")
        .envs(env.iter().copied());
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start countersign serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        stdout.push(line.clone());
        if let Some(rest) = line.split("listening on ").nth(1) {
            let url = rest.split_whitespace().next().unwrap().to_owned();
            // Keep draining stdout so the server never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return Server { child, url, stdout };
        }
    }
    let _ = child.kill();
    let status = child.wait();
    panic!("serve exited before listening ({status:?}): {stdout:?}");
}

fn run(args: &[&str], url: &str, token: &str) -> Output {
    Command::new(BIN).args(args).env("COUNTERSIGN_URL", url).env("COUNTERSIGN_TOKEN", token).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Signs in and makes a personal API token.
async fn token_for(url: &str, username: &str, password: &str) -> String {
    let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let login: Value = client
        .post(format!("{url}/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = login["csrfToken"].as_str().unwrap_or_else(|| panic!("login failed: {login}"));
    let created: Value = client
        .post(format!("{url}/api/v1/tokens"))
        .header("X-CSRF-Token", csrf)
        .json(&json!({"displayName": "cli test"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_prints_a_one_time_password_that_signs_in() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[], None);
    let line = server.stdout.iter().position(|l| l.contains("one-time password")).expect("password announced");
    let password = server.stdout[line + 2].trim().to_owned();
    assert!(password.len() >= 32, "{:?}", server.stdout);
    assert!(
        dir.path().join("countersign.db").exists(),
        "the default database is a SQLite file in the working directory"
    );
    let token = token_for(&server.url, "admin", &password).await;
    let out = run(&["policies", "list"], &server.url, &token);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_adds_a_person_offline_who_chooses_their_password_at_first_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("countersign.db");
    let db = db.to_str().unwrap();
    let added = Command::new(BIN)
        .args(["accounts", "add", "--db", db, "--username", "erin", "--display-name", "Erin Example"])
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", text(&added.stderr));
    let printed = text(&added.stdout);
    let password = printed.lines().last().unwrap().trim().to_owned();
    assert!(printed.contains("Added erin (Erin Example)") && password.len() >= 32, "{printed}");
    let again = Command::new(BIN)
        .args(["accounts", "add", "--db", db, "--username", "erin", "--display-name", "Erin"])
        .output()
        .unwrap();
    assert!(!again.status.success() && text(&again.stderr).contains("taken"), "{}", text(&again.stderr));

    let server = serve(dir.path(), &[], Some("admin password for tests"));
    let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let login: Value = client
        .post(format!("{}/api/v1/auth/login", server.url))
        .json(&json!({"username": "erin", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(login["account"]["passwordChangeRequired"], true, "{login}");
    let changed = client
        .post(format!("{}/api/v1/me/password", server.url))
        .header("X-CSRF-Token", login["csrfToken"].as_str().unwrap())
        .json(&json!({"currentPassword": password, "newPassword": "erin chose this one"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), reqwest::StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_flow_through_the_cli_and_an_offline_audit_verify() {
    let dir = tempfile::tempdir().unwrap();
    // A checkpoint every second, so one covers the approval before the server stops.
    let env =
        [("COUNTERSIGN_ADMIN_PASSWORD", "admin password for tests"), ("COUNTERSIGN_AUDIT_CHECKPOINT_INTERVAL", "PT1S")];
    let server = serve_with_env(dir.path(), &["--demo"], &env);
    assert!(server.stdout.iter().any(|l| l.contains("Seeded the demo tenant")), "{:?}", server.stdout);
    let alice = token_for(&server.url, "alice", "countersign-demo").await;
    let bob = token_for(&server.url, "bob", "countersign-demo").await;

    let apps = run(&["resources", "list", "app", "--json"], &server.url, &alice);
    assert!(apps.status.success(), "{}", text(&apps.stderr));
    let apps: Value = serde_json::from_slice(&apps.stdout).unwrap();
    let app = apps["value"].as_array().unwrap().iter().find(|a| a["name"] == "Contoso VPN").unwrap().clone();
    let table = run(&["resources", "list", "app"], &server.url, &alice);
    assert!(text(&table.stdout).contains("Contoso VPN"));

    let held: Value = reqwest::Client::new()
        .put(format!("{}/api/v1/resources/app/{}", server.url, app["id"].as_str().unwrap()))
        .bearer_auth(&alice)
        .json(&json!({"name": "Contoso VPN", "document": {"version": "4.3.0"}, "justification": "security fix"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = held["id"].as_str().unwrap();

    let received = run(&["requests", "list", "--received"], &server.url, &bob);
    let listing = text(&received.stdout);
    assert!(
        received.status.success() && listing.contains("security fix") && listing.contains("needsApproval"),
        "{listing}"
    );

    let own = run(&["requests", "approve", id], &server.url, &alice);
    assert!(!own.status.success(), "self-approval must fail");
    assert!(
        text(&own.stderr).contains("cannot approve or reject their own request (self_approval_forbidden"),
        "{}",
        text(&own.stderr)
    );

    // R12: `show` prints the digest; an approval naming another digest is refused.
    let digest = held["changeDigest"].as_str().unwrap();
    let before_approval = text(&run(&["requests", "show", id], &server.url, &bob).stdout);
    assert!(before_approval.contains(&format!("Change (digest {digest}):")), "{before_approval}");
    let other = "0".repeat(64);
    let wrong = run(&["requests", "approve", id, "--digest", &other], &server.url, &bob);
    assert!(!wrong.status.success(), "an approval of another digest must fail");
    assert!(text(&wrong.stderr).contains("change_digest_mismatch"), "{}", text(&wrong.stderr));

    let approved = run(
        &["requests", "approve", id, "--notes", "checked the vendor advisory", "--digest", digest],
        &server.url,
        &bob,
    );
    assert!(approved.status.success(), "{}", text(&approved.stderr));
    assert!(text(&approved.stdout).contains("approved"));
    let done = run(&["requests", "complete", id, "--json"], &server.url, &alice);
    let done: Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(done["status"], "completed");
    let shown = text(&run(&["requests", "show", id], &server.url, &bob).stdout);
    assert!(
        shown.contains("~ /document/version: \"4.2.1\" → \"4.3.0\"") && shown.contains("checked the vendor advisory"),
        "{shown}"
    );
    // R16: each approver's independence of the requester; the demo's people are independent.
    assert!(shown.contains("Approvers:") && shown.contains("bob (Bob") && shown.contains(") independent"), "{shown}");
    assert!(!shown.contains("NOT INDEPENDENT"), "{shown}");
    // R20: the requester and each approver by display name and username.
    assert!(shown.contains("Requested by   Alice Requester (alice)"), "{shown}");
    assert!(shown.contains("Bob Approver (bob) approved"), "{shown}");
    assert!(listing.contains("Alice Requester (alice)"), "{listing}");
    let mine = text(&run(&["requests", "list", "--mine", "--status", "completed"], &server.url, &alice).stdout);
    assert!(mine.contains("Contoso VPN"), "{mine}");
    let policies = text(&run(&["policies", "list"], &server.url, &alice).stdout);
    assert!(policies.contains("deviceWipe"), "{policies}");

    let bad = run(&["requests", "show", "not-an-id"], &server.url, &alice);
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("invalid_id"), "{}", text(&bad.stderr));
    let unauthenticated = run(&["requests", "list"], &server.url, "cs_wrong");
    assert!(!unauthenticated.status.success());
    assert!(text(&unauthenticated.stderr).contains("unauthenticated"));
    let checkpoints = dir.path().join("countersign.db.audit-checkpoints");
    for _ in 0..100 {
        if std::fs::read_to_string(&checkpoints).is_ok_and(|file| file.contains("\"periodic\"")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let server_stdout = server.stdout.clone();
    drop(server);

    let db = dir.path().join("countersign.db");
    let db = db.to_str().unwrap();
    let ok = Command::new(BIN).args(["audit", "verify", "--db", db]).output().unwrap();
    assert!(ok.status.success(), "{}{}", text(&ok.stdout), text(&ok.stderr));
    assert!(text(&ok.stdout).starts_with("OK: "), "{}", text(&ok.stdout));
    assert!(text(&ok.stdout).contains("keyed links checked"), "{}", text(&ok.stdout));
    let public_key = Command::new(BIN).args(["audit", "public-key", "--db", db]).output().unwrap();
    let public_key = text(&public_key.stdout).trim().to_owned();
    assert!(server_stdout.iter().any(|line| line.contains(&public_key)), "first start prints the public key");

    // The red team's rewrite: an approval's approver and notes changed in the file, every later
    // hash and the head recomputed. No secret is needed for that, and none was used.
    rewrite_entry(db, "approved", "checked the vendor advisory", "rubber-stamped").await;
    let broken = Command::new(BIN).args(["audit", "verify", "--db", db]).output().unwrap();
    assert_eq!(broken.status.code(), Some(1), "{}{}", text(&broken.stdout), text(&broken.stderr));
    let report = text(&broken.stdout);
    assert!(report.starts_with("REWRITTEN: audit entry "), "{report}");
    assert!(report.contains("recomputed without the audit key"), "{report}");

    // An auditor with the public key and the exported checkpoints alone finds it too.
    let key_file = dir.path().join("countersign.db.audit-key");
    let exported = dir.path().join("exported-checkpoints.jsonl");
    std::fs::copy(&checkpoints, &exported).unwrap();
    std::fs::rename(&key_file, dir.path().join("elsewhere")).unwrap();
    let without = Command::new(BIN).args(["audit", "verify", "--db", db]).output().unwrap();
    assert!(text(&without.stderr).contains("--public-key"), "{}", text(&without.stderr));
    let offline = Command::new(BIN)
        .args(["audit", "verify", "--db", db, "--public-key", &public_key])
        .args(["--checkpoints", exported.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(offline.status.code(), Some(1), "{}{}", text(&offline.stdout), text(&offline.stderr));
    assert!(text(&offline.stdout).contains("checkpoint"), "{}", text(&offline.stdout));
}

/// What someone with write access to the SQLite file can do: change `from` to `to` in the first
/// entry whose action is `action`, then recompute the public chain after it and the head.
async fn rewrite_entry(db: &str, action: &str, from: &str, to: &str) {
    use sqlx::{Connection, Executor, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&format!("sqlite://{db}")).await.unwrap();
    conn.execute("DROP TRIGGER audit_log_no_update").await.unwrap();
    let rows = sqlx::query("SELECT seq, action, prev_hash, entry FROM audit_log ORDER BY seq")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let mut prev: Option<String> = None;
    let mut rewriting = false;
    for row in rows {
        let (seq, entry_action): (i64, String) = (row.get("seq"), row.get("action"));
        let mut entry: String = row.get("entry");
        if !rewriting && entry_action == action && entry.contains(from) {
            entry = entry.replace(from, to);
            rewriting = true;
        }
        if rewriting {
            let prev_hash = prev.clone().unwrap_or_else(|| row.get("prev_hash"));
            let hash = hex::encode(countersign_core::audit::chain_hash(&prev_hash, entry.as_bytes()));
            sqlx::query("UPDATE audit_log SET entry = $1, prev_hash = $2, hash = $3 WHERE seq = $4")
                .bind(&entry)
                .bind(&prev_hash)
                .bind(&hash)
                .bind(seq)
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::query("UPDATE audit_head SET hash = $1").bind(&hash).execute(&mut conn).await.unwrap();
            prev = Some(hash);
        }
    }
    assert!(rewriting, "no {action} entry holds {from}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reads_countersign_toml_a_secret_file_and_warns_about_a_mistyped_variable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("countersign.toml"), "admin_username = \"root\"\ndatabase_url = \"state.db\"\n")
        .unwrap();
    std::fs::write(dir.path().join("admin-password"), "password from a secret file\n").unwrap();
    let server = serve_with_env(
        dir.path(),
        &[],
        &[("COUNTERSIGN_ADMIN_PASSWORD_FILE", "admin-password"), ("COUNTERSIGN_SECURE_COOKIE", "true")],
    );
    assert!(
        server.stdout.iter().any(|l| l.contains("COUNTERSIGN_SECURE_COOKIE is not a Countersign setting")),
        "{:?}",
        server.stdout
    );
    assert!(server.stdout.iter().any(|l| l.contains("'root' with the configured password")), "{:?}", server.stdout);
    assert!(dir.path().join("state.db").exists(), "database_url from countersign.toml");
    let token = token_for(&server.url, "root", "password from a secret file").await;
    let out = run(&["policies", "list"], &server.url, &token);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// Whether `out` holds a character a terminal would not show as itself (a line break aside).
fn has_hidden(out: &str) -> bool {
    out.chars().any(|c| c != '\n' && countersign_core::text::is_hidden(c))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_justification_cannot_rewrite_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &["--demo"], Some("admin password for tests"));
    let alice = token_for(&server.url, "alice", "countersign-demo").await;
    let bob = token_for(&server.url, "bob", "countersign-demo").await;
    let apps = run(&["resources", "list", "app", "--json"], &server.url, &alice);
    let apps: Value = serde_json::from_slice(&apps.stdout).unwrap();
    let app = apps["value"].as_array().unwrap().iter().find(|a| a["name"] == "Contoso VPN").unwrap().clone();
    // Erase the line, return to its start, write a line of its own, and reverse what follows.
    let justification = "security fix\u{1b}[2K\rApproved by the CISO\nline two \u{202e}exe.txt";
    let put = |justification: &str| {
        reqwest::Client::new()
            .put(format!("{}/api/v1/resources/app/{}", server.url, app["id"].as_str().unwrap()))
            .bearer_auth(&alice)
            .json(&json!({"name": "Contoso VPN", "document": {"version": "4.3.0"}, "justification": justification}))
            .send()
    };
    // The escape is refused as input (issue 15) ...
    let refused: Value = put(justification).await.unwrap().json().await.unwrap();
    assert_eq!(refused["code"], "input_limit", "{refused}");
    let held: Value = put("security fix").await.unwrap().json().await.unwrap();
    let id = held["id"].as_str().unwrap_or_else(|| panic!("{held}"));
    // ... so someone who can write the database plants it, and the terminal must still be safe.
    {
        use sqlx::{Connection, Executor};
        sqlx::any::install_default_drivers();
        let db = dir.path().join("countersign.db");
        let mut conn = sqlx::AnyConnection::connect(&format!("sqlite://{}", db.to_str().unwrap())).await.unwrap();
        let sql = format!("UPDATE requests SET justification = '{justification}' WHERE id = '{id}'");
        conn.execute(sql.as_str()).await.unwrap();
    }

    let listed = run(&["requests", "list", "--received"], &server.url, &bob);
    let listing = text(&listed.stdout);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    assert!(!has_hidden(&listing), "{listing:?}");
    assert!(listing.contains("security fix\\u{1b}[2K\\u{d}Approved by the CISO\\u{a}line"), "{listing}");

    let shown = text(&run(&["requests", "show", id], &server.url, &bob).stdout);
    assert!(!has_hidden(&shown), "{shown:?}");
    assert!(
        shown.contains("security fix\\u{1b}[2K\\u{d}Approved by the CISO\\u{a}line two \\u{202e}exe.txt\n"),
        "{shown}"
    );
    assert!(!shown.lines().any(|l| l.starts_with("Approved by") || l.starts_with("line two")), "{shown}");

    // --json stays JSON, and reads back to the same text.
    let json = text(&run(&["requests", "show", id, "--json"], &server.url, &bob).stdout);
    assert!(!has_hidden(&json), "{json:?}");
    let parsed: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed["justification"], justification);
}

#[test]
fn the_cli_refuses_input_past_the_limit_before_sending_it() {
    // Nothing listens on port 9: an answer that names the limit came from the CLI itself.
    let out = run(
        &["requests", "approve", "019a0000-0000-7000-8000-000000000000", "--notes", "ok\u{1b}[2J"],
        "http://127.0.0.1:9",
        "cs_token",
    );
    assert!(!out.status.success());
    let said = text(&out.stderr);
    assert!(said.contains("input_limit") && said.contains("refused before sending"), "{said}");
    assert!(!said.contains("cannot reach"), "{said}");
}

/// R21 through the CLI: on a policy that asks for a passkey, `requests approve` with a token is
/// refused, and the CLI prints the request page's link where the approver confirms it with
/// their passkey (the browser side of this hand-off is in the server's browser tests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r21_the_cli_prints_where_to_confirm_a_decision_with_a_passkey() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &["--demo"], Some("admin password for tests"));
    let alice = token_for(&server.url, "alice", "countersign-demo").await;
    let bob = token_for(&server.url, "bob", "countersign-demo").await;
    let carol = token_for(&server.url, "carol", "countersign-demo").await;
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: String, token: &str, body: Value| {
        client.request(method, format!("{}{path}", server.url)).bearer_auth(token).json(&body).send()
    };
    let policies: Value = call(reqwest::Method::GET, "/api/v1/accessPolicies".into(), &alice, json!(null))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let policy = policies["value"].as_array().unwrap().iter().find(|p| p["profileType"] == "app").unwrap().clone();
    assert_eq!(policy["stepUp"], "none", "the demo's policies keep the behaviour before R21");
    let body = json!({
        "displayName": policy["displayName"], "description": policy["description"], "profileType": "app",
        "approverGroupIds": policy["approverGroupIds"], "requiredApprovals": policy["requiredApprovals"],
        "completion": policy["completion"], "requestTtl": policy["requestTtl"], "stepUp": "passkey",
        "justification": "R21",
    });
    let path = format!("/api/v1/accessPolicies/{}", policy["id"].as_str().unwrap());
    let held: Value = call(reqwest::Method::PUT, path, &alice, body).await.unwrap().json().await.unwrap();
    let change = held["id"].as_str().unwrap().to_owned();
    for approver in [&bob, &carol] {
        let shown = run(&["requests", "show", &change, "--json"], &server.url, approver);
        let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
        if shown["status"] == "needsApproval" {
            let approved = run(&["requests", "approve", &change], &server.url, approver);
            assert!(approved.status.success(), "{}", text(&approved.stderr));
        }
    }
    let done = run(&["requests", "complete", &change], &server.url, &alice);
    assert!(done.status.success(), "{}", text(&done.stderr));

    let apps: Value =
        serde_json::from_slice(&run(&["resources", "list", "app", "--json"], &server.url, &alice).stdout).unwrap();
    let app = apps["value"].as_array().unwrap().iter().find(|a| a["name"] == "Contoso VPN").unwrap().clone();
    let path = format!("/api/v1/resources/app/{}", app["id"].as_str().unwrap());
    let body = json!({"name": "Contoso VPN", "document": {"version": "9.9.9"}, "justification": "upgrade"});
    let held: Value = call(reqwest::Method::PUT, path, &alice, body).await.unwrap().json().await.unwrap();
    let id = held["id"].as_str().unwrap();
    let refused = run(&["requests", "approve", id], &server.url, &bob);
    assert!(!refused.status.success(), "a token alone cannot approve under stepUp: passkey");
    let said = text(&refused.stderr);
    assert!(said.contains("step_up_required"), "{said}");
    assert!(said.contains(&format!("{}/requests/{id}?decide=approve", server.url)), "{said}");
}
