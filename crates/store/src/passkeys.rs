//! Passkeys (issue 17): the WebAuthn credentials of each account, and the ceremonies in
//! progress. A passkey is a credential like a password or a token: R9 holds a change to an
//! approver's passkeys made by anyone else, R16 records who registered each and who controls it,
//! R19 refuses a change to another account's passkeys by a caller who lacks its permissions.
//!
//! The credential (webauthn-rs's JSON) and the public key (core::step_up's text form) arrive
//! here already made: this module checks no signature. It keeps what must be shared by every
//! replica: the passkeys, and each ceremony's state, single-use and with an expiry.

use crate::audit::{append, NewAudit};
use crate::auth::{made_by, ClientInfo};
use crate::directory::Actor;
use crate::rows::{int, json as json_column, opt_int, opt_text, text};
use crate::{new_id, Result, Row, Store, StoreError, WriteTx};
use countersign_core::state::{PasskeyAction, PasskeyChange};
use countersign_core::{DomainError, Millis};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// One passkey as its owner (or an administrator) sees it: never the credential itself.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PasskeyRecord {
    pub id: String,
    pub account_id: String,
    pub name: String,
    /// base64url of the WebAuthn credential id.
    pub credential_id: String,
    /// The public key in `core::step_up` text form (what stored assertions verify against).
    pub public_key: String,
    pub created_at: Millis,
    /// R16: the account that registered it (`None`: the owner before this was recorded).
    pub created_by: Option<String>,
    /// R16: the accounts other than the owner that control it.
    pub controllers: Vec<String>,
    pub last_used_at: Option<Millis>,
    pub sign_count: i64,
}

/// A passkey with the webauthn-rs credential the ceremonies run on.
#[derive(Debug, Clone)]
pub struct StoredPasskey {
    pub record: PasskeyRecord,
    /// webauthn-rs `Passkey`, as JSON.
    pub credential: String,
}

/// A passkey a finished registration ceremony made, to be written. Travels in a held request
/// as its secret (`Proposal::secret`) when registered for another account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewPasskey {
    pub id: String,
    pub name: String,
    pub credential_id: String,
    pub credential: String,
    pub public_key: String,
}

/// A WebAuthn ceremony in progress, as stored.
#[derive(Debug, Clone)]
pub struct Ceremony {
    pub id: String,
    pub kind: String,
    pub account_id: Option<String>,
    pub session_hash: Option<String>,
    pub state: String,
    pub expires_at: Millis,
}

const PASSKEY_COLUMNS: &str = "id, account_id, name, credential_id, credential, public_key, sign_count, \
     created_at, created_by, controllers, last_used_at";

fn passkey_row(row: &Row) -> Result<StoredPasskey> {
    Ok(StoredPasskey {
        record: PasskeyRecord {
            id: text(row, "id")?,
            account_id: text(row, "account_id")?,
            name: text(row, "name")?,
            credential_id: text(row, "credential_id")?,
            public_key: text(row, "public_key")?,
            created_at: int(row, "created_at")?,
            created_by: opt_text(row, "created_by")?,
            controllers: json_column(row, "controllers")?,
            last_used_at: opt_int(row, "last_used_at")?,
            sign_count: int(row, "sign_count")?,
        },
        credential: text(row, "credential")?,
    })
}

/// How many passkeys one account may hold.
pub const MAX_PASSKEYS_PER_ACCOUNT: usize = 20;

/// Writes a passkey for `account_id` with its audit entry, in `tx`. R16: `controllers` are the
/// accounts that control it (see [`made_by`]), `created_by` who registered it.
pub(crate) async fn insert_passkey(
    tx: &mut WriteTx,
    account_id: &str,
    new: &NewPasskey,
    created_by: Option<&Actor>,
    controllers: &[String],
    now: Millis,
) -> Result<()> {
    let live = sqlx::query("SELECT COUNT(*) AS n FROM passkeys WHERE account_id = $1 AND removed_at IS NULL")
        .bind(account_id)
        .fetch_one(tx.conn())
        .await?;
    if int(&live, "n")? >= MAX_PASSKEYS_PER_ACCOUNT as i64 {
        return Err(DomainError::Validation(format!(
            "an account holds at most {MAX_PASSKEYS_PER_ACCOUNT} passkeys; remove one first"
        ))
        .into());
    }
    sqlx::query(
        "INSERT INTO passkeys (id, account_id, name, credential_id, credential, public_key, sign_count, created_at, \
         created_by, controllers) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9)",
    )
    .bind(&new.id)
    .bind(account_id)
    .bind(&new.name)
    .bind(&new.credential_id)
    .bind(&new.credential)
    .bind(&new.public_key)
    .bind(now)
    .bind(created_by.map(|a| a.id.as_str()))
    .bind(json!(controllers).to_string())
    .execute(tx.conn())
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict("this passkey is already registered".into())
        }
        _ => StoreError::from(e),
    })?;
    // The public key is in the keyed audit chain: `Store::verify_step_ups` checks each
    // stored assertion against the key recorded here, which a database writer cannot change.
    let mut entry = NewAudit::new("directory", "passkeyAdded").on("account", account_id).details(json!({
        "passkeyId": new.id,
        "name": new.name,
        "credentialId": new.credential_id,
        "publicKey": new.public_key,
        "controllers": controllers,
    }));
    if let Some(actor) = created_by {
        entry = entry.by(&actor.id, &actor.name);
    }
    append(tx, entry, now);
    Ok(())
}

/// Marks a passkey of `account_id` removed (its row stays for the stored assertions), with its
/// audit entry. Not found when it is not one of that account's live passkeys.
pub(crate) async fn remove_passkey(
    tx: &mut WriteTx,
    account_id: &str,
    passkey_id: &str,
    by: Option<&Actor>,
    now: Millis,
) -> Result<()> {
    let removed =
        sqlx::query("UPDATE passkeys SET removed_at = $1 WHERE id = $2 AND account_id = $3 AND removed_at IS NULL")
            .bind(now)
            .bind(passkey_id)
            .bind(account_id)
            .execute(tx.conn())
            .await?
            .rows_affected();
    if removed == 0 {
        return Err(StoreError::NotFound(format!("passkey {passkey_id} does not exist")));
    }
    // Whoever signed in with it is signed out: a lost or stolen passkey is removed for that.
    let ended = sqlx::query("DELETE FROM sessions WHERE passkey_id = $1")
        .bind(passkey_id)
        .execute(tx.conn())
        .await?
        .rows_affected();
    let mut entry = NewAudit::new("directory", "passkeyRemoved")
        .on("account", account_id)
        .details(json!({"passkeyId": passkey_id, "sessionsEnded": ended}));
    if let Some(actor) = by {
        entry = entry.by(&actor.id, &actor.name);
    }
    append(tx, entry, now);
    Ok(())
}

/// R9 through the gate: applies an approved (or unprotected) change to another account's
/// passkeys. `secret` is the [`NewPasskey`] as JSON for an addition.
pub(crate) async fn apply_passkey_change(
    tx: &mut WriteTx,
    account_id: &str,
    change: &PasskeyChange,
    secret: Option<&str>,
    set_by: Option<&str>,
    controllers: &[String],
    now: Millis,
) -> Result<()> {
    let actor = match set_by {
        Some(id) => crate::directory::account_by_id(tx.conn(), id).await?.map(|a| a.actor()),
        None => None,
    };
    match change.action {
        PasskeyAction::Added => {
            let secret = secret.ok_or_else(|| StoreError::Corrupt("a passkey addition without its passkey".into()))?;
            let new: NewPasskey = serde_json::from_str(secret)
                .map_err(|e| StoreError::Corrupt(format!("a held passkey addition is unreadable: {e}")))?;
            if new.id != change.id {
                return Err(StoreError::Corrupt("a held passkey addition names another passkey".into()));
            }
            insert_passkey(tx, account_id, &new, actor.as_ref(), controllers, now).await
        }
        PasskeyAction::Removed => remove_passkey(tx, account_id, &change.id, actor.as_ref(), now).await,
    }
}

/// Whether the account has a password (a passwordless account keeps at least one passkey).
async fn has_password(tx: &mut WriteTx, account_id: &str) -> Result<bool> {
    let row = sqlx::query("SELECT password_hash FROM accounts WHERE id = $1")
        .bind(account_id)
        .fetch_optional(tx.conn())
        .await?;
    Ok(match row {
        Some(r) => opt_text(&r, "password_hash")?.is_some(),
        None => false,
    })
}

async fn live_count(tx: &mut WriteTx, account_id: &str) -> Result<i64> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM passkeys WHERE account_id = $1 AND removed_at IS NULL")
        .bind(account_id)
        .fetch_one(tx.conn())
        .await?;
    int(&row, "n")
}

impl Store {
    /// The live passkeys of `account_id`, oldest first.
    pub async fn passkeys_of(&self, account_id: &str) -> Result<Vec<StoredPasskey>> {
        let rows = sqlx::query(&format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE account_id = $1 AND removed_at IS NULL ORDER BY created_at, id"
        ))
        .bind(account_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(passkey_row).collect()
    }

    /// The live passkey with this credential id, of an enabled account.
    pub async fn passkey_by_credential_id(&self, credential_id: &str) -> Result<Option<StoredPasskey>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM passkeys p JOIN accounts a ON a.id = p.account_id \
             WHERE p.credential_id = $1 AND p.removed_at IS NULL AND a.enabled = 1 AND a.deleted_at IS NULL",
            crate::auth::prefixed(PASSKEY_COLUMNS, "p")
        ))
        .bind(credential_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(passkey_row).transpose()
    }

    /// Any passkey with this id, removed or not (to check an assertion stored long ago).
    pub async fn passkey_any(&self, id: &str) -> Result<Option<StoredPasskey>> {
        let row = sqlx::query(&format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(passkey_row).transpose()
    }

    /// Stores a ceremony's state; it can be taken once, until `expires_at`. Expired ceremonies
    /// are pruned on the way.
    #[allow(clippy::too_many_arguments)]
    pub async fn begin_ceremony(
        &self,
        id: &str,
        kind: &str,
        account_id: Option<&str>,
        session_hash: Option<&str>,
        state: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<String> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM webauthn_ceremonies WHERE expires_at <= $1").bind(now).execute(tx.conn()).await?;
        sqlx::query(
            "INSERT INTO webauthn_ceremonies (id, kind, account_id, session_hash, state, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(kind)
        .bind(account_id)
        .bind(session_hash)
        .bind(state)
        .bind(now)
        .bind(expires_at)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(id.to_owned())
    }

    /// Takes a ceremony of `kind`: it is deleted whatever happens next (single use), and
    /// returned only while unexpired.
    pub async fn take_ceremony(&self, id: &str, kind: &str, now: Millis) -> Result<Option<Ceremony>> {
        let mut tx = self.begin_write().await?;
        let ceremony = take_ceremony_in(&mut tx, id, kind, now).await?;
        tx.commit().await?;
        Ok(ceremony)
    }

    /// R9's exception for passkeys (issue 17): a person adds a passkey to their own account,
    /// having just proved an existing credential (the caller checks that). R16: it is
    /// controlled by whoever controls the credential the person acts through.
    pub async fn add_own_passkey(&self, actor: &Actor, new: &NewPasskey, now: Millis) -> Result<()> {
        let controllers = made_by(actor, &actor.id);
        let mut tx = self.begin_write().await?;
        insert_passkey(&mut tx, &actor.id, new, Some(actor), &controllers, now).await?;
        tx.commit().await
    }

    /// A person renames one of their own passkeys (a label only: not a credential change).
    pub async fn rename_own_passkey(&self, actor: &Actor, passkey_id: &str, name: &str, now: Millis) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let renamed =
            sqlx::query("UPDATE passkeys SET name = $1 WHERE id = $2 AND account_id = $3 AND removed_at IS NULL")
                .bind(name)
                .bind(passkey_id)
                .bind(&actor.id)
                .execute(tx.conn())
                .await?
                .rows_affected();
        if renamed == 0 {
            return Err(StoreError::NotFound(format!("passkey {passkey_id} does not exist")));
        }
        let entry = NewAudit::new("directory", "passkeyRenamed")
            .by(&actor.id, &actor.name)
            .on("account", &actor.id)
            .details(json!({"passkeyId": passkey_id, "name": name}));
        append(&mut tx, entry, now);
        tx.commit().await
    }

    /// A person removes one of their own passkeys, having just proved an existing credential
    /// (the caller checks that). A passwordless account keeps at least one.
    pub async fn remove_own_passkey(&self, actor: &Actor, passkey_id: &str, now: Millis) -> Result<()> {
        let mut tx = self.begin_write().await?;
        if !has_password(&mut tx, &actor.id).await? && live_count(&mut tx, &actor.id).await? <= 1 {
            return Err(DomainError::Validation(
                "this is the last passkey of an account without a password: add another, or set a password, first"
                    .into(),
            )
            .into());
        }
        remove_passkey(&mut tx, &actor.id, passkey_id, Some(actor), now).await?;
        tx.commit().await
    }

    /// A person makes their account passwordless (they proved the password; the caller checks
    /// that): only with a passkey to sign in with. Other sessions end, as on a password change.
    pub async fn remove_own_password(&self, actor: &Actor, keep_session: Option<&str>, now: Millis) -> Result<()> {
        let mut tx = self.begin_write().await?;
        if live_count(&mut tx, &actor.id).await? == 0 {
            return Err(DomainError::Validation(
                "register a passkey first: without a password it is the only way to sign in".into(),
            )
            .into());
        }
        sqlx::query(
            "UPDATE accounts SET password_hash = NULL, password_controllers = '[]', must_change_password = 0, \
             version = version + 1, updated_at = $1 WHERE id = $2",
        )
        .bind(now)
        .bind(&actor.id)
        .execute(tx.conn())
        .await?;
        let ended = sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND id_hash <> $2")
            .bind(&actor.id)
            .bind(keep_session.unwrap_or_default())
            .execute(tx.conn())
            .await?
            .rows_affected();
        let entry = NewAudit::new("directory", "passwordRemoved")
            .by(&actor.id, &actor.name)
            .on("account", &actor.id)
            .details(json!({"otherSessionsEnded": ended}));
        append(&mut tx, entry, now);
        tx.commit().await
    }

    /// A passkey sign-in succeeded (the caller ran the ceremony): records the use and the
    /// authenticator's new state, and opens a session. R16: the session is controlled by
    /// whoever controls the passkey.
    #[allow(clippy::too_many_arguments)]
    pub async fn passkey_session(
        &self,
        passkey_id: &str,
        credential: &str,
        sign_count: i64,
        id_hash: &str,
        csrf_token: &str,
        client: &ClientInfo,
        now: Millis,
        expires_at: Millis,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE passkeys SET credential = $1, sign_count = $2, last_used_at = $3 WHERE id = $4 AND removed_at IS NULL",
        )
        .bind(credential)
        .bind(sign_count)
        .bind(now)
        .bind(passkey_id)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(StoreError::NotFound("the passkey was removed".into()));
        }
        sqlx::query(
            "INSERT INTO sessions (id_hash, account_id, csrf_token, created_at, expires_at, controllers, \
             public_id, last_used_at, address, user_agent, verified_at, passkey_id) \
             SELECT $1, account_id, $3, $4, $5, controllers, $6, $4, $7, $8, $4, id FROM passkeys WHERE id = $2",
        )
        .bind(id_hash)
        .bind(passkey_id)
        .bind(csrf_token)
        .bind(now)
        .bind(expires_at)
        .bind(new_id())
        .bind(&client.address)
        .bind(&client.user_agent)
        .execute(tx.conn())
        .await?;
        tx.commit().await
    }

    /// When the session with this hashed id last proved a credential (sign-in), if recorded.
    pub async fn session_verified_at(&self, id_hash: &str) -> Result<Option<Millis>> {
        let row = sqlx::query("SELECT verified_at FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => opt_int(&r, "verified_at")?,
            None => None,
        })
    }
}

/// [`Store::take_ceremony`] inside a transaction (a step-up is consumed with its decision).
pub(crate) async fn take_ceremony_in(tx: &mut WriteTx, id: &str, kind: &str, now: Millis) -> Result<Option<Ceremony>> {
    let row = sqlx::query(
        "DELETE FROM webauthn_ceremonies WHERE id = $1 AND kind = $2 \
         RETURNING id, kind, account_id, session_hash, state, expires_at",
    )
    .bind(id)
    .bind(kind)
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let ceremony = Ceremony {
        id: text(&row, "id")?,
        kind: text(&row, "kind")?,
        account_id: opt_text(&row, "account_id")?,
        session_hash: opt_text(&row, "session_hash")?,
        state: text(&row, "state")?,
        expires_at: int(&row, "expires_at")?,
    };
    Ok((ceremony.expires_at > now).then_some(ceremony))
}
