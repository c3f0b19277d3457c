//! The audit key file (R13): the HMAC keys that link the chain and the Ed25519 key that signs
//! checkpoints, in one JSON file outside the database, readable by its owner only. Every
//! PostgreSQL replica reads the same file; the database never sees what is in it.

use countersign_core::audit::{AuditKey, AuditKeys, CheckpointSigner};
use countersign_core::Millis;
use countersign_store::AuditKeyring;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

const FORMAT: &str = "countersign-audit-keys/1";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KeyFile {
    format: String,
    /// The Ed25519 seed that signs checkpoints (hex).
    signing_key: String,
    /// Oldest first; the last links new entries.
    mac_keys: Vec<StoredKey>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StoredKey {
    /// 32 bytes, hex.
    secret: String,
    created_at: Millis,
}

/// What the key file holds.
pub struct AuditSecrets {
    pub keys: AuditKeys,
    pub signer: CheckpointSigner,
}

fn random_32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

fn decode_32(text: &str, what: &str, path: &Path) -> Result<[u8; 32], String> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text, &mut bytes).map_err(|_| format!("{}: {what} is not 64 hex digits", path.display()))?;
    Ok(bytes)
}

/// The default place of the key file: beside a SQLite database file (never inside it), or
/// `countersign.audit-key` in the working directory for PostgreSQL.
pub fn default_path(database_url: &str) -> PathBuf {
    sqlite_file(database_url)
        .map(|file| PathBuf::from(format!("{file}.audit-key")))
        .unwrap_or_else(|| PathBuf::from("countersign.audit-key"))
}

/// The default checkpoint file: beside the key file.
pub fn default_checkpoint_path(key_file: &Path) -> PathBuf {
    let name = key_file.to_string_lossy();
    PathBuf::from(match name.strip_suffix(".audit-key") {
        Some(stem) => format!("{stem}.audit-checkpoints"),
        None => format!("{name}.checkpoints"),
    })
}

fn sqlite_file(database_url: &str) -> Option<&str> {
    let rest = database_url.strip_prefix("sqlite://").or_else(|| database_url.strip_prefix("sqlite:"))?;
    let file = rest.split('?').next().unwrap_or(rest);
    (!file.is_empty() && file != ":memory:").then_some(file)
}

fn parse(path: &Path, text: &str) -> Result<AuditSecrets, String> {
    let file: KeyFile =
        serde_json::from_str(text).map_err(|e| format!("{}: not an audit key file: {e}", path.display()))?;
    if file.format != FORMAT {
        return Err(format!("{}: format '{}' is not {FORMAT}", path.display(), file.format));
    }
    let signer = CheckpointSigner::from_seed(&decode_32(&file.signing_key, "signingKey", path)?);
    let keys = file
        .mac_keys
        .iter()
        .map(|key| decode_32(&key.secret, "a macKeys secret", path).map(|secret| AuditKey::new(&secret)))
        .collect::<Result<Vec<_>, _>>()?;
    let keys = AuditKeys::new(keys).ok_or_else(|| format!("{}: macKeys is empty", path.display()))?;
    Ok(AuditSecrets { keys, signer })
}

/// Refuses a key file others can read or write, as ssh does a private key.
#[cfg(unix)]
fn owner_only(path: &Path, metadata: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{}: the audit key file is open to others (mode {mode:03o}); make it readable by its owner only (chmod 600)",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn owner_only(_: &Path, _: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}

pub fn load(path: &Path) -> Result<AuditSecrets, String> {
    let metadata =
        std::fs::metadata(path).map_err(|e| format!("cannot read the audit key file {}: {e}", path.display()))?;
    owner_only(path, &metadata)?;
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read the audit key file {}: {e}", path.display()))?;
    parse(path, &text)
}

/// Writes `file` to `path` through a temporary file and a rename, owner-only from its creation;
/// `exclusive` fails if `path` exists (two replicas creating it at once: one wins).
fn write(path: &Path, file: &KeyFile, exclusive: bool) -> Result<(), String> {
    let text = serde_json::to_string_pretty(file).map_err(|e| e.to_string())?;
    let failed = |e: std::io::Error| format!("cannot write the audit key file {}: {e}", path.display());
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    if exclusive {
        let mut out = options.create_new(true).open(path).map_err(failed)?;
        out.write_all(text.as_bytes()).and_then(|()| out.sync_all()).map_err(failed)?;
        return Ok(());
    }
    let temporary = path.with_extension("tmp");
    let mut out = options.create(true).truncate(true).open(&temporary).map_err(failed)?;
    out.write_all(text.as_bytes()).and_then(|()| out.sync_all()).map_err(failed)?;
    std::fs::rename(&temporary, path).map_err(failed)
}

/// Loads the key file, creating it (one new audit key, one signing key) if there is none.
/// `true` when it was created here.
pub fn load_or_create(path: &Path, now: Millis) -> Result<(AuditSecrets, bool), String> {
    if path.exists() {
        return load(path).map(|secrets| (secrets, false));
    }
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let file = KeyFile {
        format: FORMAT.into(),
        signing_key: hex::encode(random_32()),
        mac_keys: vec![StoredKey { secret: hex::encode(random_32()), created_at: now }],
    };
    match write(path, &file, true) {
        Ok(()) => load(path).map(|secrets| (secrets, true)),
        // Another process created it first.
        Err(_) if path.exists() => load(path).map(|secrets| (secrets, false)),
        Err(e) => Err(e),
    }
}

/// Adds a new audit key, which links every entry from the next one a server writes with the
/// file loaded; earlier keys stay, to verify earlier entries. Returns the new key's id.
pub fn rotate(path: &Path, now: Millis) -> Result<String, String> {
    load(path)?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut file: KeyFile = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let secret = random_32();
    file.mac_keys.push(StoredKey { secret: hex::encode(secret), created_at: now });
    write(path, &file, false)?;
    Ok(AuditKey::new(&secret).id().to_owned())
}

/// The store's keyring over `path`: it reads the file again when the chain's head was linked
/// under a key it has not loaded (another replica started with a rotated file).
pub fn keyring(path: &Path, keys: AuditKeys) -> AuditKeyring {
    let path = path.to_owned();
    AuditKeyring::new(keys, move || load(&path).map(|secrets| secrets.keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_created_owner_only_loaded_again_and_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("cs.db.audit-key");
        let (created, fresh) = load_or_create(&path, 1).unwrap();
        assert!(fresh);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let (again, fresh) = load_or_create(&path, 2).unwrap();
        assert!(!fresh);
        assert_eq!(again.keys.current().id(), created.keys.current().id());
        assert_eq!(again.signer.public_key(), created.signer.public_key());

        let new_id = rotate(&path, 3).unwrap();
        let rotated = load(&path).unwrap();
        assert_eq!(rotated.keys.current().id(), new_id);
        assert!(rotated.keys.get(created.keys.current().id()).is_some(), "old keys stay");
        assert_eq!(rotated.signer.public_key(), created.signer.public_key(), "the signing key stays");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.audit-key");
        load_or_create(&path, 1).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = load(&path).err().unwrap();
        assert!(refused.contains("chmod 600"), "{refused}");
    }

    #[test]
    fn default_paths_sit_beside_the_database() {
        assert_eq!(default_path("sqlite://data/cs.db?mode=rwc"), PathBuf::from("data/cs.db.audit-key"));
        assert_eq!(default_path("postgres://u@h/db"), PathBuf::from("countersign.audit-key"));
        assert_eq!(
            default_checkpoint_path(Path::new("data/cs.db.audit-key")),
            PathBuf::from("data/cs.db.audit-checkpoints")
        );
        assert_eq!(default_checkpoint_path(Path::new("/etc/keys.json")), PathBuf::from("/etc/keys.json.checkpoints"));
    }
}
