//! Signed checkpoints of the audit chain's head: made every N entries or T seconds, appended
//! to the checkpoint file (outside the database), kept in the database for the export sinks.

use super::AuditSettings;
use countersign_core::audit::{parse_checkpoints, Checkpoint, CheckpointKind};
use countersign_core::Millis;
use countersign_store::Store;
use std::io::Write;
use std::path::Path;

/// Appends `checkpoint` to the file, durably, then keeps it in the database.
pub async fn record(store: &Store, file: &Path, checkpoint: &Checkpoint) -> Result<(), String> {
    append_to_file(file, checkpoint)?;
    store.save_checkpoint(checkpoint).await.map_err(|e| e.to_string())?;
    Ok(())
}

fn append_to_file(file: &Path, checkpoint: &Checkpoint) -> Result<(), String> {
    let failed = |e: std::io::Error| format!("cannot append to the checkpoint file {}: {e}", file.display());
    if let Some(dir) = file.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    let mut line = serde_json::to_string(checkpoint).map_err(|e| e.to_string())?;
    line.push('\n');
    let mut out = std::fs::OpenOptions::new().create(true).append(true).open(file).map_err(failed)?;
    out.write_all(line.as_bytes()).and_then(|()| out.sync_data()).map_err(failed)
}

/// The checkpoints in the file; none if there is no file yet.
pub fn read_file(file: &Path) -> Result<Vec<Checkpoint>, String> {
    match std::fs::read_to_string(file) {
        Ok(text) if text.trim().is_empty() => Ok(Vec::new()),
        Ok(text) => parse_checkpoints(&text).map_err(|e| format!("the checkpoint file {}: {e}", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("cannot read the checkpoint file {}: {e}", file.display())),
    }
}

/// Whether the head is due a checkpoint after `last` (seq and time of the last one).
fn due(head_seq: i64, last: Option<(i64, Millis)>, settings: &AuditSettings, now: Millis) -> bool {
    let interval = settings.checkpoint_interval.as_millis() as Millis;
    match last {
        None => head_seq > 0,
        Some((seq, at)) => head_seq > seq && (head_seq - seq >= settings.checkpoint_entries || now - at >= interval),
    }
}

/// Makes a checkpoint if one is due; returns it.
pub async fn checkpoint_if_due(
    store: &Store,
    settings: &AuditSettings,
    last: &mut Option<(i64, Millis)>,
    now: Millis,
) -> Result<Option<Checkpoint>, String> {
    let head = store.audit_head().await.map_err(|e| e.to_string())?;
    if !due(head.seq, *last, settings, now) {
        return Ok(None);
    }
    let checkpoint = Checkpoint::sign(&settings.signer, CheckpointKind::Periodic, &head, now);
    record(store, &settings.checkpoint_file, &checkpoint).await?;
    *last = Some((checkpoint.seq, now));
    Ok(Some(checkpoint))
}

/// Checks for a due checkpoint every second (or the interval, if shorter), on every replica.
pub async fn run_forever(store: Store, settings: AuditSettings, clock: std::sync::Arc<dyn countersign_core::Clock>) {
    let tick = settings.checkpoint_interval.min(std::time::Duration::from_secs(1));
    let mut interval = tokio::time::interval(tick);
    let mut last = match store.checkpoints_after(Millis::MIN, i64::MAX).await {
        Ok(kept) => kept.into_iter().flatten().map(|c| (c.seq, c.at)).max(),
        Err(_) => None,
    };
    loop {
        interval.tick().await;
        if let Err(e) = checkpoint_if_due(&store, &settings, &mut last, clock.now()).await {
            tracing::warn!(error = %e, "making an audit checkpoint failed");
        }
    }
}
