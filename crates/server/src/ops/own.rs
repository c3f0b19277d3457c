//! What every signed-in person may do for themselves: sign in and out, change their own
//! password, and manage their personal API tokens.

use crate::auth::{
    new_token, random_secret, sha256_hex, FAILURE_WINDOW, MAX_FAILURES_PER_ACCOUNT, MAX_FAILURES_PER_ADDRESS,
    MAX_FAILURES_PER_DEVICE, SESSION_TTL,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, Credential, Principal};
use crate::AppState;
use countersign_core::eligibility::AccountKind;
use countersign_core::error::ErrorCode;
use countersign_core::{validate, Millis};
use countersign_store::{AccountRecord, Budget, ClientInfo, LoginFailure, SessionInfo, TokenRecord};

/// One sign-in attempt: who, with which password, from which address, and the device cookie
/// the client holds, if any.
pub struct Attempt<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub address: &'a str,
    pub user_agent: &'a str,
    pub device: Option<&'a str>,
}

/// A new session: the account, the session id for the cookie, the CSRF token, and a fresh
/// device cookie for the client to keep.
pub struct SignedIn {
    pub account: AccountRecord,
    pub session_id: String,
    pub csrf_token: String,
    pub device_cookie: String,
}

/// The budgets an attempt spends (OWASP's device cookies): a client that proves with a device
/// cookie that it signed in as this account before spends its own; every other client shares
/// the account's budget and its address's. So a stranger who spends the account's budget
/// locks out strangers, not the owner's browsers.
fn budgets(attempt: &Attempt<'_>, device: Option<&str>) -> Vec<Budget> {
    match device {
        Some(nonce) => vec![Budget {
            bucket: format!("device:{}", sha256_hex(nonce)),
            limit: MAX_FAILURES_PER_DEVICE,
            reset_on_success: true,
        }],
        None => vec![
            Budget {
                bucket: format!("account:{}", sha256_hex(attempt.username)),
                limit: MAX_FAILURES_PER_ACCOUNT,
                reset_on_success: false,
            },
            Budget {
                bucket: format!("address:{}", attempt.address),
                limit: MAX_FAILURES_PER_ADDRESS,
                reset_on_success: false,
            },
        ],
    }
}

/// Password sign-in. A place in the password pool is taken first (or `server_busy`), then one
/// attempt is reserved in each budget in one atomic step on every replica (or
/// `too_many_attempts`), and only then is the password checked: of any number of concurrent
/// guesses, no more than the budget are checked. Audited either way (R13).
pub async fn sign_in(app: &AppState, attempt: Attempt<'_>) -> ApiResult<SignedIn> {
    let now = app.now();
    let place = app.passwords.admit()?;
    let key = app.sign_in_key().await?;
    let device = attempt.device.and_then(|cookie| key.device_of(cookie, attempt.username, now));
    let budgets = budgets(&attempt, device.as_deref());
    if let Some(wait) = app.store.reserve_sign_in(&budgets, now, FAILURE_WINDOW).await? {
        let wait = wait.max(1).unsigned_abs();
        let minutes = wait.div_ceil(60_000);
        let mut err = ApiError::new(
            ErrorCode::TooManyAttempts,
            format!("Too many failed sign-ins. Wait {minutes} minutes and try again."),
        );
        err.retry_after = Some(wait.div_ceil(1000));
        return Err(err);
    }
    let account = app.store.account_by_username(attempt.username).await?;
    let hash = account.as_ref().and_then(|a| a.password_hash.clone());
    let verified = place.verify(attempt.password.to_owned(), hash).await?;
    let failure = |reason| LoginFailure {
        username: attempt.username,
        address: attempt.address,
        reason,
        trusted_device: device.is_some(),
    };
    let account = match account {
        Some(a) if verified && a.enabled && a.kind == AccountKind::Human => a,
        Some(a) if verified && !a.enabled => {
            app.store.record_login_failure(&failure("disabled"), now).await?;
            return Err(ApiError::unauthenticated("This account is disabled."));
        }
        _ => {
            app.store.record_login_failure(&failure("bad credentials"), now).await?;
            return Err(ApiError::unauthenticated("The username or password is wrong."));
        }
    };
    let session_id = random_secret();
    let csrf_token = random_secret();
    let client = ClientInfo::new(attempt.address, attempt.user_agent);
    app.store
        .create_session(&account.id, &sha256_hex(&session_id), &csrf_token, &client, now, now + SESSION_TTL)
        .await?;
    app.store.record_login_success(&account, attempt.address, "password", &budgets, now).await?;
    let device_cookie = key.device_cookie(&account.username, now);
    Ok(SignedIn { account, session_id, csrf_token, device_cookie })
}

/// Ends the caller's session, when they signed in with one.
pub async fn sign_out(app: &AppState, principal: &Principal) -> ApiResult<()> {
    if let Credential::Session { id_hash } = &principal.credential {
        app.store.delete_session(id_hash).await?;
    }
    Ok(())
}

/// R9's exception: the caller changes their own password, proving they know the current one.
/// Every other session of the account ends; the caller's own stays. `revoke_tokens` also
/// revokes every API token of the account (the caller's choice: scripts keep working unless
/// the person suspects the old password was known).
pub async fn change_password(
    app: &AppState,
    principal: &Principal,
    current: &str,
    new: &str,
    revoke_tokens: bool,
) -> ApiResult<()> {
    // Three Argon2 runs, each through the pool like sign-in's, so this form cannot stall the
    // async workers either.
    let stored = principal.account.password_hash.clone();
    if !app.passwords.admit()?.verify(current.to_owned(), stored.clone()).await? {
        return Err(ApiError::new(ErrorCode::WrongPassword, "The current password is wrong."));
    }
    validate::password(new)?;
    if app.passwords.admit()?.verify(new.to_owned(), stored).await? {
        return Err(ApiError::validation("the new password must differ from the current one"));
    }
    let hash = app.passwords.admit()?.hash(new.to_owned()).await?;
    let keep_session = match &principal.credential {
        Credential::Session { id_hash } => Some(id_hash.as_str()),
        Credential::Token { .. } => None,
    };
    app.store.change_own_password(&principal.actor(), &hash, keep_session, revoke_tokens, app.now()).await?;
    Ok(())
}

/// The caller's API tokens (never the secrets).
pub async fn tokens(app: &AppState, principal: &Principal) -> ApiResult<Vec<TokenRecord>> {
    Ok(app.store.tokens_of(&principal.account.id).await?)
}

/// A personal API token for the caller, and its secret, returned this once.
pub struct NewToken {
    pub record: TokenRecord,
    pub secret: String,
}

pub async fn create_token(
    app: &AppState,
    principal: &Principal,
    display_name: &str,
    expires_at: Option<Millis>,
) -> ApiResult<NewToken> {
    if !principal.is_human() {
        return Err(ApiError::forbidden("service accounts cannot create tokens"));
    }
    let display_name = validate::display_name("displayName", display_name)?;
    let now = app.now();
    if expires_at.is_some_and(|t| t <= now) {
        return Err(ApiError::validation("expiresAt must be in the future"));
    }
    let secret = new_token();
    let record =
        app.store.create_token(&principal.actor(), &display_name, &sha256_hex(&secret), expires_at, now).await?;
    Ok(NewToken { record, secret })
}

/// Revokes one of the caller's tokens.
pub async fn revoke_token(app: &AppState, principal: &Principal, id: &str) -> ApiResult<()> {
    let id = parse_id(id)?;
    app.store.delete_token(&principal.actor(), &principal.account.id, &id, app.now()).await?;
    Ok(())
}

/// The caller's live sessions, the one they are using marked.
pub async fn sessions(app: &AppState, principal: &Principal) -> ApiResult<Vec<SessionInfo>> {
    let current = match &principal.credential {
        Credential::Session { id_hash } => Some(id_hash.as_str()),
        Credential::Token { .. } => None,
    };
    Ok(app.store.sessions_of(&principal.account.id, current, app.now()).await?)
}

/// Ends one of the caller's sessions (their current one too, if they ask); another account's
/// session is not found.
pub async fn end_session(app: &AppState, principal: &Principal, id: &str) -> ApiResult<()> {
    let id = parse_id(id)?;
    app.store.end_session(&principal.actor(), &principal.account.id, &id, app.now()).await?;
    Ok(())
}
