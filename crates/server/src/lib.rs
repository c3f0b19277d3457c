//! Countersign's HTTP server. `ops` holds every operation a caller may do (typed input and
//! output, the permission check, the trip through the MAA gate); three adapters speak it: `api`
//! (REST JSON), `web` (the HTML admin center) and `graph` (Graph-compatible). No adapter imports
//! another; [`router`] assembles them. Errors are mapped to problem+json in `error`.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod api;
pub mod audit;
pub mod auth;
pub mod demo;
pub mod error;
pub mod extract;
pub mod graph;
pub mod health;
pub mod metrics;
pub mod notify;
pub mod ops;
pub mod outbound;
pub mod sso;
pub mod time;
pub mod web;
pub mod webauthn;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::{Extension, Router};
use countersign_core::error::ErrorCode;
use countersign_core::{Clock, Millis};
use countersign_store::Store;
use secrecy::SecretString;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;

pub use crate::time::SystemClock;

/// Settings the server needs at run time.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Mark the session cookie `Secure` (set when served over HTTPS).
    pub secure_cookies: bool,
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
    /// How often the expiry sweep runs (R11).
    pub sweep_interval: Duration,
    /// Behind a load balancer: take the client's address (for the per-address sign-in limit and
    /// the audit log) from the last `X-Forwarded-For` entry, which the balancer appends.
    pub trust_forwarded_for: bool,
    /// Where people reach the admin center; links in notifications start with it.
    pub public_url: String,
    /// `smtp://host:port` (or `smtps://…`, `smtp://…?tls=required`) for e-mail notifications; may
    /// carry a password, so `Debug` hides it.
    pub smtp_url: Option<SecretString>,
    /// The sender of notification e-mails.
    pub smtp_from: Option<String>,
    /// How often the notification dispatcher looks for due deliveries.
    pub notify_interval: Duration,
    /// How long a notification is retried before it is marked dead.
    pub delivery_max_age: Millis,
    /// How long before a request expires its approvers are reminded.
    pub reminder_lead: Millis,
    // Issue 15, outward surfaces: /metrics, event streams, channel addresses.
    /// The bearer token `/metrics` on the main listener requires. Without it the main listener
    /// does not serve `/metrics` (404): scrape a separate listener (`serve_metrics`) instead.
    pub metrics_token: Option<SecretString>,
    /// How often an open event stream checks that its session or token is still live.
    pub event_credential_check: Duration,
    /// Networks that notification channels may reach although they are loopback, private,
    /// link-local or otherwise internal (refused by default).
    pub notify_allow_networks: Vec<ipnet::IpNet>,
    // Sign-in hardening (issue 15).
    /// How many password checks (Argon2) run at once, on the blocking pool; the cores by default.
    pub password_workers: usize,
    /// How many more may wait for one; beyond that sign-in answers 503 `server_busy`.
    pub password_queue: usize,
    /// The audit trail outside the database: the checkpoint signer and file (issue 16). Without
    /// it no checkpoints are made and verification uses the chain and its keys alone.
    pub audit: Option<audit::AuditSettings>,
    /// Where every audit entry and checkpoint is exported (syslog, webhooks); see `audit::export`.
    pub audit_sinks: Vec<audit::export::AuditSink>,
    /// How often an exporter looks for new entries, and its first wait after a failure (doubling
    /// to a minute).
    pub audit_export_interval: Duration,
    /// Single sign-on providers (issue 17), checked; see `sso`.
    pub oidc_providers: Vec<sso::Provider>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            secure_cookies: false,
            body_limit: 1024 * 1024,
            sweep_interval: Duration::from_secs(30),
            trust_forwarded_for: false,
            public_url: "http://127.0.0.1:8080".into(),
            smtp_url: None,
            smtp_from: None,
            notify_interval: Duration::from_secs(2),
            delivery_max_age: 24 * 60 * 60 * 1000,
            reminder_lead: 24 * 60 * 60 * 1000,
            metrics_token: None,
            event_credential_check: Duration::from_secs(2),
            notify_allow_networks: Vec::new(),
            password_workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            password_queue: 32,
            audit: None,
            audit_sinks: Vec::new(),
            audit_export_interval: Duration::from_secs(1),
            oidc_providers: Vec::new(),
        }
    }
}

/// Everything a handler can reach; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<ServerConfig>,
    pub metrics: Arc<metrics::Metrics>,
    /// Where passwords are hashed and checked, off the async workers.
    pub passwords: Arc<auth::PasswordPool>,
    /// The WebAuthn relying party (issue 17), from `public_url`.
    pub webauthn: Arc<webauthn::Relying>,
    /// The single sign-on providers, each with its discovered client (a cache per replica).
    pub sso: Arc<sso::Providers>,
    /// Read from the database on first use (every replica shares it).
    sign_in_key: Arc<tokio::sync::OnceCell<auth::SignInKey>>,
}

impl AppState {
    pub fn new(store: Store, clock: Arc<dyn Clock>, config: ServerConfig) -> Self {
        let metrics = Arc::new(metrics::Metrics::new(store.writer_stats().is_some()));
        let passwords = Arc::new(auth::PasswordPool::new(config.password_workers, config.password_queue));
        let webauthn = Arc::new(webauthn::Relying::new(&config.public_url));
        let sso = Arc::new(sso::Providers::new(config.oidc_providers.clone()));
        AppState {
            store,
            clock,
            config: Arc::new(config),
            metrics,
            passwords,
            webauthn,
            sso,
            sign_in_key: Arc::default(),
        }
    }

    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// The key that signs device cookies and sign-in form tokens (see [`auth::SignInKey`]).
    pub async fn sign_in_key(&self) -> error::ApiResult<&auth::SignInKey> {
        self.sign_in_key
            .get_or_try_init(|| async {
                let stored = self.store.server_key(auth::SIGN_IN_KEY, &auth::random_secret(), self.now()).await?;
                auth::SignInKey::new(&stored)
            })
            .await
    }
}

/// The whole HTTP surface, with security headers on every response.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.body_limit;
    // Every route of the JSON adapters carries its OpenAPI description; the web pages do not.
    let (documented, document) = api::routes().merge(health::routes()).merge(graph::routes()).split_for_parts();
    Router::new()
        .merge(documented.layer(Extension(api::openapi::RoutesDocument::new(document))))
        .merge(web::routes(state.clone()))
        .fallback(web::fallback)
        .method_not_allowed_fallback(|| async {
            error::ApiError::new(ErrorCode::MethodNotAllowed, "this endpoint does not accept that method")
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        // `same-origin`, not `no-referrer`: no referrer ever leaves for another site, and a
        // browser still names this origin in `Origin` on our own form posts (under
        // `no-referrer` it sends `Origin: null`, which the sign-in's CSRF check must refuse).
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .with_state(state)
}

/// Serves until `shutdown` resolves, running the expiry sweep, the notification dispatcher,
/// audit checkpoints and the audit exporters in the background.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sweeper = tokio::spawn(sweep_forever(state.clone()));
    let dispatcher = tokio::spawn(notify::dispatch_forever(state.clone()));
    let checkpoints = state.config.audit.clone().map(|settings| {
        tokio::spawn(audit::checkpoints::run_forever(state.store.clone(), settings, state.clock.clone()))
    });
    let exporters = audit::export::start(&state);
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    exporters.stop().await;
    sweeper.abort();
    dispatcher.abort();
    if let Some(checkpoints) = checkpoints {
        checkpoints.abort();
    }
    result
}

/// Serves `/metrics` alone on its own listener (`metrics_listen`) until `shutdown` resolves.
pub async fn serve_metrics(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, health::metrics_router(state)).with_graceful_shutdown(shutdown).await
}

/// R11's background half: expire due requests, periodically; remind approvers of requests about
/// to expire; drop expired sessions and stale sign-in failures. Safe on every replica.
async fn sweep_forever(state: AppState) {
    let mut interval = tokio::time::interval(state.config.sweep_interval);
    loop {
        interval.tick().await;
        let now = state.now();
        match state.store.expire_due(now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "expired requests"),
            Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
        }
        if let Err(e) = state.store.send_reminders(now, state.config.reminder_lead).await {
            tracing::warn!(error = %e, "expiry reminders failed");
        }
        if let Err(e) = state.store.prune(now, now - auth::FAILURE_WINDOW).await {
            tracing::warn!(error = %e, "pruning sessions failed");
        }
    }
}
