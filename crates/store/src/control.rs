//! R16: reading who controls which account from the provenance of live credentials (core's
//! `control` module holds the rule). Every read happens inside the caller's transaction, so a
//! decision sees the credentials as they are when it commits.

use crate::rows::{json, text};
use crate::{placeholders, Result, Store};
use countersign_core::control::{ControlEdge, ControlGraph, CredentialKind};
use countersign_core::Millis;
use sqlx::AnyConnection;
use std::collections::{BTreeMap, BTreeSet};

/// Control chains longer than this are not followed further; a deeper chain would need this many
/// accounts each taken over through the one before, and the graph read so far already decides.
const MAX_DEPTH: usize = 16;

/// The direct controllers of `accounts` through their live credentials: the password, every
/// unexpired session and every unexpired token whose provenance names other accounts.
async fn direct_edges(conn: &mut AnyConnection, accounts: &[String], now: Millis) -> Result<Vec<ControlEdge>> {
    let n = accounts.len();
    let sql = format!(
        "SELECT id AS account_id, 'password' AS via, password_controllers AS controllers FROM accounts \
         WHERE id IN ({}) AND password_hash IS NOT NULL AND password_controllers <> '[]' \
         UNION ALL SELECT account_id, 'session' AS via, controllers FROM sessions \
         WHERE account_id IN ({}) AND expires_at > $1 AND controllers <> '[]' \
         UNION ALL SELECT account_id, 'token' AS via, controllers FROM api_tokens \
         WHERE account_id IN ({}) AND (expires_at IS NULL OR expires_at > $1) AND controllers <> '[]'",
        placeholders(2, n),
        placeholders(2 + n, n),
        placeholders(2 + 2 * n, n),
    );
    let mut query = sqlx::query(&sql).bind(now);
    for _ in 0..3 {
        for id in accounts {
            query = query.bind(id);
        }
    }
    let rows = query.fetch_all(&mut *conn).await?;
    let mut edges = Vec::new();
    for row in &rows {
        let account = text(row, "account_id")?;
        let via: CredentialKind = text(row, "via")?.parse().map_err(crate::StoreError::Corrupt)?;
        let controllers: Vec<String> = json(row, "controllers")?;
        edges.extend(controllers.into_iter().map(|controller| ControlEdge {
            account: account.clone(),
            controller,
            via,
        }));
    }
    Ok(edges)
}

async fn usernames(conn: &mut AnyConnection, ids: &BTreeSet<String>) -> Result<BTreeMap<String, String>> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let sql = format!("SELECT id, username FROM accounts WHERE id IN ({})", placeholders(1, ids.len()));
    let mut query = sqlx::query(&sql);
    for id in ids {
        query = query.bind(id);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    rows.iter().map(|r| Ok((text(r, "id")?, text(r, "username")?))).collect()
}

/// The control relation reachable from `seeds` (transitively), with every account's username.
pub(crate) async fn control_graph(conn: &mut AnyConnection, seeds: &[&str], now: Millis) -> Result<ControlGraph> {
    let mut seen: BTreeSet<String> = seeds.iter().map(|s| (*s).to_owned()).collect();
    let mut frontier: Vec<String> = seen.iter().cloned().collect();
    let mut edges = Vec::new();
    for _ in 0..MAX_DEPTH {
        if frontier.is_empty() {
            break;
        }
        let found = direct_edges(conn, &frontier, now).await?;
        frontier = found.iter().map(|e| e.controller.clone()).filter(|c| seen.insert(c.clone())).collect();
        frontier.sort();
        frontier.dedup();
        edges.extend(found);
    }
    let names = usernames(conn, &seen).await?;
    Ok(ControlGraph::new(edges, names))
}

impl Store {
    /// R16, for display: the control relation around `accounts` now (who controls whom).
    pub async fn control_graph(&self, accounts: &[&str], now: Millis) -> Result<ControlGraph> {
        let mut conn = self.pool().acquire().await?;
        control_graph(&mut conn, accounts, now).await
    }
}
