//! The admin center's flash: a notice the server sets after an action, kept with the session
//! (so every replica sees it) and shown once, on the session's next page.

use crate::rows::opt_text;
use crate::{Result, Store};

impl Store {
    /// Sets the notice the session's next page shows (replacing one not yet shown).
    pub async fn set_flash(&self, session_id_hash: &str, notice: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE sessions SET flash = $1 WHERE id_hash = $2")
            .bind(notice)
            .bind(session_id_hash)
            .execute(tx.conn())
            .await?;
        tx.commit().await
    }

    /// Takes the session's notice, if it has one: it is shown once. Two pages loaded at the
    /// same moment cannot both take it (the clearing update compares it first).
    pub async fn take_flash(&self, session_id_hash: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT flash FROM sessions WHERE id_hash = $1 AND flash IS NOT NULL")
            .bind(session_id_hash)
            .fetch_optional(self.pool())
            .await?;
        let Some(notice) = row.map(|row| opt_text(&row, "flash")).transpose()?.flatten() else { return Ok(None) };
        let mut tx = self.begin_write().await?;
        let cleared = sqlx::query("UPDATE sessions SET flash = NULL WHERE id_hash = $1 AND flash = $2")
            .bind(session_id_hash)
            .bind(&notice)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok((cleared.rows_affected() == 1).then_some(notice))
    }
}
