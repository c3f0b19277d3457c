//! R13's export sinks: how far each sink has accepted the audit log, and which exporter may send
//! to it. One cursor row per sink (migration 0014), moved only after the sink accepted a batch,
//! so delivery is at least once, in order, and resumes after an outage or a restart; a lease on
//! the row lets one replica at a time send to a sink. The lease is a compare-and-set on the row,
//! not a lock held while sending: SQLite's writer is shared by every write of the process.

use crate::rows::{int, text};
use crate::{Result, Store};
use countersign_core::audit::Checkpoint;
use countersign_core::Millis;

/// A checkpoint older than a sink's newest accepted one by at most this is still sent if the
/// sink has not accepted it: replicas stamp checkpoints with their own clocks and save them a
/// moment later, so they do not reach the database in the order of their `at`.
pub const LATE_CHECKPOINTS: Millis = 3_600_000;

/// A sink's place, as its lease holder reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportCursor {
    /// The last audit entry the sink accepted (0: none yet).
    pub entry_seq: i64,
    /// The newest `at` of a checkpoint the sink accepted.
    pub checkpoint_at: Millis,
}

/// A stored checkpoint a sink has not accepted yet; `checkpoint` is `Err` with why when its row
/// does not read as one (it is passed over, and marked so that it is not read again).
#[derive(Debug, Clone)]
pub struct PendingCheckpoint {
    pub seq: i64,
    pub kind: String,
    pub at: Millis,
    pub checkpoint: std::result::Result<Checkpoint, String>,
}

impl Store {
    /// Takes or renews `holder`'s lease on `sink` until `until`, when nobody else holds it (or
    /// their lease ran out by `now`). A sink seen for the first time starts at the log's first
    /// entry. `None` when another exporter holds it.
    pub async fn lease_audit_export(
        &self,
        sink: &str,
        holder: &str,
        now: Millis,
        until: Millis,
    ) -> Result<Option<ExportCursor>> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO audit_export_cursors (sink, entry_seq, checkpoint_at, lease_holder, lease_until, updated_at) \
             VALUES ($1, 0, 0, NULL, 0, $2) ON CONFLICT (sink) DO NOTHING",
        )
        .bind(sink)
        .bind(now)
        .execute(tx.conn())
        .await?;
        let row = sqlx::query(
            "UPDATE audit_export_cursors SET lease_holder = $2, lease_until = $3 \
             WHERE sink = $1 AND (lease_holder IS NULL OR lease_holder = $2 OR lease_until <= $4) \
             RETURNING entry_seq, checkpoint_at",
        )
        .bind(sink)
        .bind(holder)
        .bind(until)
        .bind(now)
        .fetch_optional(tx.conn())
        .await?;
        let cursor = match row {
            Some(row) => {
                Some(ExportCursor { entry_seq: int(&row, "entry_seq")?, checkpoint_at: int(&row, "checkpoint_at")? })
            }
            None => None,
        };
        tx.commit().await?;
        Ok(cursor)
    }

    /// The checkpoints `sink` has not accepted, made after `since` (its newest accepted one's
    /// `at` less [`LATE_CHECKPOINTS`]) for entries up to `up_to_seq`, oldest first.
    pub async fn audit_export_checkpoints(
        &self,
        sink: &str,
        since: Millis,
        up_to_seq: i64,
        limit: i64,
    ) -> Result<Vec<PendingCheckpoint>> {
        let rows = sqlx::query(
            "SELECT c.seq AS seq, c.kind AS kind, c.at AS at, c.body AS body FROM audit_checkpoints c \
             WHERE c.at > $2 AND c.seq <= $3 AND NOT EXISTS (SELECT 1 FROM audit_export_checkpoints s \
             WHERE s.sink = $1 AND s.seq = c.seq AND s.kind = c.kind) ORDER BY c.at, c.seq LIMIT $4",
        )
        .bind(sink)
        .bind(since)
        .bind(up_to_seq)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let seq = int(row, "seq")?;
                let body = text(row, "body")?;
                Ok(PendingCheckpoint {
                    seq,
                    kind: text(row, "kind")?,
                    at: int(row, "at")?,
                    checkpoint: serde_json::from_str(&body)
                        .map_err(|e| format!("the stored checkpoint for entry {seq} does not parse: {e}")),
                })
            })
            .collect()
    }

    /// Records that `sink` accepted everything up to `cursor` and the checkpoints `sent`, if
    /// `holder` still holds its lease; `false` (and nothing recorded) if it lost it.
    pub async fn advance_audit_export(
        &self,
        sink: &str,
        holder: &str,
        cursor: ExportCursor,
        sent: &[PendingCheckpoint],
        now: Millis,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let moved = sqlx::query(
            "UPDATE audit_export_cursors SET entry_seq = $3, checkpoint_at = $4, updated_at = $5 \
             WHERE sink = $1 AND lease_holder = $2",
        )
        .bind(sink)
        .bind(holder)
        .bind(cursor.entry_seq)
        .bind(cursor.checkpoint_at)
        .bind(now)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if moved == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        for checkpoint in sent {
            sqlx::query(
                "INSERT INTO audit_export_checkpoints (sink, seq, kind, at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (sink, seq, kind) DO NOTHING",
            )
            .bind(sink)
            .bind(checkpoint.seq)
            .bind(&checkpoint.kind)
            .bind(checkpoint.at)
            .execute(tx.conn())
            .await?;
        }
        if !sent.is_empty() {
            // Older marks can no longer be asked about (see `audit_export_checkpoints`).
            sqlx::query("DELETE FROM audit_export_checkpoints WHERE sink = $1 AND at <= $2")
                .bind(sink)
                .bind(cursor.checkpoint_at.saturating_sub(LATE_CHECKPOINTS))
                .execute(tx.conn())
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Gives up `holder`'s lease on `sink` (at shutdown), so another exporter takes over at once.
    pub async fn release_audit_export(&self, sink: &str, holder: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE audit_export_cursors SET lease_holder = NULL, lease_until = 0 WHERE sink = $1 AND lease_holder = $2",
        )
        .bind(sink)
        .bind(holder)
        .execute(tx.conn())
        .await?;
        tx.commit().await
    }

    /// Every sink's last accepted entry, by name.
    pub async fn audit_export_positions(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT sink, entry_seq FROM audit_export_cursors ORDER BY sink")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|row| Ok((text(row, "sink")?, int(row, "entry_seq")?))).collect()
    }
}

#[cfg(test)]
mod tests;
