//! R13 outside the database: the audit key file, signed checkpoints (a file of their own, and
//! the export sinks) and what verification gathers from them.

pub mod checkpoints;
pub mod keys;

use countersign_core::audit::{Checkpoint, CheckpointKind, CheckpointSigner};
use countersign_core::Millis;
use countersign_store::{AuditKeyring, Store, VerifyInputs, VerifyReport};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How the running server keeps its audit trail outside the database.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub signer: Arc<CheckpointSigner>,
    /// Every checkpoint this server makes is appended here (JSON lines).
    pub checkpoint_file: PathBuf,
    /// A checkpoint after this many entries…
    pub checkpoint_entries: i64,
    /// …or this long after the last one, whichever comes first (if anything was appended).
    pub checkpoint_interval: Duration,
}

/// The key file, loaded (or created at first start).
pub struct AuditTrail {
    pub keyring: AuditKeyring,
    pub signer: Arc<CheckpointSigner>,
    /// Whether the key file was created now: its public key is worth printing.
    pub created: bool,
}

impl AuditTrail {
    pub fn open(key_file: &Path, now: Millis) -> Result<AuditTrail, String> {
        let (secrets, created) = keys::load_or_create(key_file, now)?;
        Ok(AuditTrail { keyring: keys::keyring(key_file, secrets.keys), signer: Arc::new(secrets.signer), created })
    }
}

/// At start, after connecting with the keys: keys the chain if it is not keyed yet (a database
/// older than the keyed chain, or a new one), and writes the `keyingStarted` checkpoint to the
/// checkpoint file and the database.
pub async fn start(store: &Store, settings: &AuditSettings, now: Millis) -> Result<(), String> {
    if let Some(unkeyed) = store.start_keying(now).await.map_err(|e| e.to_string())? {
        let checkpoint = Checkpoint::sign(&settings.signer, CheckpointKind::KeyingStarted, &unkeyed, now);
        checkpoints::record(store, &settings.checkpoint_file, &checkpoint).await?;
        tracing::info!(unkeyed_entries = unkeyed.seq, "the audit chain is keyed from here on");
    }
    Ok(())
}

/// Verifies with everything this server holds: its keys, its public key, the checkpoint file
/// and the database's checkpoints. An unreadable checkpoint file is reported, not skipped.
pub async fn verify(
    store: &Store,
    settings: Option<&AuditSettings>,
) -> Result<VerifyReport, countersign_store::StoreError> {
    let keys = store.audit_keys().map(AuditKeyring::keys);
    let mut checkpoints = Vec::new();
    if let Some(settings) = settings {
        match checkpoints::read_file(&settings.checkpoint_file) {
            Ok(from_file) => checkpoints = from_file,
            Err(reason) => return Ok(VerifyReport::unverifiable(reason)),
        }
    }
    let inputs =
        VerifyInputs { keys: keys.as_deref(), public_key: settings.map(|s| s.signer.public_key()), checkpoints };
    store.verify_audit(inputs).await
}
