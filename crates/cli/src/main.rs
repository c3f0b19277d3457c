//! `countersign`: the server (`serve`), offline admin commands (`audit verify`, `migrate`) and
//! a client for the REST API (`requests`, `policies`, `resources`).

mod client;
mod config;

use clap::{Args, Parser, Subcommand};
use client::{encode, request_details, table, with_named_requesters, Client, ClientError};
use countersign_core::{validate, Clock};
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
    fn load(self) -> Result<SecretString, String> {
        let flags = config::Flags { database_url: self.db, ..config::Flags::default() };
        let loaded = config::load(self.config.as_deref(), &flags)?;
        for warning in &loaded.warnings {
            eprintln!("warning: {warning}");
        }
        Ok(SecretString::from(loaded.settings.database_url.connection_url()))
    }
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the hash chain; names the first broken entry and exits 1 if there is one.
    Verify {
        #[command(flatten)]
        database: DatabaseArgs,
        #[arg(long)]
        json: bool,
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
            Command::Audit { command: AuditCommand::Verify { database, json } } => {
                audit_verify(&database.load()?, json).await
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

/// Opens the database at `url`, a connection URL (`DatabaseUrl::connection_url`).
async fn open_store(url: &SecretString, max_connections: u32) -> Result<Store, String> {
    let options = StoreOptions { max_connections, ..StoreOptions::default() };
    Store::connect(url.expose_secret(), options).await.map_err(|e| e.to_string())
}

async fn serve(args: ServeArgs) -> Result<ExitCode, String> {
    let config::Loaded { settings, warnings } = config::load(args.config.as_deref(), &args.flags)?;
    let log_filter = tracing_subscriber::EnvFilter::try_new(&settings.log)
        .map_err(|e| format!("log: '{}' is not a tracing filter: {e}", settings.log))?;
    tracing_subscriber::fmt().with_env_filter(log_filter).init();
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    let database_url = SecretString::from(settings.database_url.connection_url());
    let store = open_store(&database_url, settings.max_connections).await?;
    let clock = Arc::new(SystemClock);
    let now = clock.now();
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

async fn audit_verify(database_url: &SecretString, as_json: bool) -> Result<ExitCode, String> {
    let store = open_store(database_url, 2).await?;
    let report = store.verify_audit().await.map_err(|e| e.to_string())?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
    } else if let Some(broken) = &report.first_broken {
        println!(
            "BROKEN: audit entry {} ({}) : {}. {} entries before it verified.",
            broken.seq,
            if broken.id.is_empty() { "-".to_owned() } else { client::shown(&broken.id) },
            client::shown(&broken.reason),
            report.entries_checked
        );
    } else {
        println!("OK: {} audit entries verified; the chain is intact.", report.entries_checked);
    }
    Ok(if report.valid { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn migrate(database_url: &SecretString) -> Result<ExitCode, String> {
    open_store(database_url, 2).await?;
    println!("Migrations applied to {}.", countersign_store::redact_url(database_url.expose_secret()));
    Ok(ExitCode::SUCCESS)
}

async fn add_person(
    database_url: &SecretString,
    username: &str,
    display_name: &str,
    email: Option<&str>,
) -> Result<ExitCode, String> {
    let store = open_store(database_url, 2).await?;
    let password = countersign_server::auth::random_secret();
    let hash = countersign_server::auth::hash_password(&password).map_err(|e| e.detail)?;
    let now = SystemClock.now();
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
