//! `countersign`: the server (`serve`), offline admin commands (`audit verify`, `migrate`) and
//! a client for the REST API (`requests`, `policies`, `resources`).

mod client;
mod config;

use clap::{Args, Parser, Subcommand};
use client::{encode, request_details, table, with_named_requesters, Client, ClientError};
use countersign_core::{validate, Clock};
use countersign_server::audit::{AuditSettings, AuditTrail};
use countersign_server::{AppState, ServerConfig, SystemClock};
use countersign_store::{Store, StoreOptions};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "countersign",
    version,
    about = "Multi Admin Approval server: no protected change without a second, eligible administrator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Offline audit-log commands.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
    /// Offline account commands, for the server's operator.
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// Approval requests, over the API.
    Requests {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: RequestsCommand,
    },
    /// Access policies, over the API.
    Policies {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: PoliciesCommand,
    },
    /// Resources (app, script, compliancePolicy, configurationPolicy, deviceCategory, device), over the API.
    Resources {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: ResourcesCommand,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Seed the demo tenant (alice, bob, carol and an access policy per profile type).
    #[arg(long)]
    demo: bool,
    /// Configuration file [default: countersign.toml here, if present]
    #[arg(long, env = "COUNTERSIGN_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    flags: config::Flags,
}

/// The database of `migrate` and `audit verify`: `--db`, or the configuration's `database_url`.
#[derive(Args)]
struct DatabaseArgs {
    /// Database URL (sqlite://… or postgres://…) or a SQLite file path [default: countersign.db here]
    #[arg(long)]
    db: Option<String>,
    /// Configuration file [default: countersign.toml here, if present]
    #[arg(long, env = "COUNTERSIGN_CONFIG")]
    config: Option<PathBuf>,
}

impl DatabaseArgs {
    fn load(self) -> Result<config::Settings, String> {
        let flags = config::Flags { database_url: self.db, ..config::Flags::default() };
        let loaded = config::load(self.config.as_deref(), &flags)?;
        for warning in &loaded.warnings {
            eprintln!("warning: {warning}");
        }
        Ok(loaded.settings)
    }
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the audit log: every hash, every keyed link, every signed checkpoint and the head.
    /// Names the first entry that no longer fits and exits 1 if the log was rewritten.
    ///
    /// By default it uses the audit key file and the checkpoint file. An auditor without the key
    /// gives `--public-key` and the exported checkpoints (`--checkpoints`) instead.
    Verify {
        #[command(flatten)]
        database: DatabaseArgs,
        /// The audit key file [default: the `audit_key_file` setting, or beside the database]
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Checkpoints exported outside the database: a file (the checkpoint file, a SIEM's
        /// JSON or syslog lines) or an http(s) URL; may be repeated.
        #[arg(long, value_name = "FILE|URL")]
        checkpoints: Vec<String>,
        /// The Ed25519 public key checkpoints must be signed with (64 hex digits, or a file
        /// holding them); without the key file, verification needs it.
        #[arg(long, value_name = "HEX|FILE")]
        public_key: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Add a new audit key to the key file. A server started with the file links entries under
    /// it from then on, beginning with a link made under both keys; replicas still holding the
    /// old file read it again when they meet the new key.
    RotateKey {
        #[command(flatten)]
        database: DatabaseArgs,
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// Print the public key that verifies the checkpoints (give it to your auditors).
    PublicKey {
        #[command(flatten)]
        database: DatabaseArgs,
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AccountsCommand {
    /// Add a person with a one-time password set by the system, not by an account: nobody in the
    /// tenant controls them (R16), so they can approve anyone's requests once they have chosen
    /// their own password at first sign-in. Prints the one-time password.
    Add {
        #[command(flatten)]
        database: DatabaseArgs,
        #[arg(long)]
        username: String,
        #[arg(long)]
        display_name: String,
        #[arg(long)]
        email: Option<String>,
    },
}

#[derive(Args)]
struct ApiArgs {
    /// Server URL.
    #[arg(long, env = "COUNTERSIGN_URL", default_value = "http://127.0.0.1:8080", global = true)]
    url: String,
    /// API token (personal or service account).
    #[arg(long, env = "COUNTERSIGN_TOKEN", hide_env_values = true, default_value = "", global = true)]
    token: String,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum RequestsCommand {
    /// List requests (default: mine).
    List {
        #[arg(long, group = "view")]
        mine: bool,
        #[arg(long, group = "view")]
        received: bool,
        #[arg(long, group = "view")]
        all: bool,
        /// needsApproval, approved, completed, rejected, cancelled, expired or failed.
        #[arg(long)]
        status: Option<String>,
    },
    /// Show one request with its diff.
    Show { id: String },
    /// Approve a request.
    Approve {
        id: String,
        #[arg(long)]
        notes: Option<String>,
        /// The change digest `requests show` printed: the approval is refused unless the
        /// request still holds exactly that change.
        #[arg(long)]
        digest: Option<String>,
    },
    /// Reject a request.
    Reject {
        id: String,
        #[arg(long)]
        notes: Option<String>,
        /// The change digest `requests show` printed (see `approve`).
        #[arg(long)]
        digest: Option<String>,
    },
    /// Cancel your request.
    Cancel { id: String },
    /// Complete your approved request: the change is applied.
    Complete { id: String },
}

#[derive(Subcommand)]
enum PoliciesCommand {
    /// List access policies.
    List,
}

#[derive(Subcommand)]
enum ResourcesCommand {
    /// List resources of one type.
    List {
        #[arg(value_name = "TYPE")]
        resource_type: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Audit { command: AuditCommand::Verify { database, key_file, checkpoints, public_key, json } } => {
                audit_verify(&database.load()?, key_file, &checkpoints, public_key.as_deref(), json).await
            }
            Command::Audit { command: AuditCommand::RotateKey { database, key_file } } => {
                let path = key_file.unwrap_or_else(|| database.load().map(|s| s.audit_key_file()).unwrap_or_default());
                let id = countersign_server::audit::keys::rotate(&path, SystemClock.now())?;
                println!("Added audit key {id} to {}. Restart a server with it: its next entry is linked under both keys, and the other replicas follow.", path.display());
                Ok(ExitCode::SUCCESS)
            }
            Command::Audit { command: AuditCommand::PublicKey { database, key_file } } => {
                let path = key_file.unwrap_or_else(|| database.load().map(|s| s.audit_key_file()).unwrap_or_default());
                println!("{}", countersign_server::audit::keys::load(&path)?.signer.public_key().to_hex());
                Ok(ExitCode::SUCCESS)
            }
            Command::Migrate(database) => migrate(&database.load()?).await,
            Command::Accounts { command: AccountsCommand::Add { database, username, display_name, email } } => {
                add_person(&database.load()?, &username, &display_name, email.as_deref()).await
            }
            Command::Requests { api, command } => requests(api, command).await.map_err(|e| e.to_string()),
            Command::Policies { api, command: PoliciesCommand::List } => policies(api).await.map_err(|e| e.to_string()),
            Command::Resources { api, command: ResourcesCommand::List { resource_type } } => {
                resources(api, &resource_type).await.map_err(|e| e.to_string())
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(message) => {
            // A server's problem detail, or a path or name typed in: escaped like any field.
            eprintln!("error: {}", client::shown(&message));
            ExitCode::FAILURE
        }
    }
}

/// Opens the database for reading and migrating: no audit entry is written with it.
async fn open_store(settings: &config::Settings, max_connections: u32) -> Result<Store, String> {
    let options = StoreOptions { max_connections, ..StoreOptions::default() };
    Store::connect(&settings.database_url.connection_url(), options).await.map_err(|e| e.to_string())
}

/// Opens the database to write: with the audit key file (created at first start), the chain
/// keyed if it was not yet, and what the server needs to make checkpoints.
async fn open_keyed(
    settings: &config::Settings,
    max_connections: u32,
    now: countersign_core::Millis,
) -> Result<(Store, AuditSettings), String> {
    let key_file = settings.audit_key_file();
    let trail = AuditTrail::open(&key_file, now)?;
    if trail.created {
        println!(
            "Created the audit key file {} (readable by its owner only; every replica needs this file, and it belongs in no database backup).\nAudit checkpoints are signed with the Ed25519 public key:\n\n    {}\n\nGive it to your auditors: `countersign audit verify --public-key … --checkpoints …` checks the log with it.\n",
            key_file.display(),
            trail.signer.public_key().to_hex()
        );
    }
    let options = StoreOptions { max_connections, audit_keys: Some(trail.keyring), ..StoreOptions::default() };
    let store = Store::connect(&settings.database_url.connection_url(), options).await.map_err(|e| e.to_string())?;
    let audit = AuditSettings {
        signer: trail.signer,
        checkpoint_file: settings.audit_checkpoint_file(),
        checkpoint_entries: settings.audit_checkpoint_entries.max(1),
        checkpoint_interval: std::time::Duration::from_millis(settings.audit_checkpoint_interval.max(1_000) as u64),
    };
    countersign_server::audit::start(&store, &audit, now).await?;
    Ok((store, audit))
}

async fn serve(args: ServeArgs) -> Result<ExitCode, String> {
    let config::Loaded { settings, warnings } = config::load(args.config.as_deref(), &args.flags)?;
    let log_filter = tracing_subscriber::EnvFilter::try_new(&settings.log)
        .map_err(|e| format!("log: '{}' is not a tracing filter: {e}", settings.log))?;
    tracing_subscriber::fmt().with_env_filter(log_filter).init();
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    let audit_sinks = countersign_server::audit::export::AuditSink::from_all(&settings.audit_sinks)
        .map_err(|e| format!("audit_sinks: {e}"))?;
    let oidc_providers = countersign_server::sso::Provider::from_all(&settings.oidc_providers)
        .map_err(|e| format!("oidc_providers: {e}"))?;
    let database_url = SecretString::from(settings.database_url.connection_url());
    let clock = Arc::new(SystemClock);
    let now = clock.now();
    let (store, audit) = open_keyed(&settings, settings.max_connections, now).await?;
    store.seed_built_in_roles(now).await.map_err(|e| e.to_string())?;

    let admin_username = &settings.admin_username;
    let (admin_password, generated) = match settings.admin_password {
        Some(password) => (password, false),
        None => (SecretString::from(countersign_server::auth::random_secret()), true),
    };
    let admin_hash = countersign_server::auth::hash_password(admin_password.expose_secret()).map_err(|e| e.detail)?;
    if store.bootstrap_admin(admin_username, &admin_hash, now).await.map_err(|e| e.to_string())? {
        if generated {
            println!(
                "Created the Administrator account '{admin_username}' with the one-time password:\n\n    {}\n\nSign in and change it (POST /api/v1/me/password). It will not be shown again.\n",
                admin_password.expose_secret()
            );
        } else {
            println!(
                "Created the Administrator account '{admin_username}' with the configured password (admin_password)."
            );
        }
    }
    if args.demo {
        let demo_hash =
            countersign_server::auth::hash_password(countersign_server::demo::DEMO_PASSWORD).map_err(|e| e.detail)?;
        if countersign_server::demo::seed(&store, &demo_hash, now).await.map_err(|e| e.to_string())? {
            println!(
                "Seeded the demo tenant. Sign in as alice (requester), bob or carol (approvers), password '{}'.",
                countersign_server::demo::DEMO_PASSWORD
            );
        } else {
            println!(
                "Demo tenant already present (or access policies exist); not seeding. Demo password: '{}'.",
                countersign_server::demo::DEMO_PASSWORD
            );
        }
    }
    let listen = &settings.listen;
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let config = ServerConfig {
        secure_cookies: settings.secure_cookies,
        trust_forwarded_for: settings.trust_forwarded_for,
        public_url: settings.public_url.unwrap_or_else(|| format!("http://{address}")),
        smtp_url: settings.smtp_url,
        smtp_from: settings.smtp_from,
        delivery_max_age: settings.delivery_retry_window,
        reminder_lead: settings.reminder_lead,
        metrics_token: settings.metrics_token,
        notify_allow_networks: settings.notify_allow_networks,
        password_workers: settings.password_workers,
        password_queue: settings.password_queue,
        audit: Some(audit),
        audit_sinks,
        oidc_providers,
        ..ServerConfig::default()
    };
    println!(
        "Countersign is listening on http://{address} (database: {})",
        countersign_store::redact_url(database_url.expose_secret())
    );
    let state = AppState::new(store.clone(), clock, config);
    if let Some(metrics_listen) = &settings.metrics_listen {
        let metrics = tokio::net::TcpListener::bind(metrics_listen)
            .await
            .map_err(|e| format!("cannot listen on {metrics_listen} (metrics_listen): {e}"))?;
        println!("Metrics are served on http://{}/metrics", metrics.local_addr().map_err(|e| e.to_string())?);
        let server = countersign_server::serve_metrics(metrics, state.clone(), std::future::pending());
        tokio::spawn(async move {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    countersign_server::serve(listener, state, shutdown).await.map_err(|e| e.to_string())?;
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn audit_verify(
    settings: &config::Settings,
    key_file: Option<PathBuf>,
    sources: &[String],
    public_key: Option<&str>,
    as_json: bool,
) -> Result<ExitCode, String> {
    let key_file = key_file.unwrap_or_else(|| settings.audit_key_file());
    let secrets = if key_file.exists() || public_key.is_none() {
        Some(countersign_server::audit::keys::load(&key_file).map_err(|e| {
            format!("{e}\nWithout the audit key file, verify with --public-key and the exported --checkpoints.")
        })?)
    } else {
        None
    };
    let public_key = match public_key {
        Some(given) => Some(read_public_key(given)?),
        None => secrets.as_ref().map(|s| s.signer.public_key()),
    };
    let mut checkpoints = Vec::new();
    if secrets.is_some() {
        let file = settings
            .audit_checkpoint_file
            .clone()
            .unwrap_or_else(|| countersign_server::audit::keys::default_checkpoint_path(&key_file));
        checkpoints.extend(countersign_server::audit::checkpoints::read_file(&file)?);
    }
    for source in sources {
        checkpoints.extend(read_checkpoints(source).await?);
    }
    let store = open_store(settings, 2).await?;
    let inputs = countersign_store::VerifyInputs { keys: secrets.as_ref().map(|s| &s.keys), public_key, checkpoints };
    let report = store.verify_audit(inputs).await.map_err(|e| e.to_string())?;
    // R21: every assertion stored with an approval, against the passkey's public key.
    let public_url = settings.public_url.clone().unwrap_or_else(|| format!("http://{}", settings.listen));
    let relying_party = countersign_server::webauthn::Relying::new(&public_url).party;
    let step_ups = store.verify_step_ups(&relying_party).await.map_err(|e| e.to_string())?;
    let step_ups_valid = step_ups.failed.is_empty();
    if as_json {
        let mut json = serde_json::to_value(&report).map_err(|e| e.to_string())?;
        if let Some(object) = json.as_object_mut() {
            object.insert("stepUps".into(), serde_json::to_value(&step_ups).map_err(|e| e.to_string())?);
        }
        println!("{}", serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?);
    } else if let Some(broken) = &report.first_broken {
        println!(
            "REWRITTEN: audit entry {} ({}) : {}. {} entries before it verified.",
            broken.seq,
            if broken.id.is_empty() { "-".to_owned() } else { client::shown(&broken.id) },
            client::shown(&broken.reason),
            report.entries_checked
        );
    } else if let Some(reason) = &report.unverifiable {
        println!("UNVERIFIABLE: {}", client::shown(reason));
    } else {
        let keyed = if report.links_checked > 0 {
            format!("{} keyed links checked", report.links_checked)
        } else {
            "no audit key: links not checked".to_owned()
        };
        println!(
            "OK: {} audit entries verified ({keyed}, {} signed checkpoints); the log is intact.",
            report.entries_checked, report.checkpoints_checked
        );
        if secrets.is_none() {
            match report.last_checkpoint {
                Some(seq) if seq < report.entries_checked as i64 => println!(
                    "Entries after {seq}, the newest checkpoint, are covered by no checkpoint; check them against your export."
                ),
                None => println!("No checkpoint was given: nothing ties this log to what was exported."),
                Some(_) => {}
            }
        }
    }
    if !as_json {
        for failed in &step_ups.failed {
            println!(
                "STEP-UP FAILS: the approval of request {} by account {}: {}",
                client::shown(&failed.request_id),
                client::shown(&failed.approver_id),
                client::shown(&failed.reason)
            );
        }
        if step_ups_valid && step_ups.checked > 0 {
            println!("OK: {} passkey assertions stored with approvals verify (R21).", step_ups.checked);
        }
    }
    Ok(if report.valid && step_ups_valid { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// A public key given as hex, or the file holding it.
fn read_public_key(given: &str) -> Result<countersign_core::audit::PublicKey, String> {
    let text = if std::path::Path::new(given).is_file() {
        std::fs::read_to_string(given).map_err(|e| format!("cannot read {given}: {e}"))?
    } else {
        given.to_owned()
    };
    countersign_core::audit::PublicKey::from_hex(&text).map_err(|e| format!("--public-key: {e}"))
}

/// Checkpoints from a file or an http(s) URL.
async fn read_checkpoints(source: &str) -> Result<Vec<countersign_core::audit::Checkpoint>, String> {
    let text = if source.starts_with("http://") || source.starts_with("https://") {
        let response = reqwest::get(source).await.map_err(|e| format!("--checkpoints {source}: {e}"))?;
        let response = response.error_for_status().map_err(|e| format!("--checkpoints {source}: {e}"))?;
        response.text().await.map_err(|e| format!("--checkpoints {source}: {e}"))?
    } else {
        std::fs::read_to_string(source).map_err(|e| format!("--checkpoints: cannot read {source}: {e}"))?
    };
    countersign_core::audit::parse_checkpoints(&text).map_err(|e| format!("--checkpoints {source}: {e}"))
}

async fn migrate(settings: &config::Settings) -> Result<ExitCode, String> {
    open_store(settings, 2).await?;
    println!("Migrations applied to {}.", countersign_store::redact_url(&settings.database_url.connection_url()));
    Ok(ExitCode::SUCCESS)
}

async fn add_person(
    settings: &config::Settings,
    username: &str,
    display_name: &str,
    email: Option<&str>,
) -> Result<ExitCode, String> {
    let now = SystemClock.now();
    let (store, _) = open_keyed(settings, 2, now).await?;
    let password = countersign_server::auth::random_secret();
    let hash = countersign_server::auth::hash_password(&password).map_err(|e| e.detail)?;
    let account = store.add_person(username, display_name, email, &hash, now).await.map_err(|e| e.to_string())?;
    println!(
        "Added {} ({}), id {}.",
        client::shown(&account.username),
        client::shown(&account.display_name),
        client::shown(&account.id)
    );
    println!("One-time password (give it to them in person; they choose their own at first sign-in):");
    println!("{password}");
    Ok(ExitCode::SUCCESS)
}

fn print(api: &ApiArgs, value: &Value, human: impl FnOnce(&Value) -> String) {
    if api.json {
        println!("{}", client::json_for_terminal(&serde_json::to_string_pretty(value).unwrap_or_default()));
    } else {
        println!("{}", human(value));
    }
}

const REQUEST_COLUMNS: &[(&str, &str)] = &[
    ("Id", "/id"),
    ("Requested on", "/requestedAt"),
    ("Name", "/objectName"),
    ("Type", "/resourceType"),
    ("Operation", "/operation"),
    ("Justification", "/justification"),
    ("Requested by", "/requestedBy/named"),
    ("Status", "/status"),
];

async fn requests(api: ApiArgs, command: RequestsCommand) -> Result<ExitCode, ClientError> {
    let client = Client::new(&api.url, &api.token)?;
    let id_path = |id: &str, action: &str| format!("/api/v1/requests/{}{action}", encode(id));
    let value = match command {
        RequestsCommand::List { mine: _, received, all, status } => {
            let view = if received {
                "received"
            } else if all {
                "all"
            } else {
                "mine"
            };
            let mut path = format!("/api/v1/requests?view={view}");
            if let Some(status) = status {
                path.push_str(&format!("&status={}", encode(&status)));
            }
            let page = client.get(&path).await?;
            print(&api, &page, |p| {
                let rows = with_named_requesters(p["value"].as_array().map(Vec::as_slice).unwrap_or_default());
                table(&rows, REQUEST_COLUMNS)
            });
            return Ok(ExitCode::SUCCESS);
        }
        RequestsCommand::Show { id } => client.get(&id_path(&id, "")).await?,
        RequestsCommand::Approve { id, notes, digest } => {
            validate::notes(notes.as_deref())?;
            client.post(&id_path(&id, "/approve"), json!({"notes": notes, "changeDigest": digest})).await?
        }
        RequestsCommand::Reject { id, notes, digest } => {
            validate::notes(notes.as_deref())?;
            client.post(&id_path(&id, "/reject"), json!({"notes": notes, "changeDigest": digest})).await?
        }
        RequestsCommand::Cancel { id } => client.post(&id_path(&id, "/cancel"), json!({})).await?,
        RequestsCommand::Complete { id } => client.post(&id_path(&id, "/complete"), json!({})).await?,
    };
    print(&api, &value, request_details);
    Ok(ExitCode::SUCCESS)
}

async fn policies(api: ApiArgs) -> Result<ExitCode, ClientError> {
    let client = Client::new(&api.url, &api.token)?;
    let page = client.get("/api/v1/accessPolicies").await?;
    print(&api, &page, |p| {
        table(
            p["value"].as_array().map(Vec::as_slice).unwrap_or_default(),
            &[
                ("Id", "/id"),
                ("Name", "/displayName"),
                ("Profile type", "/profileType"),
                ("Approvals", "/requiredApprovals"),
                ("Completion", "/completion"),
                ("Lifetime", "/requestTtl"),
                ("Assigned groups held", "/protectAssignedGroups"),
            ],
        )
    });
    Ok(ExitCode::SUCCESS)
}

async fn resources(api: ApiArgs, resource_type: &str) -> Result<ExitCode, ClientError> {
    let client = Client::new(&api.url, &api.token)?;
    let path = if resource_type == "device" {
        "/api/v1/devices".to_owned()
    } else {
        format!("/api/v1/resources/{}", encode(resource_type))
    };
    let page = client.get(&path).await?;
    let columns: &[(&str, &str)] = if resource_type == "device" {
        &[
            ("Id", "/id"),
            ("Name", "/name"),
            ("OS", "/os"),
            ("Owner", "/owner"),
            ("State", "/state"),
            ("Version", "/version"),
        ]
    } else {
        &[
            ("Id", "/id"),
            ("Name", "/name"),
            ("Description", "/description"),
            ("Version", "/version"),
            ("Last modified", "/lastModifiedAt"),
        ]
    };
    print(&api, &page, |p| table(p["value"].as_array().map(Vec::as_slice).unwrap_or_default(), columns));
    Ok(ExitCode::SUCCESS)
}
