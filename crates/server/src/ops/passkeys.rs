//! Passkeys (issue 17): register, list, rename and remove them; sign in with one (discoverable
//! credentials: no username typed).
//!
//! The rule for changes (R9, R16, R19), as documented in the README:
//! - A person adds, renames or removes a passkey of **their own** account directly, after a
//!   *fresh check* of a credential they already hold: their current password sent with the
//!   request, or a sign-in (password or passkey) of the session they use within the last
//!   [`FRESH_CHECK`]. A session that is older, or a bearer token, must send the password.
//! - A passkey of **another** account (an administrator enrolling a security key for someone, or
//!   removing a lost one) goes through the gate, `Store::submit`, like a password: R19 refuses it
//!   without every permission the account holds, R9 holds it when the account is an approver,
//!   and R16 records that the administrator controls the new passkey.

use super::{current, gate, wrong_state, Outcome};
use crate::auth::{random_secret, sha256_hex, SESSION_TTL};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, Credential, Principal};
use crate::ops::own::SignedIn;
use crate::webauthn::public_key_text;
use crate::AppState;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use countersign_core::eligibility::AccountKind;
use countersign_core::error::ErrorCode;
use countersign_core::permission::Permission;
use countersign_core::profile::{Operation, ResourceType};
use countersign_core::state::{ObjectState, PasskeyAction, PasskeyChange};
use countersign_core::{validate, DomainError, Millis};
use countersign_store::{ClientInfo, LoginFailure, NewPasskey, PasskeyRecord, Proposal};
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Uuid,
};

/// How recent a sign-in must be to count as a fresh check (kanidm gives a re-authenticated
/// session its privileges for a few minutes; so does this).
pub const FRESH_CHECK: Millis = 5 * 60 * 1000;

/// How long a ceremony may take, from its options to the browser's answer.
pub const CEREMONY_TTL: Millis = 5 * 60 * 1000;

const REGISTER: &str = "register";
const REGISTER_FOR: &str = "registerFor";
const SIGN_IN: &str = "signIn";

#[derive(Serialize, Deserialize)]
struct RegisterState {
    registration: PasskeyRegistration,
    name: String,
    account_id: String,
}

/// The caller's live passkeys.
pub async fn list(app: &AppState, principal: &Principal) -> ApiResult<Vec<PasskeyRecord>> {
    Ok(app.store.passkeys_of(&principal.account.id).await?.into_iter().map(|p| p.record).collect())
}

/// An account's live passkeys, for administrators.
pub async fn list_for(app: &AppState, principal: &Principal, account_id: &str) -> ApiResult<Vec<PasskeyRecord>> {
    principal.require(Permission::AccountsRead)?;
    let id = parse_id(account_id)?;
    Ok(app.store.passkeys_of(&id).await?.into_iter().map(|p| p.record).collect())
}

/// Issue 17's fresh check: the current password, or a sign-in of this session within
/// [`FRESH_CHECK`].
async fn fresh_check(app: &AppState, principal: &Principal, password: Option<&str>) -> ApiResult<()> {
    if let Some(password) = password.filter(|p| !p.is_empty()) {
        let stored = principal.account.password_hash.clone();
        if !app.passwords.admit()?.verify(password.to_owned(), stored).await? {
            return Err(ApiError::new(ErrorCode::WrongPassword, "The current password is wrong."));
        }
        return Ok(());
    }
    if let Credential::Session { id_hash } = &principal.credential {
        if app.store.session_verified_at(id_hash).await?.is_some_and(|at| app.now() - at <= FRESH_CHECK) {
            return Ok(());
        }
    }
    Err(DomainError::ReauthenticationRequired(
        "changing your passkeys needs a fresh check: send your current password, or sign in again (with your \
         password or a passkey) and do it within 5 minutes"
            .into(),
    )
    .into())
}

fn passkey_name(name: &str) -> ApiResult<String> {
    Ok(validate::display_name("name", name)?)
}

/// Options for `navigator.credentials.create`, and the ceremony's id to finish it with.
pub struct Begun<T> {
    pub ceremony: String,
    pub options: T,
}

/// The registration options as the browser takes them, asking for a discoverable credential
/// (so that it can sign in without a username) with user verification. webauthn-rs's passkey
/// registration leaves the resident key to the authenticator; a sign-in without a username
/// needs one.
fn discoverable(ccr: &CreationChallengeResponse) -> ApiResult<serde_json::Value> {
    let mut options = serde_json::to_value(ccr).map_err(|e| ApiError::validation(e.to_string()))?;
    if let Some(selection) = options.pointer_mut("/publicKey/authenticatorSelection").and_then(|s| s.as_object_mut()) {
        selection.insert("residentKey".into(), "required".into());
        selection.insert("requireResidentKey".into(), true.into());
        selection.insert("userVerification".into(), "required".into());
    }
    Ok(options)
}

async fn begin_registration_of(
    app: &AppState,
    principal: &Principal,
    account_id: &str,
    username: &str,
    display_name: &str,
    name: &str,
    kind: &str,
) -> ApiResult<Begun<serde_json::Value>> {
    let name = passkey_name(name)?;
    let webauthn = app.webauthn.webauthn()?;
    let user = Uuid::parse_str(account_id).map_err(|_| ApiError::validation("the account id is not a UUID"))?;
    let existing = app.store.passkeys_of(account_id).await?;
    let exclude = existing
        .iter()
        .filter_map(|p| serde_json::from_str::<Passkey>(&p.credential).ok())
        .map(|p| p.cred_id().clone())
        .collect::<Vec<_>>();
    let (ccr, registration) = webauthn
        .start_passkey_registration(user, username, display_name, Some(exclude))
        .map_err(|e| ApiError::validation(format!("the passkey registration could not start: {e}")))?;
    let state = RegisterState { registration, name, account_id: account_id.to_owned() };
    let state = serde_json::to_string(&state).map_err(|e| ApiError::validation(e.to_string()))?;
    let session = match &principal.credential {
        Credential::Session { id_hash } => Some(id_hash.as_str()),
        Credential::Token { .. } => None,
    };
    let now = app.now();
    let ceremony = app
        .store
        .begin_ceremony(&random_secret(), kind, Some(&principal.account.id), session, &state, now, now + CEREMONY_TTL)
        .await?;
    Ok(Begun { ceremony, options: discoverable(&ccr)? })
}

/// Begins registering a passkey for the caller's own account, after the fresh check.
pub async fn begin_own_registration(
    app: &AppState,
    principal: &Principal,
    name: &str,
    password: Option<&str>,
) -> ApiResult<Begun<serde_json::Value>> {
    if !principal.is_human() {
        return Err(ApiError::forbidden("service accounts have no passkeys"));
    }
    fresh_check(app, principal, password).await?;
    let account = &principal.account;
    begin_registration_of(app, principal, &account.id, &account.username, &account.display_name, name, REGISTER).await
}

/// Begins registering a passkey for another account (the caller holds the authenticator, to
/// hand it over): finished through the gate.
pub async fn begin_registration_for(
    app: &AppState,
    principal: &Principal,
    account_id: &str,
    name: &str,
) -> ApiResult<Begun<serde_json::Value>> {
    principal.require(Permission::AccountsWrite)?;
    let target = current(app, ResourceType::Account, account_id).await?;
    let ObjectState::Account(account) = &target.state else { return Err(wrong_state(&target)) };
    if account.kind != AccountKind::Human {
        return Err(ApiError::validation("service accounts have no passkeys"));
    }
    if target.id == principal.account.id {
        return Err(ApiError::validation("register your own passkeys from your account page (/api/v1/me/passkeys)"));
    }
    begin_registration_of(app, principal, &target.id, &account.username, &account.display_name, name, REGISTER_FOR)
        .await
}

/// The ceremony of `kind` begun by this caller (and, for a session, in this session).
async fn take_own_ceremony(
    app: &AppState,
    principal: &Principal,
    ceremony: &str,
    kind: &str,
) -> ApiResult<countersign_store::Ceremony> {
    let taken = app.store.take_ceremony(ceremony, kind, app.now()).await?;
    let session = match &principal.credential {
        Credential::Session { id_hash } => Some(id_hash.clone()),
        Credential::Token { .. } => None,
    };
    match taken {
        Some(c) if c.account_id.as_deref() == Some(principal.account.id.as_str()) && c.session_hash == session => Ok(c),
        _ => Err(ApiError::validation("this passkey ceremony has expired or was already used; start again")),
    }
}

fn new_passkey(
    app: &AppState,
    ceremony: &countersign_store::Ceremony,
    response: &RegisterPublicKeyCredential,
) -> ApiResult<(String, NewPasskey)> {
    let state: RegisterState = serde_json::from_str(&ceremony.state)
        .map_err(|e| ApiError::validation(format!("the ceremony's state is unreadable: {e}")))?;
    let passkey = app
        .webauthn
        .webauthn()?
        .finish_passkey_registration(response, &state.registration)
        .map_err(|e| ApiError::validation(format!("the passkey was not registered: {e}")))?;
    let public_key = public_key_text(&passkey)?;
    let credential_id = URL_SAFE_NO_PAD.encode(passkey.cred_id().as_ref());
    let credential = serde_json::to_string(&passkey).map_err(|e| ApiError::validation(e.to_string()))?;
    let new =
        NewPasskey { id: uuid::Uuid::now_v7().to_string(), name: state.name, credential_id, credential, public_key };
    Ok((state.account_id, new))
}

/// Finishes registering a passkey for the caller's own account.
pub async fn finish_own_registration(
    app: &AppState,
    principal: &Principal,
    ceremony: &str,
    response: &RegisterPublicKeyCredential,
) -> ApiResult<PasskeyRecord> {
    let ceremony = take_own_ceremony(app, principal, ceremony, REGISTER).await?;
    let (account_id, new) = new_passkey(app, &ceremony, response)?;
    if account_id != principal.account.id {
        return Err(ApiError::validation("this ceremony registers a passkey for another account"));
    }
    app.store.add_own_passkey(&principal.actor(), &new, app.now()).await?;
    own_passkey(app, principal, &new.id).await
}

async fn own_passkey(app: &AppState, principal: &Principal, id: &str) -> ApiResult<PasskeyRecord> {
    app.store
        .passkeys_of(&principal.account.id)
        .await?
        .into_iter()
        .map(|p| p.record)
        .find(|p| p.id == id)
        .ok_or_else(|| ApiError::not_found(format!("passkey {id} does not exist")))
}

/// Finishes registering a passkey for another account: through the gate (R9, R16, R19).
pub async fn finish_registration_for(
    app: &AppState,
    principal: &Principal,
    ceremony: &str,
    response: &RegisterPublicKeyCredential,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require(Permission::AccountsWrite)?;
    let ceremony = take_own_ceremony(app, principal, ceremony, REGISTER_FOR).await?;
    let (account_id, new) = new_passkey(app, &ceremony, response)?;
    let change = PasskeyChange { action: PasskeyAction::Added, id: new.id.clone(), name: new.name.clone() };
    let secret = serde_json::to_string(&new).map_err(|e| ApiError::validation(e.to_string()))?;
    propose_passkey_change(app, principal, &account_id, change, Some(secret), justification).await
}

/// A change to another account's passkeys, through the gate.
async fn propose_passkey_change(
    app: &AppState,
    principal: &Principal,
    account_id: &str,
    change: PasskeyChange,
    secret: Option<String>,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    let before = current(app, ResourceType::Account, account_id).await?;
    let ObjectState::Account(account) = &before.state else { return Err(wrong_state(&before)) };
    let after =
        ObjectState::Account(countersign_core::state::AccountState { passkey: Some(change), ..account.clone() });
    let mut proposal = Proposal::change(
        ResourceType::Account,
        Operation::Update,
        before.id,
        before.state,
        before.version,
        Some(after),
    );
    proposal.secret = secret;
    gate(app, principal, proposal, justification).await
}

/// Removes a passkey of another account: through the gate (R9, R19).
pub async fn remove_for(
    app: &AppState,
    principal: &Principal,
    account_id: &str,
    passkey_id: &str,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require(Permission::AccountsWrite)?;
    let account_id = parse_id(account_id)?;
    let passkey_id = parse_id(passkey_id)?;
    if account_id == principal.account.id {
        return Err(ApiError::validation("remove your own passkeys from your account page (/api/v1/me/passkeys)"));
    }
    let passkey = app
        .store
        .passkeys_of(&account_id)
        .await?
        .into_iter()
        .find(|p| p.record.id == passkey_id)
        .ok_or_else(|| ApiError::not_found(format!("passkey {passkey_id} does not exist")))?;
    let change = PasskeyChange { action: PasskeyAction::Removed, id: passkey_id, name: passkey.record.name };
    propose_passkey_change(app, principal, &account_id, change, None, justification).await
}

/// Renames one of the caller's passkeys (a label: no fresh check).
pub async fn rename(app: &AppState, principal: &Principal, id: &str, name: &str) -> ApiResult<PasskeyRecord> {
    let id = parse_id(id)?;
    let name = passkey_name(name)?;
    app.store.rename_own_passkey(&principal.actor(), &id, &name, app.now()).await?;
    own_passkey(app, principal, &id).await
}

/// Removes one of the caller's passkeys, after the fresh check.
pub async fn remove(app: &AppState, principal: &Principal, id: &str, password: Option<&str>) -> ApiResult<()> {
    let id = parse_id(id)?;
    fresh_check(app, principal, password).await?;
    app.store.remove_own_passkey(&principal.actor(), &id, app.now()).await?;
    Ok(())
}

/// Makes the caller's account passwordless (they prove the password; they must hold a passkey).
pub async fn remove_password(app: &AppState, principal: &Principal, password: &str) -> ApiResult<()> {
    let stored = principal.account.password_hash.clone();
    if stored.is_none() || !app.passwords.admit()?.verify(password.to_owned(), stored).await? {
        return Err(ApiError::new(ErrorCode::WrongPassword, "The current password is wrong."));
    }
    let keep = match &principal.credential {
        Credential::Session { id_hash } => Some(id_hash.as_str()),
        Credential::Token { .. } => None,
    };
    app.store.remove_own_password(&principal.actor(), keep, app.now()).await?;
    Ok(())
}

/// Begins a passkey sign-in: no username; the browser offers the passkeys it holds for this site.
pub async fn begin_sign_in(app: &AppState) -> ApiResult<Begun<RequestChallengeResponse>> {
    let (mut rcr, state) = app
        .webauthn
        .webauthn()?
        .start_discoverable_authentication()
        .map_err(|e| ApiError::validation(format!("the passkey sign-in could not start: {e}")))?;
    // A button press, not the autofill ("conditional") flow webauthn-rs asks for by default.
    rcr.mediation = None;
    let state = serde_json::to_string(&state).map_err(|e| ApiError::validation(e.to_string()))?;
    let now = app.now();
    let ceremony =
        app.store.begin_ceremony(&random_secret(), SIGN_IN, None, None, &state, now, now + CEREMONY_TTL).await?;
    Ok(Begun { ceremony, options: rcr })
}

/// Finishes a passkey sign-in: a new session, controlled by whoever controls the passkey (R16).
pub async fn finish_sign_in(
    app: &AppState,
    ceremony: &str,
    response: &PublicKeyCredential,
    address: &str,
    user_agent: &str,
) -> ApiResult<SignedIn> {
    let now = app.now();
    let failed = |reason: &'static str| async move {
        let failure = LoginFailure { username: "(passkey)", address, reason, trusted_device: false };
        app.store.record_login_failure(&failure, now).await?;
        Err::<SignedIn, ApiError>(ApiError::unauthenticated("The passkey sign-in failed; try again."))
    };
    let Some(ceremony) = app.store.take_ceremony(ceremony, SIGN_IN, now).await? else {
        return failed("passkey ceremony expired or reused").await;
    };
    let state: DiscoverableAuthentication = serde_json::from_str(&ceremony.state)
        .map_err(|e| ApiError::validation(format!("the ceremony's state is unreadable: {e}")))?;
    let webauthn = app.webauthn.webauthn()?;
    let Ok((user, credential_id)) = webauthn.identify_discoverable_authentication(response) else {
        return failed("passkey without a user handle").await;
    };
    let credential_id = URL_SAFE_NO_PAD.encode(credential_id);
    let Some(stored) = app.store.passkey_by_credential_id(&credential_id).await? else {
        return failed("unknown passkey").await;
    };
    if Uuid::parse_str(&stored.record.account_id).ok() != Some(user) {
        return failed("passkey of another account").await;
    }
    let Ok(mut passkey) = serde_json::from_str::<Passkey>(&stored.credential) else {
        return failed("unreadable passkey").await;
    };
    let result = match webauthn.finish_discoverable_authentication(response, state, &[DiscoverableKey::from(&passkey)])
    {
        Ok(result) if result.user_verified() => result,
        _ => return failed("passkey assertion refused").await,
    };
    passkey.update_credential(&result);
    let credential = serde_json::to_string(&passkey).map_err(|e| ApiError::validation(e.to_string()))?;
    let Some(account) = app.store.account(&stored.record.account_id).await? else {
        return failed("account gone").await;
    };
    if !account.enabled || account.kind != AccountKind::Human {
        return failed("disabled").await;
    }
    let session_id = random_secret();
    let csrf_token = random_secret();
    let client = ClientInfo::new(address, user_agent);
    app.store
        .passkey_session(
            &stored.record.id,
            &credential,
            i64::from(result.counter()),
            &sha256_hex(&session_id),
            &csrf_token,
            &client,
            now,
            now + SESSION_TTL,
        )
        .await?;
    app.store.record_login_success(&account, address, "passkey", &[], now).await?;
    let key = app.sign_in_key().await?;
    let device_cookie = key.device_cookie(&account.username, now);
    Ok(SignedIn { account, session_id, csrf_token, device_cookie })
}
