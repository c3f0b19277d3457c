//! Single sign-on (issue 17): sign-ins in progress, and the provider identities linked to
//! accounts. The protocol (discovery, tokens, their checks) is the server's; this module keeps
//! what every replica must see. Secrets arrive hashed where they are looked up by (the `state`
//! and the browser binding); an identity is its issuer and subject, never an e-mail address.

use crate::audit::{append, NewAudit};
use crate::directory::{AccountRecord, Actor};
use crate::rows::{int, json as json_column, opt_int, opt_text, text};
use crate::{new_id, Result, Store, StoreError};
use countersign_core::Millis;
use serde::Serialize;
use serde_json::json;

/// A sign-in in progress: what the return from the provider is checked against.
#[derive(Debug, Clone)]
pub struct SsoLogin {
    pub provider_id: String,
    /// The hash of the cookie only the browser that started the sign-in holds.
    pub browser_hash: String,
    /// The ID token must carry exactly this nonce.
    pub nonce: String,
    /// PKCE (RFC 7636): the code is exchanged with this verifier.
    pub pkce_verifier: String,
    /// Where to go afterwards (a checked local path).
    pub next_path: String,
    /// Set when a signed-in person links an identity to their own account.
    pub link_account_id: Option<String>,
    /// R16: who controls the session that asked to link (empty: only its owner).
    pub link_controllers: Vec<String>,
    pub expires_at: Millis,
}

/// An identity at a provider, linked to an account.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SsoIdentity {
    pub id: String,
    pub provider_id: String,
    pub issuer: String,
    pub subject: String,
    pub account_id: String,
    /// The e-mail address the provider gave when the identity was linked (shown, never matched).
    pub email: Option<String>,
    /// R16: the accounts that control this identity's link (see the migration).
    #[serde(skip)]
    pub controllers: Vec<String>,
    pub created_at: Millis,
    pub last_sign_in_at: Option<Millis>,
}

/// An identity to link: who at which provider.
#[derive(Debug, Clone)]
pub struct NewSsoIdentity<'a> {
    pub provider_id: &'a str,
    pub issuer: &'a str,
    pub subject: &'a str,
    pub email: Option<&'a str>,
}

const IDENTITY_COLUMNS: &str =
    "id, provider_id, issuer, subject, account_id, email, controllers, created_at, last_sign_in_at";

fn identity(row: &sqlx::any::AnyRow) -> Result<SsoIdentity> {
    Ok(SsoIdentity {
        id: text(row, "id")?,
        provider_id: text(row, "provider_id")?,
        issuer: text(row, "issuer")?,
        subject: text(row, "subject")?,
        account_id: text(row, "account_id")?,
        email: opt_text(row, "email")?,
        controllers: json_column(row, "controllers")?,
        created_at: int(row, "created_at")?,
        last_sign_in_at: opt_int(row, "last_sign_in_at")?,
    })
}

impl Store {
    /// Keeps a sign-in in progress under the hash of its `state`, and drops the ones that are
    /// over (nobody can finish them any more).
    pub async fn begin_sso_login(&self, state_hash: &str, login: &SsoLogin, now: Millis) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM sso_logins WHERE expires_at <= $1").bind(now).execute(tx.conn()).await?;
        sqlx::query(
            "INSERT INTO sso_logins (state_hash, provider_id, browser_hash, nonce, pkce_verifier, next_path, \
             link_account_id, link_controllers, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(state_hash)
        .bind(&login.provider_id)
        .bind(&login.browser_hash)
        .bind(&login.nonce)
        .bind(&login.pkce_verifier)
        .bind(&login.next_path)
        .bind(login.link_account_id.as_deref())
        .bind(json!(login.link_controllers).to_string())
        .bind(now)
        .bind(login.expires_at)
        .execute(tx.conn())
        .await?;
        tx.commit().await
    }

    /// Takes the sign-in in progress with this hashed `state`: it is deleted as it is read, so a
    /// `state` is good once, on whichever replica it comes back to. `None` when there is none, or
    /// it is over.
    pub async fn take_sso_login(&self, state_hash: &str, now: Millis) -> Result<Option<SsoLogin>> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "DELETE FROM sso_logins WHERE state_hash = $1 RETURNING provider_id, browser_hash, nonce, pkce_verifier, \
             next_path, link_account_id, link_controllers, expires_at",
        )
        .bind(state_hash)
        .fetch_optional(tx.conn())
        .await?;
        tx.commit().await?;
        let Some(row) = row else { return Ok(None) };
        let login = SsoLogin {
            provider_id: text(&row, "provider_id")?,
            browser_hash: text(&row, "browser_hash")?,
            nonce: text(&row, "nonce")?,
            pkce_verifier: text(&row, "pkce_verifier")?,
            next_path: text(&row, "next_path")?,
            link_account_id: opt_text(&row, "link_account_id")?,
            link_controllers: opt_text(&row, "link_controllers")?
                .map(|c| serde_json::from_str(&c))
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("a sign-in's link_controllers: {e}")))?
                .unwrap_or_default(),
            expires_at: int(&row, "expires_at")?,
        };
        Ok((login.expires_at > now).then_some(login))
    }

    /// The identity `subject` of `issuer`, if it is linked.
    pub async fn sso_identity(&self, issuer: &str, subject: &str) -> Result<Option<SsoIdentity>> {
        let row =
            sqlx::query(&format!("SELECT {IDENTITY_COLUMNS} FROM sso_identities WHERE issuer = $1 AND subject = $2"))
                .bind(issuer)
                .bind(subject)
                .fetch_optional(self.pool())
                .await?;
        row.as_ref().map(identity).transpose()
    }

    /// The identities linked to `account_id`, oldest first.
    pub async fn sso_identities_of(&self, account_id: &str) -> Result<Vec<SsoIdentity>> {
        let rows = sqlx::query(&format!(
            "SELECT {IDENTITY_COLUMNS} FROM sso_identities WHERE account_id = $1 ORDER BY created_at, id"
        ))
        .bind(account_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(identity).collect()
    }

    /// Links an identity to `account_id`, audited as `ssoIdentityLinked` by `actor` (the person
    /// linking their own account, or the provider for an account its first sign-in created).
    /// R16: the link is controlled by `controllers`. An identity linked already, to any account,
    /// is a `Conflict`: an identity is never moved by linking it again.
    pub async fn link_sso_identity(
        &self,
        actor: &Actor,
        account_id: &str,
        new: &NewSsoIdentity<'_>,
        controllers: &[String],
        now: Millis,
    ) -> Result<SsoIdentity> {
        let mut tx = self.begin_write().await?;
        let taken = sqlx::query("SELECT account_id FROM sso_identities WHERE issuer = $1 AND subject = $2")
            .bind(new.issuer)
            .bind(new.subject)
            .fetch_optional(tx.conn())
            .await?;
        if taken.is_some() {
            return Err(StoreError::Conflict(format!(
                "this identity at {} is already linked to an account",
                new.provider_id
            )));
        }
        let linked = SsoIdentity {
            id: new_id(),
            provider_id: new.provider_id.to_owned(),
            issuer: new.issuer.to_owned(),
            subject: new.subject.to_owned(),
            account_id: account_id.to_owned(),
            email: new.email.map(str::to_owned),
            controllers: controllers.to_vec(),
            created_at: now,
            last_sign_in_at: None,
        };
        sqlx::query(
            "INSERT INTO sso_identities (id, provider_id, issuer, subject, account_id, email, controllers, created_at) \
             SELECT $1, $2, $3, $4, id, $6, $7, $8 FROM accounts WHERE id = $5 AND deleted_at IS NULL",
        )
        .bind(&linked.id)
        .bind(&linked.provider_id)
        .bind(&linked.issuer)
        .bind(&linked.subject)
        .bind(account_id)
        .bind(linked.email.as_deref())
        .bind(json!(controllers).to_string())
        .bind(now)
        .execute(tx.conn())
        .await
        .map_err(StoreError::from)
        .and_then(|done| match done.rows_affected() {
            0 => Err(StoreError::NotFound(format!("account {account_id} does not exist"))),
            _ => Ok(()),
        })?;
        let entry =
            NewAudit::new("auth", "ssoIdentityLinked").by(&actor.id, &actor.name).on("account", account_id).details(
                json!({"provider": new.provider_id, "issuer": new.issuer, "subject": new.subject, "email": new.email}),
            );
        append(&mut tx, entry, now);
        tx.commit().await?;
        Ok(linked)
    }

    /// Unlinks one of `account_id`'s identities (another account's is not found), audited.
    /// The account's sessions opened with it stay until they end, like a password's.
    pub async fn unlink_sso_identity(
        &self,
        actor: &Actor,
        account_id: &str,
        identity_id: &str,
        now: Millis,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "DELETE FROM sso_identities WHERE id = $1 AND account_id = $2 RETURNING provider_id, issuer, subject",
        )
        .bind(identity_id)
        .bind(account_id)
        .fetch_optional(tx.conn())
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("linked identity {identity_id} does not exist")));
        };
        let entry = NewAudit::new("auth", "ssoIdentityUnlinked").by(&actor.id, &actor.name).on("account", account_id).details(
            json!({"provider": text(&row, "provider_id")?, "issuer": text(&row, "issuer")?, "subject": text(&row, "subject")?}),
        );
        append(&mut tx, entry, now);
        tx.commit().await
    }

    /// A session opened with a linked identity: an ordinary session (sessions table), controlled
    /// (R16) by whoever controls the identity's link. The identity's last sign-in is recorded and
    /// the sign-in audited (`signIn`, method `sso`, with the provider), in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_sso_session(
        &self,
        identity: &SsoIdentity,
        account: &AccountRecord,
        id_hash: &str,
        csrf_token: &str,
        client: &crate::ClientInfo,
        now: Millis,
        expires_at: Millis,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let opened = sqlx::query(
            "INSERT INTO sessions (id_hash, account_id, csrf_token, created_at, expires_at, controllers, \
             public_id, last_used_at, address, user_agent) \
             SELECT $1, account_id, $3, $4, $5, controllers, $6, $4, $7, $8 FROM sso_identities WHERE id = $2 AND account_id = $9",
        )
        .bind(id_hash)
        .bind(&identity.id)
        .bind(csrf_token)
        .bind(now)
        .bind(expires_at)
        .bind(new_id())
        .bind(&client.address)
        .bind(&client.user_agent)
        .bind(&account.id)
        .execute(tx.conn())
        .await?;
        if opened.rows_affected() == 0 {
            return Err(StoreError::NotFound("the linked identity was removed during sign-in".into()));
        }
        sqlx::query("UPDATE sso_identities SET last_sign_in_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&identity.id)
            .execute(tx.conn())
            .await?;
        let entry = NewAudit::new("auth", "signIn").by(&account.id, &account.username).on("account", &account.id).details(
            json!({"address": client.address, "method": "sso", "provider": identity.provider_id, "subject": identity.subject}),
        );
        append(&mut tx, entry, now);
        tx.commit().await
    }

    /// R13: a single sign-on that failed is audited with its provider and why.
    pub async fn record_sso_failure(
        &self,
        provider_id: &str,
        subject: Option<&str>,
        address: &str,
        reason: &str,
        now: Millis,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let entry = NewAudit::new("auth", "signInFailed").details(json!({
            "method": "sso",
            "provider": provider_id,
            "subject": subject,
            "address": address,
            "reason": reason,
        }));
        append(&mut tx, entry, now);
        tx.commit().await
    }
}
