//! Sessions, API tokens, sign-in rate limiting and the first Administrator.
//! Secrets arrive here already hashed; this module never sees a password or token in clear.

use crate::audit::{append, NewAudit};
use crate::directory::{access_columns, account_access, AccountAccess, AccountRecord, Actor, ACCOUNT_COLUMNS};
use crate::rows::{int, json as json_column, opt_int, opt_text, text};
use crate::{new_id, Result, Store, StoreError, WriteTx};
use countersign_core::control::controllers_of_new_credential;
use countersign_core::lookalike::skeleton;
use countersign_core::permission::BUILT_IN_ROLES;
use countersign_core::Millis;
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub access: AccountAccess,
    pub csrf_token: String,
    pub expires_at: Millis,
}

/// Where a credential is used from. Both come from the client, so both are capped when stored
/// (a huge User-Agent header must not fill the database or break a page).
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub address: String,
    pub user_agent: String,
}

/// The most characters of an address or user agent that are kept.
pub const MAX_CLIENT_TEXT: usize = 200;

impl ClientInfo {
    pub fn new(address: &str, user_agent: &str) -> Self {
        let capped = |s: &str| s.chars().take(MAX_CLIENT_TEXT).collect();
        Self { address: capped(address), user_agent: capped(user_agent) }
    }
}

/// One live session as its owner sees it: never the cookie secret or its hash.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    pub id: String,
    pub created_at: Millis,
    pub last_used_at: Option<Millis>,
    pub address: String,
    pub user_agent: String,
    /// Whether it is the session the list was asked for with.
    pub current: bool,
}

/// How often, at most, a credential's last use is written: recording every use would make
/// each request a write.
const LAST_USED_EVERY: Millis = 60_000;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    pub id: String,
    pub account_id: String,
    pub display_name: String,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
    pub last_used_address: Option<String>,
    pub last_used_user_agent: Option<String>,
}

/// One sign-in attempt budget: at most `limit` attempts per window in `bucket` (the server
/// names the buckets: an account's untrusted clients, an address, one trusted device).
#[derive(Debug, Clone)]
pub struct Budget {
    pub bucket: String,
    pub limit: i64,
    /// After a successful sign-in: empty the bucket (a trusted device's own typos), or hand back
    /// only the attempt just made (a bucket that an attacker may be filling).
    pub reset_on_success: bool,
}

/// A failed sign-in, for the audit log.
#[derive(Debug, Clone)]
pub struct LoginFailure<'a> {
    pub username: &'a str,
    pub address: &'a str,
    pub reason: &'a str,
    /// Whether the client presented a valid device cookie for this account.
    pub trusted_device: bool,
}

fn prefixed_account_columns() -> String {
    prefixed(ACCOUNT_COLUMNS, "a")
}

/// `columns` (a comma-separated list) read from the table aliased `alias`, under their own names.
pub(crate) fn prefixed(columns: &str, alias: &str) -> String {
    columns.split(", ").map(|c| format!("{alias}.{c} AS {c}")).collect::<Vec<_>>().join(", ")
}

/// R16: who controls a credential `actor` makes for `account_id`: the actor, unless it is their
/// own, and whoever controls the credential the actor is using.
pub(crate) fn made_by(actor: &Actor, account_id: &str) -> Vec<String> {
    controllers_of_new_credential(account_id, Some(&actor.id), &actor.via)
}

/// The display name of the token a service account is created with.
pub(crate) const SERVICE_TOKEN_NAME: &str = "service account token";

/// Writes an API token for `account_id`, and its audit entry, in `tx`. Not public: the store's
/// API mints only for the caller's own account, or for a service account it creates.
/// R16: the token is controlled by `controllers` (see [`made_by`]).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_token(
    tx: &mut WriteTx,
    actor: &Actor,
    account_id: &str,
    controllers: &[String],
    display_name: &str,
    token_hash: &str,
    expires_at: Option<Millis>,
    now: Millis,
) -> Result<TokenRecord> {
    let record = TokenRecord {
        id: new_id(),
        account_id: account_id.to_owned(),
        display_name: display_name.to_owned(),
        created_at: now,
        expires_at,
        last_used_at: None,
        last_used_address: None,
        last_used_user_agent: None,
    };
    sqlx::query(
        "INSERT INTO api_tokens (id, account_id, display_name, token_hash, created_at, expires_at, controllers, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&record.id)
    .bind(account_id)
    .bind(display_name)
    .bind(token_hash)
    .bind(now)
    .bind(expires_at)
    .bind(json!(controllers).to_string())
    .bind(&actor.id)
    .execute(tx.conn())
    .await?;
    let entry = NewAudit::new("auth", "tokenCreated")
        .by(&actor.id, &actor.name)
        .on("account", account_id)
        .details(json!({"tokenId": record.id, "displayName": display_name}));
    append(tx, entry, now);
    Ok(record)
}

impl Store {
    /// A session opened with the account's password: R16, it is controlled by whoever controls
    /// that password (read in the same statement).
    pub async fn create_session(
        &self,
        account_id: &str,
        id_hash: &str,
        csrf_token: &str,
        client: &ClientInfo,
        now: Millis,
        expires_at: Millis,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO sessions (id_hash, account_id, csrf_token, created_at, expires_at, controllers, \
             public_id, last_used_at, address, user_agent, verified_at) \
             SELECT $1, id, $3, $4, $5, password_controllers, $6, $4, $7, $8, $4 FROM accounts WHERE id = $2",
        )
        .bind(id_hash)
        .bind(account_id)
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

    /// The live session with this hashed id, for an enabled account; records the use (at most
    /// once a minute).
    pub async fn session(&self, id_hash: &str, now: Millis) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(&format!(
            "SELECT s.csrf_token AS csrf_token, s.expires_at AS session_expires_at, s.controllers AS via, \
             s.last_used_at AS session_last_used_at, {}, {} FROM sessions s \
             JOIN accounts a ON a.id = s.account_id \
             WHERE s.id_hash = $1 AND s.expires_at > $2 AND a.enabled = 1 AND a.deleted_at IS NULL",
            prefixed_account_columns(),
            access_columns(self.backend())
        ))
        .bind(id_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        if let Some(r) = &row {
            if opt_int(r, "session_last_used_at")?.is_none_or(|t| now - t > LAST_USED_EVERY) {
                let mut tx = self.begin_write().await?;
                sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE id_hash = $2")
                    .bind(now)
                    .bind(id_hash)
                    .execute(tx.conn())
                    .await?;
                tx.commit().await?;
            }
        }
        row.map(|r| {
            Ok(SessionRecord {
                access: AccountAccess { via: json_column(&r, "via")?, ..account_access(&r)? },
                csrf_token: text(&r, "csrf_token")?,
                expires_at: int(&r, "session_expires_at")?,
            })
        })
        .transpose()
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(tx.conn()).await?;
        tx.commit().await
    }

    /// The live sessions of `account_id`, newest first; `current` marks the one whose hashed id
    /// is `current_hash`.
    pub async fn sessions_of(
        &self,
        account_id: &str,
        current_hash: Option<&str>,
        now: Millis,
    ) -> Result<Vec<SessionInfo>> {
        let rows = sqlx::query(
            "SELECT public_id, id_hash, created_at, last_used_at, address, user_agent FROM sessions \
             WHERE account_id = $1 AND expires_at > $2 ORDER BY created_at DESC, public_id",
        )
        .bind(account_id)
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SessionInfo {
                    id: text(r, "public_id")?,
                    created_at: int(r, "created_at")?,
                    last_used_at: opt_int(r, "last_used_at")?,
                    address: text(r, "address")?,
                    user_agent: text(r, "user_agent")?,
                    current: current_hash.is_some_and(|h| text(r, "id_hash").is_ok_and(|own| own == h)),
                })
            })
            .collect()
    }

    /// Ends the session of `account_id` with this public id (a session of another account is
    /// not found), and audits it.
    pub async fn end_session(&self, actor: &Actor, account_id: &str, public_id: &str, now: Millis) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let ended = sqlx::query("DELETE FROM sessions WHERE public_id = $1 AND account_id = $2")
            .bind(public_id)
            .bind(account_id)
            .execute(tx.conn())
            .await?;
        if ended.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("session {public_id} does not exist")));
        }
        let entry = NewAudit::new("auth", "sessionEnded")
            .by(&actor.id, &actor.name)
            .on("account", account_id)
            .details(json!({"sessionId": public_id}));
        append(&mut tx, entry, now);
        tx.commit().await
    }

    /// A personal API token for `actor`'s own account. (A new service account's first token is
    /// written by the `submit` that creates it: see `Proposal::service_token_hash`.)
    pub async fn create_token(
        &self,
        actor: &Actor,
        display_name: &str,
        token_hash: &str,
        expires_at: Option<Millis>,
        now: Millis,
    ) -> Result<TokenRecord> {
        let mut tx = self.begin_write().await?;
        let controllers = made_by(actor, &actor.id);
        let record =
            insert_token(&mut tx, actor, &actor.id, &controllers, display_name, token_hash, expires_at, now).await?;
        tx.commit().await?;
        Ok(record)
    }

    pub async fn tokens_of(&self, account_id: &str) -> Result<Vec<TokenRecord>> {
        let rows = sqlx::query(
            "SELECT id, account_id, display_name, created_at, expires_at, last_used_at, last_used_address, last_used_user_agent \
             FROM api_tokens WHERE account_id = $1 ORDER BY id",
        )
        .bind(account_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenRecord {
                    id: text(r, "id")?,
                    account_id: text(r, "account_id")?,
                    display_name: text(r, "display_name")?,
                    created_at: int(r, "created_at")?,
                    expires_at: opt_int(r, "expires_at")?,
                    last_used_at: opt_int(r, "last_used_at")?,
                    last_used_address: opt_text(r, "last_used_address")?,
                    last_used_user_agent: opt_text(r, "last_used_user_agent")?,
                })
            })
            .collect()
    }

    /// Revokes one of `account_id`'s own tokens.
    pub async fn delete_token(&self, actor: &Actor, account_id: &str, token_id: &str, now: Millis) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND account_id = $2")
            .bind(token_id)
            .bind(account_id)
            .execute(tx.conn())
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("token {token_id} does not exist")));
        }
        let entry = NewAudit::new("auth", "tokenRevoked")
            .by(&actor.id, &actor.name)
            .on("account", account_id)
            .details(json!({"tokenId": token_id}));
        append(&mut tx, entry, now);
        tx.commit().await
    }

    /// The enabled account owning a live token with this hash; records the use, and where it
    /// came from when `client` says (a re-check of a stream already open does not).
    pub async fn account_for_token(
        &self,
        token_hash: &str,
        client: Option<&ClientInfo>,
        now: Millis,
    ) -> Result<Option<AccountAccess>> {
        let row = sqlx::query(&format!(
            "SELECT t.id AS token_id, t.last_used_at AS last_used_at, t.controllers AS via, {}, {} FROM api_tokens t JOIN accounts a ON a.id = t.account_id \
             WHERE t.token_hash = $1 AND (t.expires_at IS NULL OR t.expires_at > $2) AND a.enabled = 1 AND a.deleted_at IS NULL",
            prefixed_account_columns(),
            access_columns(self.backend())
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        if opt_int(&row, "last_used_at")?.is_none_or(|t| now - t > LAST_USED_EVERY) {
            let mut tx = self.begin_write().await?;
            sqlx::query(
                "UPDATE api_tokens SET last_used_at = $1, last_used_address = COALESCE($3, last_used_address), \
                 last_used_user_agent = COALESCE($4, last_used_user_agent) WHERE id = $2",
            )
            .bind(now)
            .bind(text(&row, "token_id")?)
            .bind(client.map(|c| c.address.as_str()))
            .bind(client.map(|c| c.user_agent.as_str()))
            .execute(tx.conn())
            .await?;
            tx.commit().await?;
        }
        Ok(Some(AccountAccess { via: json_column(&row, "via")?, ..account_access(&row)? }))
    }

    /// Reserves one sign-in attempt in every bucket of `budgets`, or in none: `None` when each
    /// stays within its limit, else how long until the fullest bucket's window ends. The count
    /// and the check are one upsert per bucket in one transaction: on PostgreSQL the upsert
    /// holds the bucket's row lock until commit, on SQLite the writer lock serialises, so
    /// concurrent attempts on any number of replicas are counted one at a time and no more than
    /// the limit are ever let through to a password check. A window starts with its first
    /// attempt and lasts `window`.
    pub async fn reserve_sign_in(&self, budgets: &[Budget], now: Millis, window: Millis) -> Result<Option<Millis>> {
        let mut tx = self.begin_write().await?;
        let mut wait: Option<Millis> = None;
        for budget in budgets {
            let row = sqlx::query(
                "INSERT INTO sign_in_budgets (bucket, window_start, used) VALUES ($1, $2, 1) \
                 ON CONFLICT (bucket) DO UPDATE SET \
                 used = CASE WHEN sign_in_budgets.window_start <= $3 THEN 1 ELSE sign_in_budgets.used + 1 END, \
                 window_start = CASE WHEN sign_in_budgets.window_start <= $3 THEN $2 ELSE sign_in_budgets.window_start END \
                 RETURNING used, window_start",
            )
            .bind(&budget.bucket)
            .bind(now)
            .bind(now - window)
            .fetch_one(tx.conn())
            .await?;
            if int(&row, "used")? > budget.limit {
                let left = int(&row, "window_start")? + window - now;
                wait = Some(wait.map_or(left, |w| w.max(left)));
            }
        }
        if wait.is_some() {
            // A refused attempt reserves nothing, in any bucket.
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(wait)
    }

    /// R13: a failed sign-in is audited. (Its attempt was counted when it was reserved.)
    pub async fn record_login_failure(&self, failure: &LoginFailure<'_>, now: Millis) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let entry = NewAudit::new("auth", "signInFailed").details(json!({
            "username": failure.username,
            "address": failure.address,
            "reason": failure.reason,
            "trustedDevice": failure.trusted_device,
        }));
        append(&mut tx, entry, now);
        tx.commit().await
    }

    /// R13: a successful sign-in is audited, and hands back the attempts it reserved (see
    /// [`Budget::reset_on_success`]).
    pub async fn record_login_success(
        &self,
        account: &AccountRecord,
        address: &str,
        method: &str,
        budgets: &[Budget],
        now: Millis,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for budget in budgets {
            let sql = if budget.reset_on_success {
                "UPDATE sign_in_budgets SET used = 0 WHERE bucket = $1"
            } else {
                "UPDATE sign_in_budgets SET used = used - 1 WHERE bucket = $1 AND used > 0"
            };
            sqlx::query(sql).bind(&budget.bucket).execute(tx.conn()).await?;
        }
        let entry = NewAudit::new("auth", "signIn")
            .by(&account.id, &account.username)
            .on("account", &account.id)
            .details(json!({"address": address, "method": method}));
        append(&mut tx, entry, now);
        tx.commit().await
    }

    /// The server's key called `name`, the same on every replica: the first replica to ask
    /// stores its `candidate`, and every caller gets the stored key.
    pub async fn server_key(&self, name: &str, candidate: &str, now: Millis) -> Result<String> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO server_keys (name, secret, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .bind(now)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        let row =
            sqlx::query("SELECT secret FROM server_keys WHERE name = $1").bind(name).fetch_one(self.pool()).await?;
        text(&row, "secret")
    }

    /// R9's exception: an account may always change its own password, having proved it knows
    /// the current one (the caller checks that). Every other session of the account ends (the
    /// one in `keep_session` stays; none when changed with a token), and its API tokens too when
    /// `revoke_tokens`: whoever learnt the old password keeps nothing it opened. R16: the new
    /// password is the account's own, and stays controlled by whoever controls the credential
    /// it was changed through (a password someone else set is not laundered by changing it in a
    /// session opened with it).
    pub async fn change_own_password(
        &self,
        actor: &Actor,
        new_hash: &str,
        keep_session: Option<&str>,
        revoke_tokens: bool,
        now: Millis,
    ) -> Result<()> {
        let controllers = made_by(actor, &actor.id);
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE accounts SET password_hash = $1, version = version + 1, updated_at = $2, \
             password_controllers = $4, must_change_password = 0 WHERE id = $3",
        )
        .bind(new_hash)
        .bind(now)
        .bind(&actor.id)
        .bind(json!(controllers).to_string())
        .execute(tx.conn())
        .await?;
        let sessions_ended = sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND id_hash <> $2")
            .bind(&actor.id)
            .bind(keep_session.unwrap_or_default())
            .execute(tx.conn())
            .await?
            .rows_affected();
        let tokens_revoked = if revoke_tokens {
            sqlx::query("DELETE FROM api_tokens WHERE account_id = $1")
                .bind(&actor.id)
                .execute(tx.conn())
                .await?
                .rows_affected()
        } else {
            0
        };
        let entry = NewAudit::new("directory", "passwordChanged")
            .by(&actor.id, &actor.name)
            .on("account", &actor.id)
            .details(json!({"otherSessionsEnded": sessions_ended, "tokensRevoked": tokens_revoked}));
        append(&mut tx, entry, now);
        tx.commit().await
    }

    /// Deletes expired sessions and single sign-ons in progress, and the sign-in budgets whose
    /// window began before `windows_before` (they are over).
    pub async fn prune(&self, now: Millis, windows_before: Millis) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now).execute(tx.conn()).await?;
        sqlx::query("DELETE FROM sso_logins WHERE expires_at <= $1").bind(now).execute(tx.conn()).await?;
        sqlx::query("DELETE FROM sign_in_budgets WHERE window_start < $1")
            .bind(windows_before)
            .execute(tx.conn())
            .await?;
        tx.commit().await
    }

    /// The server's operator adds a person from the command line (`countersign accounts add`):
    /// the system sets the password, so no account controls the new one (R16), and it is
    /// temporary, replaced at first sign-in. The only way besides first start to add a person
    /// independent of every administrator. Creating an account is never protected (it is in no
    /// group yet), so nothing is bypassed.
    pub async fn add_person(
        &self,
        username: &str,
        display_name: &str,
        email: Option<&str>,
        password_hash: &str,
        now: Millis,
    ) -> Result<AccountRecord> {
        let username = countersign_core::validate::username(username)?;
        let display_name = countersign_core::validate::display_name("displayName", display_name)?;
        let id = new_id();
        let mut tx = self.begin_write().await?;
        // R20: the same names as any other new account.
        let keys = crate::names::check_names(tx.conn(), &id, &username, &display_name, true).await?;
        let insert = sqlx::query(
            "INSERT INTO accounts (id, username, display_name, kind, email, password_hash, enabled, version, created_at, updated_at, \
             password_controllers, must_change_password, display_name_skeleton, username_skeleton) \
             VALUES ($1, $2, $3, 'human', $4, $5, 1, 1, $6, $6, '[]', 1, $7, $8)",
        )
        .bind(&id)
        .bind(&username)
        .bind(&display_name)
        .bind(email)
        .bind(password_hash)
        .bind(now)
        .bind(&keys.display_name)
        .bind(&keys.username);
        crate::names::write_guarded(&mut tx, insert, &id, &display_name, &keys.display_name).await.map_err(
            |e| match e {
                StoreError::Conflict(_) => StoreError::Conflict(format!("the username '{username}' is taken")),
                other => other,
            },
        )?;
        let entry = NewAudit::new("directory", "personAdded")
            .on("account", &id)
            .details(json!({"username": username, "displayName": display_name, "by": "the server's command line"}));
        append(&mut tx, entry, now);
        tx.commit().await?;
        crate::directory::account_by_id(self.pool().acquire().await?.as_mut(), &id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("account {id} does not exist")))
    }

    /// First start: on a database without accounts, creates `username` as an Administrator
    /// (an "Administrators" group holding the built-in Administrator role). Returns false if
    /// accounts already exist.
    pub async fn bootstrap_admin(&self, username: &str, password_hash: &str, now: Millis) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        tx.serialise_on_chain_head().await?;
        let existing = sqlx::query("SELECT COUNT(*) AS n FROM accounts").fetch_one(tx.conn()).await?;
        if int(&existing, "n")? > 0 {
            return Ok(false);
        }
        let account_id = new_id();
        let group_id = new_id();
        sqlx::query(
            "INSERT INTO accounts (id, username, display_name, kind, email, password_hash, enabled, version, created_at, updated_at, \
             display_name_skeleton, username_skeleton) VALUES ($1, $2, $3, 'human', NULL, $4, 1, 1, $5, $5, $6, $7)",
        )
        .bind(&account_id)
        .bind(username)
        .bind("Administrator")
        .bind(password_hash)
        .bind(now)
        .bind(skeleton("Administrator"))
        .bind(skeleton(username))
        .execute(tx.conn())
        .await?;
        sqlx::query(
            "INSERT INTO directory_groups (id, display_name, description, version, created_at, updated_at) VALUES ($1, 'Administrators', 'Created at first start.', 1, $2, $2)",
        )
        .bind(&group_id)
        .bind(now)
        .execute(tx.conn())
        .await?;
        sqlx::query("INSERT INTO group_members (group_id, account_id) VALUES ($1, $2)")
            .bind(&group_id)
            .bind(&account_id)
            .execute(tx.conn())
            .await?;
        let administrator = BUILT_IN_ROLES.first().map(|r| r.id).unwrap_or_default();
        sqlx::query(
            "INSERT INTO role_assignments (id, display_name, role_id, group_ids, version, created_at, updated_at) VALUES ($1, 'Administrators', $2, $3, 1, $4, $4)",
        )
        .bind(new_id())
        .bind(administrator)
        .bind(json!([group_id]).to_string())
        .bind(now)
        .execute(tx.conn())
        .await?;
        let entry = NewAudit::new("directory", "bootstrapAdministrator")
            .on("account", &account_id)
            .details(json!({"username": username}));
        append(&mut tx, entry, now);
        tx.commit().await?;
        Ok(true)
    }
}
