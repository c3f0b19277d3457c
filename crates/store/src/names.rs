//! R20: no two live accounts have names a screen shows alike. Each account row keeps the
//! skeletons (`countersign_core::lookalike::skeleton`) of its display name, under a unique index
//! (`accounts_display_name_skeleton`), and of its username. A name is checked against both
//! columns of every other live account when it is proposed (so that a held change that could
//! never apply is refused at once, naming the account it is too like) and again as it is
//! written; the unique index settles two writes that race past the check on several replicas.
//!
//! Existing accounts get their skeletons when the store opens ([`Store::backfill_name_skeletons`]).

use crate::error::{broken_unique_rule, UniqueRule};
use crate::rows::{opt_text, text};
use crate::{Backend, Result, Store, StoreError, WriteTx};
use countersign_core::lookalike::{account_display_name, skeleton, TakenName};
use countersign_core::DomainError;
use sqlx::any::AnyArguments;
use sqlx::{Any, AnyConnection};

/// The live account other than `except_id` that a name with skeleton `key` is too like, and
/// which of its names: its display name first, the oldest account first.
pub(crate) async fn holder_of(
    conn: &mut AnyConnection,
    key: &str,
    except_id: &str,
) -> Result<Option<(String, TakenName)>> {
    let row = sqlx::query(
        "SELECT username, display_name_skeleton FROM accounts WHERE deleted_at IS NULL AND id <> $1 \
         AND (display_name_skeleton = $2 OR username_skeleton = $2) \
         ORDER BY CASE WHEN display_name_skeleton = $2 THEN 0 ELSE 1 END, created_at, id LIMIT 1",
    )
    .bind(except_id)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let taken = if opt_text(&row, "display_name_skeleton")?.as_deref() == Some(key) {
        TakenName::DisplayName
    } else {
        TakenName::Username
    };
    Ok(Some((text(&row, "username")?, taken)))
}

/// The skeletons an account's row is written with.
#[derive(Debug, Clone)]
pub(crate) struct NameKeys {
    pub display_name: String,
    pub username: String,
}

/// R20: `display_name` as the display name of account `account_id` (named `username`): refused
/// if it holds a character a screen hides, or is too like another live account's display name
/// or username. `new_username` also checks the username itself, for an account being created.
pub(crate) async fn check_names(
    conn: &mut AnyConnection,
    account_id: &str,
    username: &str,
    display_name: &str,
    new_username: bool,
) -> Result<NameKeys> {
    if new_username {
        let taken = sqlx::query("SELECT id FROM accounts WHERE username = $1 AND deleted_at IS NULL")
            .bind(username)
            .fetch_optional(&mut *conn)
            .await?;
        if taken.is_some() {
            return Err(StoreError::Conflict(format!("the username '{username}' is taken")));
        }
    }
    let display_name = account_display_name(display_name)?;
    let keys = NameKeys { display_name: skeleton(&display_name), username: skeleton(username) };
    if let Some((holder, taken)) = holder_of(conn, &keys.display_name, account_id).await? {
        return Err(DomainError::NameTaken { name: display_name, holder, taken }.into());
    }
    if new_username {
        if let Some((holder, taken)) = holder_of(conn, &keys.username, account_id).await? {
            return Err(DomainError::NameTaken { name: username.to_owned(), holder, taken }.into());
        }
    }
    Ok(keys)
}

/// Runs `query`, a write of an account row that sets its display-name skeleton `key`, so that
/// losing a race for the name is the same clean refusal as the check before it: on PostgreSQL
/// inside a savepoint (a failed statement would otherwise abort the whole transaction, and a
/// request whose completion loses the race must still be recorded as `failed`); on SQLite,
/// whose one writer already serialises the check and the write, a failed statement undoes only
/// itself.
pub(crate) async fn write_guarded<'q>(
    tx: &mut WriteTx,
    query: sqlx::query::Query<'q, Any, AnyArguments<'q>>,
    account_id: &str,
    display_name: &str,
    key: &str,
) -> Result<()> {
    let guard = tx.backend == Backend::Postgres;
    if guard {
        sqlx::query("SAVEPOINT countersign_account_name").execute(tx.conn()).await?;
    }
    match query.execute(tx.conn()).await {
        Ok(_) => {
            if guard {
                sqlx::query("RELEASE SAVEPOINT countersign_account_name").execute(tx.conn()).await?;
            }
            Ok(())
        }
        Err(e) => {
            let rule = broken_unique_rule(&e);
            if guard {
                sqlx::query("ROLLBACK TO SAVEPOINT countersign_account_name").execute(tx.conn()).await?;
            }
            match rule {
                Some(UniqueRule::DisplayNameTaken) => {
                    let holder = holder_of(tx.conn(), key, account_id).await?;
                    let (holder, taken) =
                        holder.unwrap_or_else(|| ("(another account)".into(), TakenName::DisplayName));
                    Err(DomainError::NameTaken { name: display_name.to_owned(), holder, taken }.into())
                }
                Some(UniqueRule::UsernameTaken) => Err(StoreError::Conflict("the username is taken".into())),
                _ => Err(e.into()),
            }
        }
    }
}

/// What the backfill did with one existing account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Backfilled {
    Kept,
    Flagged(String),
}

/// Decides the display-name skeleton of an existing account, given the skeletons already kept
/// by older accounts: kept unless the name hides characters or is too like an older account's
/// display name or any other account's username.
pub(crate) fn backfill_one(display_name: &str, kept_by: Option<&str>, username_of: Option<&str>) -> Backfilled {
    if let Err(refused) = account_display_name(display_name) {
        return Backfilled::Flagged(format!("{refused}; give the account a new display name"));
    }
    match (kept_by, username_of) {
        (Some(holder), _) => Backfilled::Flagged(format!(
            "this display name is too like the display name of account '{holder}', which is older; \
             give the account a new display name"
        )),
        (None, Some(holder)) => Backfilled::Flagged(format!(
            "this display name is too like the username of account '{holder}'; give the account a new display name"
        )),
        (None, None) => Backfilled::Kept,
    }
}

impl Store {
    /// R20 for data written before the skeletons existed: gives every live account without them
    /// its username skeleton and, oldest account first, its display-name skeleton, or a flag
    /// saying why not (see [`backfill_one`]). Start-up never fails over a name: a flagged account
    /// works as before, is shown with a warning, and must take a new display name at its next
    /// change. Runs at every open; after the first it finds nothing to do in one read. Returns
    /// how many accounts were flagged.
    pub async fn backfill_name_skeletons(&self) -> Result<usize> {
        let pending =
            sqlx::query("SELECT id FROM accounts WHERE deleted_at IS NULL AND username_skeleton IS NULL LIMIT 1")
                .fetch_optional(self.pool())
                .await?;
        if pending.is_none() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        // One replica at a time; the second finds the work done.
        tx.serialise_on_chain_head().await?;
        let rows = sqlx::query(
            "SELECT id, username, display_name, display_name_skeleton, username_skeleton FROM accounts \
             WHERE deleted_at IS NULL ORDER BY created_at, id",
        )
        .fetch_all(tx.conn())
        .await?;
        let mut accounts = Vec::with_capacity(rows.len());
        for row in &rows {
            accounts.push((
                text(row, "id")?,
                text(row, "username")?,
                text(row, "display_name")?,
                opt_text(row, "display_name_skeleton")?,
                opt_text(row, "username_skeleton")?.is_none(),
            ));
        }
        // Usernames first: they are immutable, and every display name is measured against all
        // of them.
        let mut usernames: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        for (id, username, ..) in &accounts {
            usernames.entry(skeleton(username)).or_insert_with(|| id.clone());
        }
        let username_of = |key: &str, id: &str| -> Option<String> {
            let holder = usernames.get(key).filter(|holder| holder.as_str() != id)?;
            accounts.iter().find(|a| &a.0 == holder).map(|a| a.1.clone())
        };
        let mut kept: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        for (_, username, _, existing, _) in &accounts {
            if let Some(key) = existing {
                kept.insert(key.clone(), username.clone());
            }
        }
        let mut flagged = 0;
        for (id, username, display_name, existing, needs_username) in &accounts {
            if !needs_username {
                continue;
            }
            let key = skeleton(display_name);
            let decided = match existing {
                Some(_) => Backfilled::Kept,
                None => {
                    backfill_one(display_name, kept.get(&key).map(String::as_str), username_of(&key, id).as_deref())
                }
            };
            match decided {
                Backfilled::Kept => {
                    if existing.is_none() {
                        kept.insert(key.clone(), username.clone());
                    }
                    sqlx::query(
                        "UPDATE accounts SET username_skeleton = $1, display_name_skeleton = $2, display_name_flag = NULL \
                         WHERE id = $3",
                    )
                    .bind(skeleton(username))
                    .bind(existing.clone().unwrap_or(key))
                    .bind(id)
                    .execute(tx.conn())
                    .await?;
                }
                Backfilled::Flagged(reason) => {
                    flagged += 1;
                    sqlx::query(
                        "UPDATE accounts SET username_skeleton = $1, display_name_skeleton = NULL, display_name_flag = $2 \
                         WHERE id = $3",
                    )
                    .bind(skeleton(username))
                    .bind(&reason)
                    .bind(id)
                    .execute(tx.conn())
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(flagged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backfill_keeps_a_fine_name_and_flags_the_rest_with_the_reason() {
        assert_eq!(backfill_one("Alice", None, None), Backfilled::Kept);
        let Backfilled::Flagged(why) = backfill_one("\u{410}lice", Some("alice2"), None) else { panic!() };
        assert!(why.contains("'alice2'"), "{why}");
        let Backfilled::Flagged(why) = backfill_one("\u{430}lice", None, Some("alice")) else { panic!() };
        assert!(why.contains("username of account 'alice'"), "{why}");
        let Backfilled::Flagged(why) = backfill_one("evil\u{202e}", None, None) else { panic!() };
        assert!(why.contains("\\u{202e}"), "{why}");
    }
}
