//! What every signed-in person may do for themselves: sign in and out, change their own
//! password, and manage their personal API tokens.

use crate::auth::{
    hash_password, new_token, random_secret, sha256_hex, verify_password, FAILURE_WINDOW, MAX_FAILURES_PER_ACCOUNT,
    MAX_FAILURES_PER_ADDRESS, SESSION_TTL,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, Credential, Principal};
use crate::AppState;
use countersign_core::eligibility::AccountKind;
use countersign_core::error::ErrorCode;
use countersign_core::{validate, Millis};
use countersign_store::{AccountRecord, TokenRecord};

/// A new session: the account, the session id for the cookie, and the CSRF token.
pub struct SignedIn {
    pub account: AccountRecord,
    pub session_id: String,
    pub csrf_token: String,
}

/// Password sign-in, rate-limited per account and per address, audited either way (R13).
pub async fn sign_in(app: &AppState, username: &str, password: &str, address: &str) -> ApiResult<SignedIn> {
    let now = app.now();
    let (by_user, by_address) = app.store.recent_login_failures(username, address, now - FAILURE_WINDOW).await?;
    if by_user >= MAX_FAILURES_PER_ACCOUNT || by_address >= MAX_FAILURES_PER_ADDRESS {
        let mut err =
            ApiError::new(ErrorCode::TooManyAttempts, "Too many failed sign-ins. Wait 15 minutes and try again.");
        err.retry_after = Some((FAILURE_WINDOW / 1000) as u64);
        return Err(err);
    }
    let account = app.store.account_by_username(username).await?;
    let verified = verify_password(password, account.as_ref().and_then(|a| a.password_hash.as_deref()));
    let account = match account {
        Some(a) if verified && a.enabled && a.kind == AccountKind::Human => a,
        Some(a) if verified && !a.enabled => {
            app.store.record_login_failure(username, address, "disabled", now).await?;
            return Err(ApiError::unauthenticated("This account is disabled."));
        }
        _ => {
            app.store.record_login_failure(username, address, "bad credentials", now).await?;
            return Err(ApiError::unauthenticated("The username or password is wrong."));
        }
    };
    let session_id = random_secret();
    let csrf_token = random_secret();
    app.store.create_session(&account.id, &sha256_hex(&session_id), &csrf_token, now, now + SESSION_TTL).await?;
    app.store.record_login_success(&account, address, "password", now).await?;
    Ok(SignedIn { account, session_id, csrf_token })
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
    if !verify_password(current, principal.account.password_hash.as_deref()) {
        return Err(ApiError::new(ErrorCode::WrongPassword, "The current password is wrong."));
    }
    validate::password(new)?;
    if verify_password(new, principal.account.password_hash.as_deref()) {
        return Err(ApiError::validation("the new password must differ from the current one"));
    }
    let hash = hash_password(new)?;
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
