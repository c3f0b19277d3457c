//! Configuration for `serve`: defaults, then `countersign.toml`, then `COUNTERSIGN_*`
//! environment variables, then flags. `COUNTERSIGN_*_FILE` reads a secret from a file.

use serde::Deserialize;
use std::path::Path;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://countersign.db?mode=rwc";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// What `countersign.toml` may set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub database_url: Option<String>,
    pub listen: Option<String>,
    pub secure_cookies: Option<bool>,
    pub admin_username: Option<String>,
    pub max_connections: Option<u32>,
    pub trust_forwarded_for: Option<bool>,
    pub public_url: Option<String>,
    pub smtp_url: Option<String>,
    pub smtp_from: Option<String>,
    /// ISO 8601 duration, such as `P1D`.
    pub delivery_retry_window: Option<String>,
    /// ISO 8601 duration, such as `PT24H`.
    pub reminder_lead: Option<String>,
}

impl FileConfig {
    /// Reads `path` if it exists; a missing default file is not an error.
    pub fn load(path: &Path, required: bool) -> Result<FileConfig, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(FileConfig::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }
}

/// A secret from `NAME`, or from the file named by `NAME_FILE` (trailing newline dropped).
pub fn secret_from_env(name: &str) -> Result<Option<String>, String> {
    if let Ok(value) = std::env::var(name) {
        return Ok(Some(value));
    }
    let file_var = format!("{name}_FILE");
    match std::env::var(&file_var) {
        Ok(path) => std::fs::read_to_string(&path)
            .map(|s| Some(s.trim_end_matches(['\n', '\r']).to_owned()))
            .map_err(|e| format!("{file_var}: cannot read {path}: {e}")),
        Err(_) => Ok(None),
    }
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
mod tests {
    use super::*;

    #[test]
    fn plain_paths_become_sqlite_urls() {
        assert_eq!(database_url("data/cs.db"), "sqlite://data/cs.db?mode=rwc");
        assert_eq!(database_url("sqlite://x.db"), "sqlite://x.db?mode=rwc");
        assert_eq!(database_url("sqlite://x.db?mode=ro"), "sqlite://x.db?mode=ro");
        assert_eq!(database_url("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn the_config_file_refuses_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("countersign.toml");
        std::fs::write(&path, "listen = \"0.0.0.0:9000\"\n").unwrap();
        assert_eq!(FileConfig::load(&path, true).unwrap().listen.as_deref(), Some("0.0.0.0:9000"));
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        assert!(FileConfig::load(&path, true).is_err());
        assert!(FileConfig::load(&dir.path().join("missing.toml"), false).is_ok());
    }
}
