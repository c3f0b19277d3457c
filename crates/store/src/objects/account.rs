//! Accounts: people and services. Creating one is never protected (it is in no group yet);
//! deleting or disabling one, changing its password, e-mail address or display name, is
//! protected by the groups it is in (R9).

use super::{Current, Proposal};
use crate::audit::{append, NewAudit};
use crate::directory::{group_ids_of, groups_and_permissions_of, Actor, ACCOUNT_COLUMNS};
use crate::names::{check_names, write_guarded};
use crate::passkeys::apply_passkey_change;
use crate::rows::{int, opt_text, parsed, text};
use crate::{Result, StoreError, WriteTx};
use countersign_core::control::password_is_temporary;
use countersign_core::gate::{gate as decide, Gate, Subject};
use countersign_core::permission::PermissionSet;
use countersign_core::policy::AccessPolicy;
use countersign_core::profile::{Operation, ResourceType};
use countersign_core::state::{AccountState, ObjectState};
use countersign_core::Millis;
use serde_json::json;
use sqlx::AnyConnection;

pub(super) async fn load(tx: &mut WriteTx, id: &str) -> Result<Option<Current>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1 AND deleted_at IS NULL{}", tx.for_update());
    let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(tx.conn()).await? else { return Ok(None) };
    let state = AccountState {
        username: text(&row, "username")?,
        display_name: text(&row, "display_name")?,
        email: opt_text(&row, "email")?,
        kind: parsed(&row, "kind")?,
        enabled: int(&row, "enabled")? != 0,
        password: None,
        sessions: None,
        passkey: None,
    };
    Ok(Some(Current { state: ObjectState::Account(state), version: int(&row, "version")? }))
}

fn account_of(state: Option<&ObjectState>) -> Option<&AccountState> {
    match state {
        Some(ObjectState::Account(account)) => Some(account),
        _ => None,
    }
}

/// Whether a change to an existing account touches what lets it sign in or act: its password,
/// its enabled state, its sessions, or its existence (R9, R19).
fn changes_credentials(proposal: &Proposal) -> bool {
    let enabled = |state: Option<&ObjectState>| account_of(state).map(|a| a.enabled);
    let ends_sessions = account_of(proposal.after.as_ref()).is_some_and(|a| a.sessions.is_some());
    let changes_passkeys = account_of(proposal.after.as_ref()).is_some_and(|a| a.passkey.is_some());
    proposal.resource_type == ResourceType::Account
        && proposal.operation != Operation::Create
        && (proposal.operation == Operation::Delete
            || proposal.secret.is_some()
            || ends_sessions
            || changes_passkeys
            || enabled(proposal.before.as_ref()) != enabled(proposal.after.as_ref()))
}

/// R19: such a change to another account is refused unless the proposer holds every
/// permission that account holds (read in the change's own transaction).
pub(crate) async fn ensure_no_escalation(
    tx: &mut WriteTx,
    proposal: &Proposal,
    proposer: &Actor,
    permissions: &PermissionSet,
) -> Result<()> {
    if proposal.object_id == proposer.id || !changes_credentials(proposal) {
        return Ok(());
    }
    let (_, held_by_target) = groups_and_permissions_of(tx.conn(), &proposal.object_id).await?;
    Ok(countersign_core::accounts::ensure_no_escalation(permissions, &held_by_target)?)
}

/// R9: whether a change to an existing account touches anything approvers rely on: what R19
/// counts, and also where approval requests reach it (its e-mail address) and how approvers
/// recognise it (its display name). That is any change to its state.
fn changes_identity(proposal: &Proposal) -> bool {
    changes_credentials(proposal)
        || (proposal.operation != Operation::Create
            && account_of(proposal.before.as_ref()) != account_of(proposal.after.as_ref()))
}

pub(super) async fn gate(tx: &mut WriteTx, proposal: &Proposal, policies: &[AccessPolicy]) -> Result<Gate> {
    if !changes_identity(proposal) {
        return Ok(decide(Subject::Unprotected, policies));
    }
    let group_ids = group_ids_of(tx.conn(), &proposal.object_id).await?;
    Ok(decide(Subject::AccountIdentity { account_group_ids: &group_ids }, policies))
}

/// R20, at submission: a change that gives an account a display name too like another
/// account's name (or a new account a username too like one) is refused now, naming that
/// account, rather than held as a request that could never be applied.
pub(crate) async fn check_proposed_names(tx: &mut WriteTx, proposal: &Proposal) -> Result<()> {
    if proposal.resource_type != ResourceType::Account {
        return Ok(());
    }
    let Some(after) = account_of(proposal.after.as_ref()) else { return Ok(()) };
    let creating = proposal.operation == Operation::Create;
    check_names(tx.conn(), &proposal.object_id, &after.username, &after.display_name, creating).await?;
    Ok(())
}

pub(super) async fn apply(tx: &mut WriteTx, proposal: &Proposal, now: Millis) -> Result<()> {
    let id = proposal.object_id.as_str();
    if proposal.operation == Operation::Delete {
        return delete(tx.conn(), id, now).await;
    }
    let after = account_of(proposal.after.as_ref()).ok_or_else(|| proposal.malformed())?;
    if let Some(change) = &after.passkey {
        // Issue 17: a passkey added or removed (the secret is the passkey, not a password).
        sqlx::query("UPDATE accounts SET version = version + 1, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(tx.conn())
            .await?;
        return apply_passkey_change(
            tx,
            id,
            change,
            proposal.secret.as_deref(),
            proposal.secret_set_by.as_deref(),
            &proposal.secret_controllers,
            now,
        )
        .await;
    }
    let enabled = after.enabled;
    // R16: who controls the new password, and whether it is temporary.
    let controllers = json!(proposal.secret_controllers).to_string();
    let temporary = i64::from(password_is_temporary(id, proposal.secret_set_by.as_deref()));
    // R20: the display name is checked here too, not only at submission: a held change is
    // applied long after it was proposed, and the name may have been taken since.
    let creating = proposal.operation == Operation::Create;
    let keys = check_names(tx.conn(), id, &after.username, &after.display_name, creating).await?;
    if creating {
        let insert = sqlx::query(
            "INSERT INTO accounts (id, username, display_name, kind, email, password_hash, enabled, version, created_at, updated_at, \
             password_controllers, must_change_password, display_name_skeleton, username_skeleton) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8, $9, $10, $11, $12)",
        )
        .bind(id)
        .bind(&after.username)
        .bind(&after.display_name)
        .bind(after.kind.as_str())
        .bind(after.email.as_deref())
        .bind(proposal.secret.as_deref())
        .bind(i64::from(enabled))
        .bind(now)
        .bind(&controllers)
        .bind(if proposal.secret.is_some() { temporary } else { 0 })
        .bind(&keys.display_name)
        .bind(&keys.username);
        return write_guarded(tx, insert, id, &after.display_name, &keys.display_name).await.map_err(|e| match e {
            StoreError::Conflict(_) => StoreError::Conflict(format!("the username '{}' is taken", after.username)),
            other => other,
        });
    }
    // A flag from before names were checked goes with the name that passed the check.
    let update = sqlx::query(
        "UPDATE accounts SET display_name = $1, email = $2, enabled = $3, \
         password_hash = COALESCE($4, password_hash), version = version + 1, updated_at = $5, \
         password_controllers = CASE WHEN $4 IS NULL THEN password_controllers ELSE $7 END, \
         must_change_password = CASE WHEN $4 IS NULL THEN must_change_password ELSE $8 END, \
         display_name_skeleton = $9, username_skeleton = $10, display_name_flag = NULL WHERE id = $6",
    )
    .bind(&after.display_name)
    .bind(after.email.as_deref())
    .bind(i64::from(enabled))
    .bind(proposal.secret.as_deref())
    .bind(now)
    .bind(id)
    .bind(&controllers)
    .bind(temporary)
    .bind(&keys.display_name)
    .bind(&keys.username);
    write_guarded(tx, update, id, &after.display_name, &keys.display_name).await?;
    if !enabled || proposal.secret.is_some() {
        revoke_credentials(tx.conn(), id).await?;
    } else if after.sessions.is_some() {
        let ended = sqlx::query("DELETE FROM sessions WHERE account_id = $1")
            .bind(id)
            .execute(tx.conn())
            .await?
            .rows_affected();
        let entry = NewAudit::new("auth", "sessionsEnded").on("account", id).details(json!({"sessionsEnded": ended}));
        append(tx, entry, now);
    }
    Ok(())
}

async fn delete(conn: &mut AnyConnection, id: &str, now: Millis) -> Result<()> {
    sqlx::query(
        "UPDATE accounts SET deleted_at = $1, enabled = 0, version = version + 1, updated_at = $1 WHERE id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    revoke_credentials(conn, id).await?;
    // Leaving its groups changes them: a pending membership change on one is now stale (R12).
    sqlx::query(
        "UPDATE directory_groups SET version = version + 1, updated_at = $1 \
         WHERE id IN (SELECT group_id FROM group_members WHERE account_id = $2)",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM group_members WHERE account_id = $1").bind(id).execute(&mut *conn).await?;
    Ok(())
}

/// Ends every session and API token of an account whose password or enabled state changed.
async fn revoke_credentials(conn: &mut AnyConnection, account_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE account_id = $1").bind(account_id).execute(&mut *conn).await?;
    sqlx::query("DELETE FROM api_tokens WHERE account_id = $1").bind(account_id).execute(&mut *conn).await?;
    Ok(())
}
