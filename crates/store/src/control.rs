//! R16: reading who controls which account from the provenance of live credentials (core's
//! `control` module holds the rule). Every read happens inside the caller's transaction, so a
//! decision sees the credentials as they are when it commits.

use crate::directory::Actor;
use crate::rows::{json, text};
use crate::{placeholders, RequestRecord, Result, Store};
use countersign_core::control::{ControlEdge, ControlGraph, CredentialKind};
use countersign_core::Millis;
use sqlx::AnyConnection;
use std::collections::{BTreeMap, BTreeSet};

/// Control chains longer than this are not followed further; a deeper chain would need this many
/// accounts each taken over through the one before, and the graph read so far already decides.
const MAX_DEPTH: usize = 16;

/// The direct controllers of `accounts` through their live credentials: the password, every
/// unexpired session, every unexpired token, every live passkey and every linked single sign-on
/// identity whose provenance names other accounts.
async fn direct_edges(conn: &mut AnyConnection, accounts: &[String], now: Millis) -> Result<Vec<ControlEdge>> {
    let n = accounts.len();
    let sql = format!(
        "SELECT id AS account_id, 'password' AS via, password_controllers AS controllers FROM accounts \
         WHERE id IN ({}) AND password_hash IS NOT NULL AND password_controllers <> '[]' \
         UNION ALL SELECT account_id, 'session' AS via, controllers FROM sessions \
         WHERE account_id IN ({}) AND expires_at > $1 AND controllers <> '[]' \
         UNION ALL SELECT account_id, 'token' AS via, controllers FROM api_tokens \
         WHERE account_id IN ({}) AND (expires_at IS NULL OR expires_at > $1) AND controllers <> '[]' \
         UNION ALL SELECT account_id, 'passkey' AS via, controllers FROM passkeys \
         WHERE account_id IN ({}) AND removed_at IS NULL AND controllers <> '[]' \
         UNION ALL SELECT account_id, 'ssoIdentity' AS via, controllers FROM sso_identities \
         WHERE account_id IN ({}) AND controllers <> '[]'",
        placeholders(2, n),
        placeholders(2 + n, n),
        placeholders(2 + 2 * n, n),
        placeholders(2 + 3 * n, n),
        placeholders(2 + 4 * n, n),
    );
    let mut query = sqlx::query(&sql).bind(now);
    for _ in 0..5 {
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

/// The control relation reachable from `seeds` (transitively), with `recorded` control added
/// (see `CredentialKind::Submitted`), and every account's username.
pub(crate) async fn control_graph(
    conn: &mut AnyConnection,
    seeds: &[&str],
    recorded: Vec<ControlEdge>,
    now: Millis,
) -> Result<ControlGraph> {
    let mut seen: BTreeSet<String> = seeds.iter().map(|s| (*s).to_owned()).collect();
    seen.extend(recorded.iter().map(|e| e.controller.clone()));
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
    // After the live edges, so that a link is explained by a live credential where there is one.
    edges.extend(recorded);
    // Names are for the messages of a link; with no edge there is none to explain (the one link
    // left, an account with itself, is R3's to refuse), and the common case costs one query.
    let names = if edges.is_empty() { BTreeMap::new() } else { usernames(conn, &seen).await? };
    Ok(ControlGraph::new(edges, names))
}

/// The control relation around a request: its requester, its approvals, and `candidates`, with
/// the control recorded when it was submitted and when each approval was given.
pub(crate) async fn request_control(
    conn: &mut AnyConnection,
    record: &RequestRecord,
    candidates: &[&str],
    now: Millis,
) -> Result<ControlGraph> {
    let recorded_edges = |account: &str, controllers: &[String], via: CredentialKind| -> Vec<ControlEdge> {
        controllers
            .iter()
            .filter(|c| c.as_str() != account)
            .map(|c| ControlEdge { account: account.to_owned(), controller: c.clone(), via })
            .collect()
    };
    let mut recorded = recorded_edges(&record.requested_by, &record.requester_controllers, CredentialKind::Submitted);
    for approval in &record.approvals {
        recorded.extend(recorded_edges(&approval.approver_id, &approval.controllers, CredentialKind::Approved));
    }
    let seeds: Vec<&str> = candidates
        .iter()
        .copied()
        .chain([record.requested_by.as_str()])
        .chain(record.approvals.iter().map(|a| a.approver_id.as_str()))
        .collect();
    control_graph(conn, &seeds, recorded, now).await
}

/// Everyone who controls `actor` as it acts now: through its credentials, and through the one it
/// is acting with. Recorded with a request and with an approval.
pub(crate) async fn controllers_now(conn: &mut AnyConnection, actor: &Actor, now: Millis) -> Result<Vec<String>> {
    let seeds: Vec<&str> = std::iter::once(actor.id.as_str()).chain(actor.via.iter().map(String::as_str)).collect();
    let graph = control_graph(conn, &seeds, vec![], now).await?;
    let mut controllers: BTreeSet<String> = BTreeSet::new();
    for seed in &seeds {
        controllers.extend(graph.control_set(seed).into_keys());
    }
    controllers.remove(&actor.id);
    Ok(controllers.into_iter().collect())
}

impl Store {
    /// R16, for display: the control relation around `accounts` now (who controls whom).
    pub async fn control_graph(&self, accounts: &[&str], now: Millis) -> Result<ControlGraph> {
        let mut conn = self.pool().acquire().await?;
        control_graph(&mut conn, accounts, vec![], now).await
    }

    /// R16, for display: the control relation around a request and `candidates`, as a decision
    /// would read it.
    pub async fn request_control(
        &self,
        record: &RequestRecord,
        candidates: &[&str],
        now: Millis,
    ) -> Result<ControlGraph> {
        let mut conn = self.pool().acquire().await?;
        request_control(&mut conn, record, candidates, now).await
    }
}
