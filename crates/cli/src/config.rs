//! Configuration for `serve` (and the database for `migrate` and `audit verify`), layered with
//! figment: defaults, then `countersign.toml` (or `--config FILE`), then `COUNTERSIGN_*`
//! environment variables, then flags. Every setting is a key of [`Settings`]; its variable is
//! `COUNTERSIGN_` and the key in capitals. A secret can also come from the file that
//! `COUNTERSIGN_<KEY>_FILE` names; the plain variable wins when both are set.

use countersign_core::Millis;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use secrecy::{ExposeSecret, SecretString};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

const DEFAULT_DATABASE_URL: &str = "sqlite://countersign.db?mode=rwc";
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_CONFIG_FILE: &str = "countersign.toml";
const ENV_PREFIX: &str = "COUNTERSIGN_";

/// The settings that may come from `COUNTERSIGN_<KEY>_FILE`.
const SECRETS: &[&str] =
    &["database_url", "smtp_url", "admin_password", "metrics_token", "audit_sinks", "oidc_providers"];

/// `COUNTERSIGN_*` variables that are not settings of the server: the config file's name, the
/// API client's, and the test suites'. Never warned about.
const OTHER_VARIABLES: &[&str] = &[
    "COUNTERSIGN_CONFIG",
    "COUNTERSIGN_URL",
    "COUNTERSIGN_TOKEN",
    "COUNTERSIGN_TEST_DATABASE_URL",
    "COUNTERSIGN_REQUIRE_ALL_TESTS",
    "COUNTERSIGN_UPDATE_SCREENSHOTS",
    "COUNTERSIGN_GRAPH_PYTHON",
    "COUNTERSIGN_GRAPH_VENV",
    "COUNTERSIGN_BENCH_POSTGRES_URL",
    "COUNTERSIGN_SCHEMATHESIS",
    "COUNTERSIGN_SCHEMATHESIS_VENV",
    "COUNTERSIGN_OIDC_NODE_MODULES",
];

/// Everything `serve` can be told. `Debug` shows no secret.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `sqlite://…`, `postgres://…` or a SQLite file path.
    pub database_url: DatabaseUrl,
    pub listen: String,
    pub secure_cookies: bool,
    /// The pool's size.
    pub max_connections: u32,
    pub trust_forwarded_for: bool,
    /// Where people reach Countersign; `http://<listen address>` when unset.
    pub public_url: Option<String>,
    /// May carry the SMTP password.
    pub smtp_url: Option<SecretString>,
    pub smtp_from: Option<String>,
    /// How long a notification is retried; ISO 8601, such as `P1D`.
    #[serde(deserialize_with = "iso_duration")]
    pub delivery_retry_window: Millis,
    /// How long before expiry approvers are reminded; ISO 8601, such as `PT24H`.
    #[serde(deserialize_with = "iso_duration")]
    pub reminder_lead: Millis,
    /// The first Administrator, created when the database has none.
    pub admin_username: String,
    /// That Administrator's password; a one-time password is generated and printed when unset.
    pub admin_password: Option<SecretString>,
    /// A `tracing` filter, such as `info,sqlx=warn`.
    pub log: String,
    // Issue 15, outward surfaces.
    /// The bearer token `/metrics` on the main listener needs; without it (and without
    /// `metrics_listen`) `/metrics` is not served.
    pub metrics_token: Option<SecretString>,
    /// A separate address serving only `/metrics`, without a token (bind it privately).
    pub metrics_listen: Option<String>,
    /// Internal networks (CIDR, such as `10.20.0.0/16`) notification channels may reach: a
    /// TOML list, or comma-separated in the environment.
    #[serde(deserialize_with = "networks")]
    pub notify_allow_networks: Vec<ipnet::IpNet>,
    // Sign-in hardening (issue 15).
    /// How many password checks run at once [default: the number of cores].
    pub password_workers: usize,
    /// How many more may wait; beyond that sign-in answers 503 `server_busy` [default: 32].
    pub password_queue: usize,
    // The audit trail outside the database (issue 16).
    /// The audit key file [default: beside a SQLite database, `<file>.audit-key`; for
    /// PostgreSQL `countersign.audit-key` here]. Every replica must read the same file.
    pub audit_key_file: Option<PathBuf>,
    /// Where signed checkpoints are appended [default: beside the key file, `.audit-checkpoints`].
    pub audit_checkpoint_file: Option<PathBuf>,
    /// A checkpoint after this many audit entries [default: 1000]…
    pub audit_checkpoint_entries: i64,
    /// …or after this long, if anything was appended; ISO 8601 [default: PT1M].
    #[serde(deserialize_with = "iso_duration")]
    pub audit_checkpoint_interval: Millis,
    /// Where every audit entry and checkpoint is exported: `[[audit_sinks]]` tables in the file,
    /// or the same list as JSON in `COUNTERSIGN_AUDIT_SINKS` (or the file
    /// `COUNTERSIGN_AUDIT_SINKS_FILE` names, as webhook sinks hold secrets). Checked by `serve`.
    #[serde(deserialize_with = "sinks")]
    pub audit_sinks: Vec<countersign_server::audit::export::SinkSettings>,
    // Single sign-on (issue 17).
    /// OpenID Connect providers: `[[oidc_providers]]` tables in the file, or the same list as
    /// JSON in `COUNTERSIGN_OIDC_PROVIDERS` (or the file `COUNTERSIGN_OIDC_PROVIDERS_FILE`
    /// names, as they hold client secrets). Checked by `serve`.
    #[serde(deserialize_with = "providers")]
    pub oidc_providers: Vec<countersign_server::sso::ProviderSettings>,
}

impl Default for Settings {
    fn default() -> Self {
        let server = countersign_server::ServerConfig::default();
        Settings {
            database_url: DatabaseUrl(DEFAULT_DATABASE_URL.into()),
            listen: DEFAULT_LISTEN.into(),
            secure_cookies: server.secure_cookies,
            max_connections: countersign_store::StoreOptions::default().max_connections,
            trust_forwarded_for: server.trust_forwarded_for,
            public_url: None,
            smtp_url: None,
            smtp_from: None,
            delivery_retry_window: server.delivery_max_age,
            reminder_lead: server.reminder_lead,
            admin_username: "admin".into(),
            admin_password: None,
            log: "info,sqlx=warn".into(),
            metrics_token: None,
            metrics_listen: None,
            notify_allow_networks: Vec::new(),
            password_workers: server.password_workers,
            password_queue: server.password_queue,
            audit_key_file: None,
            audit_checkpoint_file: None,
            audit_checkpoint_entries: 1000,
            audit_checkpoint_interval: 60_000,
            audit_sinks: Vec::new(),
            oidc_providers: Vec::new(),
        }
    }
}

impl Settings {
    /// The audit key file: the setting, or beside the database.
    pub fn audit_key_file(&self) -> PathBuf {
        self.audit_key_file
            .clone()
            .unwrap_or_else(|| countersign_server::audit::keys::default_path(&self.database_url.connection_url()))
    }

    /// The checkpoint file: the setting, or beside the key file.
    pub fn audit_checkpoint_file(&self) -> PathBuf {
        self.audit_checkpoint_file
            .clone()
            .unwrap_or_else(|| countersign_server::audit::keys::default_checkpoint_path(&self.audit_key_file()))
    }
}

/// A database URL that may hold a password: `Debug` shows it with the password and the query
/// (where `?password=` may sit) hidden.
#[derive(Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    /// The URL to connect with, a plain path turned into a SQLite URL.
    pub fn connection_url(&self) -> String {
        database_url(self.0.expose_secret())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.connection_url();
        match url.split_once('?') {
            Some((base, _)) => write!(f, "\"{}?…\"", countersign_store::redact_url(base)),
            None => write!(f, "\"{}\"", countersign_store::redact_url(&url)),
        }
    }
}

fn iso_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Millis, D::Error> {
    let text = String::deserialize(deserializer)?;
    countersign_core::policy::parse_duration(&text).map_err(de::Error::custom)
}

/// CIDR networks (or single addresses) from a list, or from one comma-separated string.
fn networks<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Text(String),
        List(Vec<String>),
    }
    let items = match Given::deserialize(deserializer)? {
        Given::Text(text) => text.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect(),
        Given::List(items) => items,
    };
    items
        .iter()
        .map(|item| {
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| de::Error::custom(format!("'{item}' is not a network such as 10.0.0.0/8")))
        })
        .collect()
}

/// Audit sinks from TOML tables, or from one string holding them as a JSON array (the
/// environment's form).
fn sinks<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<countersign_server::audit::export::SinkSettings>, D::Error> {
    list_or_json(
        deserializer,
        "a list of audit sinks, or a JSON array of them",
        "not a JSON array of sinks such as [{\"name\": \"siem\", \"syslog\": \"tcp://siem.example:6514\"}]",
    )
}

/// Single sign-on providers, as TOML tables or one JSON array.
fn providers<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<countersign_server::sso::ProviderSettings>, D::Error> {
    list_or_json(
        deserializer,
        "a list of OpenID Connect providers, or a JSON array of them",
        "not a JSON array of providers such as [{\"id\": \"entra\", \"display_name\": \"Entra ID\", \"issuer\": \"https://…\", \"client_id\": \"…\"}]",
    )
}

/// A list from TOML tables, or from one string holding it as a JSON array. A visitor rather
/// than an untagged enum, so that a mistake in a table is reported as itself.
fn list_or_json<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    deserializer: D,
    expecting: &'static str,
    not_json: &'static str,
) -> Result<Vec<T>, D::Error> {
    struct List<T> {
        expecting: &'static str,
        not_json: &'static str,
        item: std::marker::PhantomData<T>,
    }

    impl<'de, T: serde::de::DeserializeOwned> Visitor<'de> for List<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.expecting)
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            serde_json::from_str(text).map_err(|e| E::custom(format!("{}: {e}", self.not_json)))
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, mut items: A) -> Result<Self::Value, A::Error> {
            let mut list = Vec::new();
            while let Some(item) = items.next_element()? {
                list.push(item);
            }
            Ok(list)
        }
    }

    deserializer.deserialize_any(List { expecting, not_json, item: std::marker::PhantomData })
}

/// The settings flags can set; the last layer. A flag left out leaves the layers below.
#[derive(clap::Args, Serialize, Default)]
pub struct Flags {
    /// Database URL (sqlite://… or postgres://…) or a SQLite file path [default: countersign.db here]
    #[arg(long = "db")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Mark the session cookie Secure (serve behind HTTPS).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secure_cookies: Option<bool>,
    /// Size of the database connection pool [default: 10]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Behind a load balancer: take the client address from the last X-Forwarded-For entry.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_forwarded_for: Option<bool>,
    /// Where people reach Countersign; links in notifications start with it [default: http://<listen>]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Sender address of notification e-mails.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_from: Option<String>,
    /// How long a notification is retried, ISO 8601 [default: P1D]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_retry_window: Option<String>,
    /// How long before expiry approvers are reminded, ISO 8601 [default: PT24H]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reminder_lead: Option<String>,
    /// Username of the first Administrator [default: admin]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_username: Option<String>,
    /// Log filter [default: info,sqlx=warn]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

impl Provider for Flags {
    fn metadata(&self) -> Metadata {
        // Flags are named after their keys, but for `--db`.
        Metadata::named("command-line flag")
            .interpolater(|_, keys| format!("--{}", keys.join(".").replace('_', "-").replace("database-url", "db")))
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        Serialized::defaults(self).data()
    }
}

/// `COUNTERSIGN_<KEY>` for every setting and `COUNTERSIGN_<KEY>_FILE` for a secret. Values are
/// taken as written (figment's `Env` would read `1234` as a number and `[x]` as a list, which
/// would change a password); booleans and numbers are read from text at extraction.
struct Environment;

impl Provider for Environment {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable").interpolater(|_, keys| variable_name(&keys.join(".")))
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        let mut dict = Dict::new();
        for &key in setting_keys() {
            let name = variable_name(key);
            let value = match variable(&name)? {
                Some(value) => Some(value),
                None if SECRETS.contains(&key) => secret_file(&format!("{name}_FILE"))?,
                None => None,
            };
            if let Some(value) = value {
                dict.insert(key.into(), Value::from(value));
            }
        }
        Ok(Profile::Default.collect(dict))
    }
}

fn variable_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_ascii_uppercase())
}

fn variable(name: &str) -> Result<Option<String>, String> {
    match std::env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{name} is not valid UTF-8")),
    }
}

/// The contents of the file `file_variable` names, trailing newline dropped.
fn secret_file(file_variable: &str) -> Result<Option<String>, String> {
    let Some(path) = variable(file_variable)? else {
        return Ok(None);
    };
    std::fs::read_to_string(&path)
        .map(|text| Some(text.trim_end_matches(['\n', '\r']).to_owned()))
        .map_err(|e| format!("{file_variable}: cannot read {path}: {e}"))
}

/// The settings' keys, from serde's own list of `Settings`' fields: serde hands it to
/// `deserialize_struct`, which here records it and stops.
fn setting_keys() -> &'static [&'static str] {
    struct FieldNames<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for FieldNames<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("field names recorded"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    // The error is the deserializer stopping once it has the names.
    let _ = Settings::deserialize(FieldNames(&mut fields));
    fields
}

/// Loaded settings, with what the operator should be told about the environment.
#[derive(Debug)]
pub struct Loaded {
    pub settings: Settings,
    /// Mistyped or shadowed `COUNTERSIGN_*` variables: they change nothing.
    pub warnings: Vec<String>,
}

/// Merges the layers. `config_file` names the file explicitly (it must then exist); without it
/// `countersign.toml` in the working directory is read if present.
pub fn load(config_file: Option<&Path>, flags: &Flags) -> Result<Loaded, String> {
    let path = config_file.unwrap_or(Path::new(DEFAULT_CONFIG_FILE));
    let mut figment = Figment::new();
    if path.exists() {
        figment = figment.merge(Toml::file_exact(path));
    } else if config_file.is_some() {
        return Err(format!("cannot read the configuration file {}: not found", path.display()));
    }
    let settings = figment
        .merge(Environment)
        .merge(flags)
        .extract_lossy::<Settings>()
        .map_err(|e| format!("configuration: {e}"))?;
    Ok(Loaded { settings, warnings: environment_warnings() })
}

fn environment_warnings() -> Vec<String> {
    let keys = setting_keys();
    let mut warnings = Vec::new();
    let mut names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| name.starts_with(ENV_PREFIX))
        .collect();
    names.sort();
    for name in names {
        // Names are compared as written: `COUNTERSIGN_listen` is not read, so it is warned about.
        let secret_file_of = SECRETS.iter().find(|secret| name == format!("{}_FILE", variable_name(secret)));
        if let Some(secret) = secret_file_of {
            let shadowing = variable_name(secret);
            if std::env::var_os(&shadowing).is_some() {
                warnings.push(format!("{name} is ignored: {shadowing} is set and takes precedence"));
            }
        } else if !keys.iter().any(|key| variable_name(key) == name) && !OTHER_VARIABLES.contains(&name.as_str()) {
            warnings.push(format!("{name} is not a Countersign setting and is ignored (mistyped?)"));
        }
    }
    warnings
}

/// Accepts `sqlite://…`, `postgres://…`, or a plain file path (taken as SQLite).
pub fn database_url(raw: &str) -> String {
    if raw.contains("://") || raw.starts_with("sqlite:") {
        if raw.starts_with("sqlite:") && !raw.contains("mode=") {
            let separator = if raw.contains('?') { '&' } else { '?' };
            return format!("{raw}{separator}mode=rwc");
        }
        raw.to_owned()
    } else {
        format!("sqlite://{raw}?mode=rwc")
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err, reason = "figment's `Jail` closures return `figment::Result`")]
mod tests {
    use super::*;
    use figment::Jail;

    /// `load` with `countersign.toml` of the jail's directory, as a `Jail` closure's result.
    fn load_with(flags: &Flags) -> figment::Result<Loaded> {
        load(None, flags).map_err(figment::Error::from)
    }

    #[test]
    fn plain_paths_become_sqlite_urls() {
        assert_eq!(database_url("data/cs.db"), "sqlite://data/cs.db?mode=rwc");
        assert_eq!(database_url("sqlite://x.db"), "sqlite://x.db?mode=rwc");
        assert_eq!(database_url("sqlite://x.db?mode=ro"), "sqlite://x.db?mode=ro");
        assert_eq!(database_url("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn the_config_file_refuses_unknown_keys() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("countersign.toml", "listen = \"0.0.0.0:9000\"\n")?;
            assert_eq!(load_with(&Flags::default())?.settings.listen, "0.0.0.0:9000");
            jail.create_file("countersign.toml", "lisen = \"x\"\n")?;
            let refused = load(None, &Flags::default()).unwrap_err();
            assert!(refused.contains("unknown field") && refused.contains("lisen"), "{refused}");
            Ok(())
        });
    }

    #[test]
    fn a_missing_default_file_is_fine_a_missing_named_file_is_not() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            assert_eq!(load_with(&Flags::default())?.settings.listen, DEFAULT_LISTEN);
            let refused = load(Some(Path::new("missing.toml")), &Flags::default()).unwrap_err();
            assert!(refused.contains("missing.toml"), "{refused}");
            jail.create_file("other.toml", "max_connections = 3\n")?;
            let named = load(Some(Path::new("other.toml")), &Flags::default()).map_err(figment::Error::from)?;
            assert_eq!(named.settings.max_connections, 3);
            Ok(())
        });
    }

    #[test]
    fn each_layer_beats_the_one_below() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            assert_eq!(load_with(&Flags::default())?.settings.listen, DEFAULT_LISTEN, "default");
            jail.create_file("countersign.toml", "listen = \"127.0.0.1:1001\"\n")?;
            assert_eq!(load_with(&Flags::default())?.settings.listen, "127.0.0.1:1001", "file over default");
            jail.set_env("COUNTERSIGN_LISTEN", "127.0.0.1:1002");
            assert_eq!(load_with(&Flags::default())?.settings.listen, "127.0.0.1:1002", "environment over file");
            let flags = Flags { listen: Some("127.0.0.1:1003".into()), ..Flags::default() };
            assert_eq!(load_with(&flags)?.settings.listen, "127.0.0.1:1003", "flag over environment");
            Ok(())
        });
    }

    #[test]
    fn a_secret_file_beats_the_config_file_and_loses_to_the_plain_variable() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            let password =
                |loaded: &Loaded| loaded.settings.admin_password.as_ref().map(|p| p.expose_secret().to_owned());
            assert_eq!(password(&load_with(&Flags::default())?), None);
            jail.create_file("countersign.toml", "admin_password = \"from the config file\"\n")?;
            assert_eq!(password(&load_with(&Flags::default())?).as_deref(), Some("from the config file"));
            jail.create_file("password.txt", "from the secret file\n")?;
            jail.set_env("COUNTERSIGN_ADMIN_PASSWORD_FILE", "password.txt");
            let loaded = load_with(&Flags::default())?;
            assert_eq!(password(&loaded).as_deref(), Some("from the secret file"), "trailing newline dropped");
            assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
            jail.set_env("COUNTERSIGN_ADMIN_PASSWORD", "from the variable");
            let loaded = load_with(&Flags::default())?;
            assert_eq!(password(&loaded).as_deref(), Some("from the variable"));
            assert_eq!(
                loaded.warnings,
                ["COUNTERSIGN_ADMIN_PASSWORD_FILE is ignored: COUNTERSIGN_ADMIN_PASSWORD is set and takes precedence"]
            );
            jail.set_env("COUNTERSIGN_SMTP_URL_FILE", "absent.txt");
            let refused = load(None, &Flags::default()).unwrap_err();
            assert!(refused.contains("COUNTERSIGN_SMTP_URL_FILE: cannot read absent.txt"), "{refused}");
            Ok(())
        });
    }

    const SINKS_JSON: &str = r#"[{"name": "siem", "syslog": "tls://siem.example:6514", "facility": "local4"},
        {"name": "archive", "webhook": "https://archive.example/countersign", "secret": "hook-secret"}]"#;
    const SINKS_TOML: &str = r#"
[[audit_sinks]]
name = "siem"
syslog = "tls://siem.example:6514"
facility = "local4"

[[audit_sinks]]
name = "archive"
webhook = "https://archive.example/countersign"
secret = "hook-secret"
"#;

    fn check_sinks(settings: &Settings) {
        let sinks = countersign_server::audit::export::AuditSink::from_all(&settings.audit_sinks).unwrap();
        let names: Vec<&str> = sinks.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["siem", "archive"]);
        use countersign_server::audit::export::SinkTarget;
        assert!(
            matches!(&sinks[0].target, SinkTarget::Syslog { host, port: 6514, tls: Some(_), facility: 20 } if host == "siem.example")
        );
        assert!(matches!(&sinks[1].target, SinkTarget::Webhook { url, secret, .. }
            if url == "https://archive.example/countersign" && secret.expose_secret() == "hook-secret"));
    }

    const PROVIDERS_JSON: &str = r#"[{"id": "entra", "display_name": "Entra ID",
        "issuer": "https://login.microsoftonline.com/tenant/v2.0", "client_id": "app-id",
        "client_secret_file": "client-secret.txt", "groups_claim": "groups",
        "group_mappings": [{"claim": "0f5e-approvers", "group": "Approvers"}]},
        {"id": "okta", "display_name": "Okta", "issuer": "https://example.okta.com",
        "client_id": "okta-app", "client_secret": "okta-secret", "create_accounts": true}]"#;
    const PROVIDERS_TOML: &str = r#"
[[oidc_providers]]
id = "entra"
display_name = "Entra ID"
issuer = "https://login.microsoftonline.com/tenant/v2.0"
client_id = "app-id"
client_secret_file = "client-secret.txt"
groups_claim = "groups"
group_mappings = [{ claim = "0f5e-approvers", group = "Approvers" }]

[[oidc_providers]]
id = "okta"
display_name = "Okta"
issuer = "https://example.okta.com"
client_id = "okta-app"
client_secret = "okta-secret"
create_accounts = true
"#;

    fn check_providers(settings: &Settings) {
        let providers = countersign_server::sso::Provider::from_all(&settings.oidc_providers).unwrap();
        let ids: Vec<&str> = providers.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["entra", "okta"]);
        let secrets: Vec<&str> =
            providers.iter().filter_map(|p| p.client_secret.as_ref()).map(|s| s.expose_secret()).collect();
        assert_eq!(secrets, ["from-a-file", "okta-secret"]);
        assert_eq!(providers[0].group_mappings[0].group, "Approvers");
        assert!(!providers[0].create_accounts && providers[1].create_accounts);
        assert!(!format!("{settings:?}").contains("okta-secret"), "Debug shows no client secret");
    }

    #[test]
    fn oidc_providers_come_from_the_file_or_a_secret_file_and_a_bad_one_is_refused_by_name() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("client-secret.txt", "from-a-file\n")?;
            jail.create_file("providers.json", PROVIDERS_JSON)?;
            jail.set_env("COUNTERSIGN_OIDC_PROVIDERS_FILE", "providers.json");
            check_providers(&load_with(&Flags::default())?.settings);
            jail.set_env("COUNTERSIGN_OIDC_PROVIDERS", r#"[{"id": "k", "display_name": "K", "issuer": "https://k.example/realms/x", "client_id": "c", "group_mappings": [{"claim": "a", "group": "b"}]}]"#);
            let providers = load_with(&Flags::default())?.settings.oidc_providers;
            let refused = countersign_server::sso::Provider::from_all(&providers).unwrap_err();
            assert!(refused.starts_with("oidc provider 'k': group_mappings need groups_claim"), "{refused}");
            jail.create_file("countersign.toml", "[[oidc_providers]]\nid = \"k\"\nissuer_url = \"x\"\n")?;
            jail.clear_env();
            let refused = load(None, &Flags::default()).unwrap_err();
            assert!(refused.contains("issuer_url"), "{refused}");
            Ok(())
        });
    }

    #[test]
    fn audit_sinks_come_from_a_secret_file_and_a_bad_one_is_refused_by_name() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("sinks.json", SINKS_JSON)?;
            jail.set_env("COUNTERSIGN_AUDIT_SINKS_FILE", "sinks.json");
            let loaded = load_with(&Flags::default())?;
            check_sinks(&loaded.settings);
            assert!(!format!("{loaded:?}").contains("hook-secret"), "Debug shows no sink secret");
            jail.set_env("COUNTERSIGN_AUDIT_SINKS", r#"[{"name": "archive", "webhook": "https://archive.example/x"}]"#);
            let sinks = load_with(&Flags::default())?.settings.audit_sinks;
            let refused = countersign_server::audit::export::AuditSink::from_all(&sinks).unwrap_err();
            assert_eq!(refused, "audit sink 'archive': a webhook sink needs a secret to sign its messages with");
            jail.set_env("COUNTERSIGN_AUDIT_SINKS", "siem.example:6514");
            let refused = load(None, &Flags::default()).unwrap_err();
            assert!(
                refused.contains("COUNTERSIGN_AUDIT_SINKS") && refused.contains("JSON array of sinks"),
                "{refused}"
            );
            jail.set_env("COUNTERSIGN_AUDIT_SINKS", r#"[{"name": "a", "sislog": "tcp://h:1"}]"#);
            let refused = load(None, &Flags::default()).unwrap_err();
            assert!(refused.contains("sislog"), "{refused}");
            jail.clear_env();
            jail.create_file("countersign.toml", "[[audit_sinks]]\nname = \"a\"\nsislog = \"tcp://h:1\"\n")?;
            let refused = load(None, &Flags::default()).unwrap_err();
            assert!(refused.contains("unknown field") && refused.contains("sislog"), "{refused}");
            Ok(())
        });
    }

    #[test]
    fn every_setting_is_reachable_from_the_file_and_from_the_environment() {
        let values = [
            ("database_url", "postgres://cs@db.internal/countersign"),
            ("listen", "0.0.0.0:9000"),
            ("secure_cookies", "true"),
            ("max_connections", "25"),
            ("trust_forwarded_for", "true"),
            ("public_url", "https://countersign.example"),
            ("smtp_url", "smtps://mailer@mail.example"),
            ("smtp_from", "Countersign <countersign@example.com>"),
            ("delivery_retry_window", "PT6H"),
            ("reminder_lead", "PT2H"),
            ("admin_username", "root"),
            ("admin_password", "12345"),
            ("log", "debug"),
            ("metrics_token", "scrape-secret"),
            ("metrics_listen", "127.0.0.1:9100"),
            ("notify_allow_networks", "10.20.0.0/16, 192.168.7.7"),
            ("password_workers", "3"),
            ("password_queue", "7"),
            ("audit_key_file", "/etc/countersign/audit-key"),
            ("audit_checkpoint_file", "/var/log/countersign/checkpoints"),
            ("audit_checkpoint_entries", "50"),
            ("audit_checkpoint_interval", "PT30S"),
            ("audit_sinks", SINKS_JSON),
            ("oidc_providers", PROVIDERS_JSON),
        ];
        let mut keys: Vec<&str> = values.iter().map(|(key, _)| *key).collect();
        keys.sort_unstable();
        let mut known = setting_keys().to_vec();
        known.sort_unstable();
        assert_eq!(keys, known, "this test lists every setting");
        let check = |settings: &Settings| {
            assert_eq!(settings.database_url.connection_url(), "postgres://cs@db.internal/countersign");
            assert_eq!(settings.listen, "0.0.0.0:9000");
            assert!(settings.secure_cookies && settings.trust_forwarded_for);
            assert_eq!(settings.max_connections, 25);
            assert_eq!(settings.public_url.as_deref(), Some("https://countersign.example"));
            assert_eq!(settings.smtp_url.as_ref().map(|s| s.expose_secret()), Some("smtps://mailer@mail.example"));
            assert_eq!(settings.smtp_from.as_deref(), Some("Countersign <countersign@example.com>"));
            assert_eq!(settings.delivery_retry_window, 6 * 3_600_000);
            assert_eq!(settings.reminder_lead, 2 * 3_600_000);
            assert_eq!(settings.admin_username, "root");
            assert_eq!(settings.admin_password.as_ref().map(|s| s.expose_secret()), Some("12345"));
            assert_eq!(settings.log, "debug");
            assert_eq!(settings.metrics_token.as_ref().map(|s| s.expose_secret()), Some("scrape-secret"));
            assert_eq!(settings.metrics_listen.as_deref(), Some("127.0.0.1:9100"));
            let networks: Vec<String> = settings.notify_allow_networks.iter().map(ToString::to_string).collect();
            assert_eq!(networks, ["10.20.0.0/16", "192.168.7.7/32"]);
            assert_eq!((settings.password_workers, settings.password_queue), (3, 7));
            assert_eq!(settings.audit_key_file(), PathBuf::from("/etc/countersign/audit-key"));
            assert_eq!(settings.audit_checkpoint_file(), PathBuf::from("/var/log/countersign/checkpoints"));
            assert_eq!((settings.audit_checkpoint_entries, settings.audit_checkpoint_interval), (50, 30_000));
            check_sinks(settings);
            check_providers(settings);
        };
        Jail::expect_with(|jail| {
            jail.clear_env();
            let toml: String = values
                .iter()
                .map(|(key, value)| match *key {
                    "secure_cookies"
                    | "trust_forwarded_for"
                    | "max_connections"
                    | "password_workers"
                    | "password_queue"
                    | "audit_checkpoint_entries" => {
                        format!("{key} = {value}\n")
                    }
                    // Tables in the file; JSON in the environment.
                    "audit_sinks" | "oidc_providers" => String::new(),
                    _ => format!("{key} = {value:?}\n"),
                })
                .collect();
            jail.create_file("client-secret.txt", "from-a-file\n")?;
            jail.create_file("countersign.toml", &format!("{toml}{SINKS_TOML}{PROVIDERS_TOML}"))?;
            check(&load_with(&Flags::default())?.settings);
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("client-secret.txt", "from-a-file\n")?;
            for (key, value) in values {
                jail.set_env(variable_name(key), value);
            }
            let loaded = load_with(&Flags::default())?;
            check(&loaded.settings);
            assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
            Ok(())
        });
    }

    #[test]
    fn unknown_variables_are_warned_about_and_known_ones_are_not() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("COUNTERSIGN_LISTN", "0.0.0.0:9000");
            jail.set_env("COUNTERSIGN_listen", "0.0.0.0:9001");
            jail.set_env("COUNTERSIGN_LISTEN_FILE", "listen.txt");
            for name in OTHER_VARIABLES {
                jail.set_env(name, "1");
            }
            jail.set_env("COUNTERSIGN_LOG", "warn");
            jail.set_env("COUNTERSIGNAL", "not ours");
            let loaded = load_with(&Flags::default())?;
            assert_eq!(loaded.settings.listen, DEFAULT_LISTEN);
            assert_eq!(
                loaded.warnings,
                [
                    "COUNTERSIGN_LISTEN_FILE is not a Countersign setting and is ignored (mistyped?)",
                    "COUNTERSIGN_LISTN is not a Countersign setting and is ignored (mistyped?)",
                    "COUNTERSIGN_listen is not a Countersign setting and is ignored (mistyped?)",
                ]
            );
            Ok(())
        });
    }

    #[test]
    fn invalid_values_name_their_source() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("COUNTERSIGN_REMINDER_LEAD", "two hours");
            let refused = load(None, &Flags::default()).unwrap_err();
            assert!(refused.contains("ISO 8601") && refused.contains("COUNTERSIGN_REMINDER_LEAD"), "{refused}");
            jail.set_env("COUNTERSIGN_REMINDER_LEAD", "PT2H");
            jail.set_env("COUNTERSIGN_MAX_CONNECTIONS", "many");
            let refused = load(None, &Flags::default()).unwrap_err();
            assert!(refused.contains("COUNTERSIGN_MAX_CONNECTIONS"), "{refused}");
            Ok(())
        });
    }

    #[test]
    fn debug_output_holds_no_secret() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("COUNTERSIGN_DATABASE_URL", "postgres://cs:db-secret@db.internal/cs?password=query-secret");
            jail.set_env("COUNTERSIGN_SMTP_URL", "smtps://mailer:smtp-secret@mail.example");
            jail.set_env("COUNTERSIGN_ADMIN_PASSWORD", "admin-secret");
            let debug = format!("{:?}", load_with(&Flags::default())?);
            for secret in ["db-secret", "query-secret", "smtp-secret", "admin-secret"] {
                assert!(!debug.contains(secret), "{secret} in {debug}");
            }
            assert!(debug.contains("postgres://cs:***@db.internal/cs?…"), "{debug}");
            Ok(())
        });
    }
}
