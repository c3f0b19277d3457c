//! Single sign-on (issue 17): starting a sign-in at a provider, finishing it when the provider
//! sends the person back, linking an identity to one's own account, and the group memberships
//! a provider's claims map to.
//!
//! What proves who someone is: the ID token, checked by the `openidconnect` crate (signature by
//! the provider's published key, issuer, audience, expiry) and carrying the nonce this sign-in
//! made; the code is redeemed with this sign-in's PKCE verifier; the `state` names a sign-in in
//! progress kept in the database, taken once, within [`LOGIN_TTL`], in the browser that started
//! it. An identity is its issuer and subject: an account is found by the link made for it, never
//! by a matching e-mail address or username (an account takeover path).
//!
//! The claim mapping is automation, acting as the provider's own actor through the one gate
//! (`Store::submit`): creating an account is not protected (it is in no group yet), and a
//! membership change of a protected group (an approver group, R9; a role assignment's member
//! group under a `role` policy, R17; an assignment target of a protected deployment, R18) is held
//! as an approval request like anyone's. Approved, it is applied at once under
//! `completion: automatic`, or else at the next sign-in through the provider that touches that
//! group (the provider completes its own approved request).

use crate::auth::{random_secret, sha256_hex, SESSION_TTL};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, Principal};
use crate::sso::{Provider, LOGIN_TTL};
use crate::AppState;
use countersign_core::control::controllers_of_new_credential;
use countersign_core::eligibility::AccountKind;
use countersign_core::error::ErrorCode;
use countersign_core::permission::{Permission, PermissionSet};
use countersign_core::profile::{Operation, ResourceType};
use countersign_core::request::RequestStatus;
use countersign_core::state::{AccountState, GroupMember, GroupState, ObjectState};
use countersign_core::visibility::Viewer;
use countersign_store::{
    AccountRecord, ClientInfo, NewSsoIdentity, Proposal, SsoIdentity, SsoLogin, StoreError, Submitted,
};
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge, PkceCodeVerifier, Scope};

/// Where the provider sends the person back: `<public_url>/sso/<id>/callback` (register this
/// exact URL with the provider).
pub fn callback_url(app: &AppState, provider: &Provider) -> String {
    format!("{}/sso/{}/callback", app.config.public_url.trim_end_matches('/'), provider.id)
}

/// A sign-in started: where to send the browser, and the browser cookie to set.
pub struct Started {
    pub authorize_url: String,
    pub browser_cookie: String,
}

/// Starts a sign-in (or, with `link_for`, linking an identity to the signed-in caller's own
/// account) at provider `id`. `browser` is the browser's binding cookie, if it has one already.
pub async fn start(
    app: &AppState,
    id: &str,
    next: &str,
    browser: Option<&str>,
    link_for: Option<&Principal>,
) -> ApiResult<Started> {
    let now = app.now();
    let provider = app.sso.get(id)?;
    if let Some(principal) = link_for {
        if !principal.is_human() {
            return Err(ApiError::forbidden("only a person can link a single sign-on identity"));
        }
    }
    let client = app.sso.client(provider, &callback_url(app, provider), now).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let request = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .set_pkce_challenge(challenge)
        .add_scopes(provider.scopes.iter().cloned().map(Scope::new));
    let (url, state, nonce) = request.url();
    let browser_cookie = browser.filter(|b| !b.is_empty()).map(str::to_owned).unwrap_or_else(random_secret);
    let login = SsoLogin {
        provider_id: provider.id.clone(),
        browser_hash: sha256_hex(&browser_cookie),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        next_path: next.to_owned(),
        link_account_id: link_for.map(|p| p.account.id.clone()),
        link_controllers: link_for.map(|p| p.via.clone()).unwrap_or_default(),
        expires_at: now + LOGIN_TTL,
    };
    app.store.begin_sso_login(&sha256_hex(state.secret()), &login, now).await?;
    Ok(Started { authorize_url: url.to_string(), browser_cookie })
}

/// Starts linking an identity at provider `id` to the caller's own account. Linking adds a way
/// into the account, so a person who has a password proves it first (as for changing it): a
/// session left open, or taken over, is not enough to plant an identity in it.
pub async fn start_link(
    app: &AppState,
    id: &str,
    principal: &Principal,
    password: &str,
    browser: Option<&str>,
) -> ApiResult<Started> {
    app.sso.get(id)?;
    if let Some(hash) = principal.account.password_hash.clone() {
        if !app.passwords.admit()?.verify(password.to_owned(), Some(hash)).await? {
            return Err(ApiError::new(ErrorCode::WrongPassword, "The current password is wrong."));
        }
    }
    start(app, id, "/account", browser, Some(principal)).await
}

/// What the provider sent back to the callback.
pub struct Callback<'a> {
    pub provider_id: &'a str,
    pub code: Option<&'a str>,
    pub state: Option<&'a str>,
    /// The provider's refusal (`error`, `error_description`), when it refused.
    pub error: Option<&'a str>,
    pub browser: Option<&'a str>,
    pub address: &'a str,
    pub user_agent: &'a str,
}

/// What a group mapping did at a sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupChange {
    Added {
        group: String,
    },
    Removed {
        group: String,
    },
    /// R1/R9: held as an approval request; not a member (or still one) until approved.
    Held {
        group: String,
        request_id: String,
    },
    /// The group already has an open request (R4); this sign-in changed nothing.
    Waiting {
        group: String,
        request_id: String,
    },
    /// An approved request of the provider's, completed now.
    Completed {
        group: String,
        request_id: String,
    },
    /// Could not be done (the group is gone, a name is ambiguous); logged and audited.
    Failed {
        group: String,
        reason: String,
    },
}

/// A finished sign-in.
pub enum Finished {
    SignedIn { account: AccountRecord, session_id: String, csrf_token: String, next: String, groups: Vec<GroupChange> },
    Linked { account_id: String, provider: String, next: String },
}

/// The identity the provider vouched for.
struct Vouched {
    issuer: String,
    subject: String,
    email: Option<String>,
    email_verified: Option<bool>,
    name: Option<String>,
    username: Option<String>,
    /// The groups claim; `None` when the token does not carry it at all (not configured, or
    /// left out, as Entra ID does past 200 groups), in which case memberships are left alone.
    groups: Option<Vec<String>>,
}

/// A refusal, audited as a failed sign-in with the provider and why.
async fn refuse(
    app: &AppState,
    callback: &Callback<'_>,
    subject: Option<&str>,
    reason: &str,
    error: ApiError,
) -> ApiError {
    if let Err(e) =
        app.store.record_sso_failure(callback.provider_id, subject, callback.address, reason, app.now()).await
    {
        return e.into();
    }
    error
}

fn failed(detail: &str) -> ApiError {
    ApiError::new(ErrorCode::SsoFailed, detail.to_owned())
}

/// Finishes a sign-in at the callback: checks everything the module's head lists, then signs in
/// (or links) as the identity's account.
pub async fn finish(app: &AppState, callback: Callback<'_>) -> ApiResult<Finished> {
    let now = app.now();
    let provider = app.sso.get(callback.provider_id)?;
    if let Some(error) = callback.error {
        // Still take the sign-in, so that its state cannot be used again.
        if let Some(state) = callback.state {
            app.store.take_sso_login(&sha256_hex(state), now).await?;
        }
        let reason = format!("the provider refused: {}", error.chars().take(100).collect::<String>());
        return Err(refuse(
            app,
            &callback,
            None,
            &reason,
            failed(&format!("{} did not sign you in.", provider.display_name)),
        )
        .await);
    }
    let (Some(code), Some(state)) = (callback.code, callback.state) else {
        return Err(
            refuse(app, &callback, None, "no code or state", failed("The provider's answer is incomplete.")).await
        );
    };
    let expired = "This sign-in has expired or was already used. Start again.";
    let Some(login) = app.store.take_sso_login(&sha256_hex(state), now).await? else {
        return Err(refuse(app, &callback, None, "unknown, used or expired state", failed(expired)).await);
    };
    if login.provider_id != provider.id {
        return Err(refuse(app, &callback, None, "state of another provider", failed(expired)).await);
    }
    let same_browser = callback
        .browser
        .is_some_and(|b| subtle::ConstantTimeEq::ct_eq(sha256_hex(b).as_bytes(), login.browser_hash.as_bytes()).into());
    if !same_browser {
        return Err(refuse(
            app,
            &callback,
            None,
            "started in another browser",
            failed("This sign-in was started in another browser. Start again here."),
        )
        .await);
    }
    let vouched = match redeem(app, provider, code, &login).await {
        Ok(vouched) => vouched,
        Err(reason) => {
            tracing::warn!(provider = %provider.id, reason = %reason, "single sign-on refused");
            let detail = format!("{} could not confirm who you are.", provider.display_name);
            return Err(refuse(app, &callback, None, &reason, failed(&detail)).await);
        }
    };
    let subject = Some(vouched.subject.as_str());
    if !provider.email_allowed(vouched.email.as_deref(), vouched.email_verified) {
        let detail = "Your e-mail address at the provider is not in a domain allowed to sign in here.";
        return Err(refuse(app, &callback, subject, "e-mail domain not allowed", ApiError::forbidden(detail)).await);
    }
    let new = NewSsoIdentity {
        provider_id: &provider.id,
        issuer: &vouched.issuer,
        subject: &vouched.subject,
        email: vouched.email.as_deref(),
    };
    if let Some(account_id) = &login.link_account_id {
        return link(app, &callback, provider, account_id, &login, &new).await;
    }
    let (identity, account) = match app.store.sso_identity(&vouched.issuer, &vouched.subject).await? {
        Some(identity) => {
            let account = app.store.account(&identity.account_id).await?;
            match account {
                Some(a) if a.enabled && a.kind == AccountKind::Human => (identity, a),
                Some(_) => {
                    let error = ApiError::unauthenticated("This account is disabled.");
                    return Err(refuse(app, &callback, subject, "disabled", error).await);
                }
                None => {
                    let error = ApiError::new(ErrorCode::SsoNotLinked, "The account linked to this identity is gone.");
                    return Err(refuse(app, &callback, subject, "account deleted", error).await);
                }
            }
        }
        None if provider.create_accounts => match create_account(app, provider, &vouched, &new).await {
            Ok(created) => created,
            Err(e) => {
                let reason = format!("account not created: {}", e.detail);
                return Err(refuse(app, &callback, subject, &reason, e).await);
            }
        },
        None => {
            let error = ApiError::new(
                ErrorCode::SsoNotLinked,
                format!(
                    "Your {} identity is not linked to an account here. Sign in with your password and link it on My account, or ask an administrator.",
                    provider.display_name
                ),
            );
            return Err(refuse(app, &callback, subject, "not linked", error).await);
        }
    };
    let groups = match &vouched.groups {
        Some(claimed) => sync_groups(app, provider, &account, claimed).await,
        None if !provider.group_mappings.is_empty() => {
            // A missing claim is not "in no group": removing everyone then would be wrong.
            tracing::warn!(provider = %provider.id, "single sign-on: the ID token has no groups claim; memberships unchanged");
            Vec::new()
        }
        None => Vec::new(),
    };
    let session_id = random_secret();
    let csrf_token = random_secret();
    let client = ClientInfo::new(callback.address, callback.user_agent);
    app.store
        .create_sso_session(&identity, &account, &sha256_hex(&session_id), &csrf_token, &client, now, now + SESSION_TTL)
        .await?;
    Ok(Finished::SignedIn { account, session_id, csrf_token, next: login.next_path, groups })
}

/// Redeems the code (with the PKCE verifier) and checks the ID token; the error says why not,
/// for the log and the audit log (not for the browser).
async fn redeem(app: &AppState, provider: &Provider, code: &str, login: &SsoLogin) -> Result<Vouched, String> {
    let client = app
        .sso
        .client(provider, &callback_url(app, provider), app.now())
        .await
        .map_err(|e| format!("discovery: {}", e.detail))?;
    let response = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(|e| format!("token endpoint: {e}"))?
        .set_pkce_verifier(PkceCodeVerifier::new(login.pkce_verifier.clone()))
        .request_async(&app.sso.http)
        .await
        .map_err(|e| format!("code exchange: {}", chain(&e)))?;
    let token = openidconnect::TokenResponse::id_token(&response).ok_or("the provider sent no ID token")?;
    // The token's own times (expiry, issue) are the provider's, checked on the real clock by the
    // crate; this sign-in's lifetime is checked on the server's clock above.
    let claims = token
        .claims(&client.id_token_verifier(), &Nonce::new(login.nonce.clone()))
        .map_err(|e| format!("ID token: {}", chain(&e)))?;
    let other = claims.additional_claims();
    let username = match &provider.username_claim {
        Some(name) => other.string(name),
        None => claims.preferred_username().map(|u| u.to_string()).or_else(|| claims.email().map(|e| e.to_string())),
    };
    Ok(Vouched {
        issuer: claims.issuer().to_string(),
        subject: claims.subject().to_string(),
        email: claims.email().map(|e| e.to_string()),
        email_verified: claims.email_verified(),
        name: claims.name().and_then(|n| n.get(None)).map(|n| n.to_string()),
        username,
        groups: provider.groups_claim.as_deref().filter(|c| other.0.contains_key(*c)).map(|c| other.strings(c)),
    })
}

/// An error with its causes, for the log and the audit log.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// Links the identity to the account that started the link from its own signed-in session.
/// R16: the link is controlled by whoever controlled that session.
async fn link(
    app: &AppState,
    callback: &Callback<'_>,
    provider: &Provider,
    account_id: &str,
    login: &SsoLogin,
    new: &NewSsoIdentity<'_>,
) -> ApiResult<Finished> {
    let now = app.now();
    let Some(account) = app.store.account(account_id).await?.filter(|a| a.enabled) else {
        return Err(
            refuse(app, callback, Some(new.subject), "link: account gone", failed("Your account is gone.")).await
        );
    };
    if let Some(existing) = app.store.sso_identity(new.issuer, new.subject).await? {
        let detail = if existing.account_id == account.id {
            format!("This {} identity is already linked to your account.", provider.display_name)
        } else {
            format!("This {} identity is already linked to another account.", provider.display_name)
        };
        return Err(refuse(
            app,
            callback,
            Some(new.subject),
            "link: identity taken",
            ApiError::new(ErrorCode::SsoIdentityTaken, detail),
        )
        .await);
    }
    let actor = countersign_store::Actor { via: login.link_controllers.clone(), ..account.actor() };
    let controllers = controllers_of_new_credential(&account.id, None, &login.link_controllers);
    match app.store.link_sso_identity(&actor, &account.id, new, &controllers, now).await {
        Ok(_) => Ok(Finished::Linked {
            account_id: account.id,
            provider: provider.display_name.clone(),
            next: login.next_path.clone(),
        }),
        Err(StoreError::Conflict(detail)) => Err(ApiError::new(ErrorCode::SsoIdentityTaken, detail)),
        Err(e) => Err(e.into()),
    }
}

/// What the provider's actor may do through the gate: create accounts and change group
/// membership (and read what it changes). Permission checks still come first (§4); protection
/// still holds what it protects.
fn provider_permissions() -> PermissionSet {
    PermissionSet::new(
        [Permission::AccountsRead, Permission::AccountsWrite, Permission::GroupsRead, Permission::GroupsWrite]
            .map(|p| p.as_str()),
    )
}

/// An account for an identity's first sign-in, through the gate as the provider; then the link.
async fn create_account(
    app: &AppState,
    provider: &Provider,
    vouched: &Vouched,
    new: &NewSsoIdentity<'_>,
) -> ApiResult<(SsoIdentity, AccountRecord)> {
    let now = app.now();
    let Some(raw) = vouched.username.as_deref() else {
        return Err(ApiError::validation("the provider gave no username for a new account"));
    };
    let username = countersign_core::validate::username(raw)?;
    if app.store.account_by_username(&username).await?.is_some() {
        // Never taken over by a matching name: the owner links the identity, or an
        // administrator does.
        return Err(ApiError::new(
            ErrorCode::SsoNotLinked,
            format!("An account named '{username}' exists already and is not linked to this identity. Sign in to it and link it on My account."),
        ));
    }
    let display_name = countersign_core::lookalike::account_display_name(vouched.name.as_deref().unwrap_or(&username))?;
    let after = ObjectState::Account(AccountState {
        username: username.clone(),
        display_name,
        email: super::directory::email(vouched.email.as_deref())?,
        kind: AccountKind::Human,
        enabled: true,
        password: None,
        sessions: None,
        passkey: None,
    });
    let proposal = Proposal::create(ResourceType::Account, after);
    let account_id = proposal.object_id.clone();
    let actor = provider.actor();
    let justification = format!("First single sign-on through {} of '{username}'", provider.display_name);
    match app.store.submit(&actor, &provider_permissions(), proposal, Some(&justification), now).await? {
        Submitted::Applied { .. } => {}
        Submitted::Held(record) => {
            return Err(ApiError::new(
                ErrorCode::SsoNotLinked,
                format!("Creating your account needs approval first (request {}).", record.id),
            ))
        }
    }
    let account = app
        .store
        .account(&account_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::InternalError, "the new account is gone"))?;
    // R16: nobody here set this credential; the provider vouches for it, like the system.
    let identity = app.store.link_sso_identity(&actor, &account.id, new, &[], now).await?;
    Ok((identity, account))
}

/// The Countersign group a mapping names: its id, or its display name (which must name one).
async fn resolve_group(app: &AppState, name: &str) -> Result<String, String> {
    if let Ok(id) = parse_id(name) {
        return match app.store.group(&id).await {
            Ok(Some(group)) => Ok(group.id),
            Ok(None) => Err(format!("there is no group {id}")),
            Err(e) => Err(e.to_string()),
        };
    }
    let mut found = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = app.store.groups(after.as_deref(), 500).await.map_err(|e| e.to_string())?;
        found.extend(page.iter().filter(|g| g.display_name == name).map(|g| g.id.clone()));
        match page.last() {
            Some(last) if page.len() == 500 => after = Some(last.id.clone()),
            _ => break,
        }
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!("there is no group named '{name}'")),
        _ => Err(format!("several groups are named '{name}'; map it by id")),
    }
}

/// Computes and submits the membership changes `claimed` (the provider's groups claim) maps to.
/// Never fails the sign-in: what cannot be done is logged and reported.
async fn sync_groups(
    app: &AppState,
    provider: &Provider,
    account: &AccountRecord,
    claimed: &[String],
) -> Vec<GroupChange> {
    let mut wanted: Vec<(String, bool, String)> = Vec::new();
    for mapping in &provider.group_mappings {
        let want = claimed.contains(&mapping.claim);
        match resolve_group(app, &mapping.group).await {
            Ok(id) => match wanted.iter_mut().find(|(g, _, _)| *g == id) {
                Some(entry) => entry.1 |= want,
                None => wanted.push((id, want, mapping.claim.clone())),
            },
            Err(reason) => {
                tracing::warn!(provider = %provider.id, group = %mapping.group, %reason, "single sign-on: a group mapping cannot be applied");
                wanted.push((String::new(), false, mapping.group.clone()));
            }
        }
    }
    let mut changes = Vec::new();
    for (group_id, want, claim) in wanted {
        if group_id.is_empty() {
            changes.push(GroupChange::Failed { group: claim, reason: "no such group".into() });
            continue;
        }
        match sync_group(app, provider, account, &group_id, want, &claim).await {
            Ok(Some(change)) => changes.push(change),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(provider = %provider.id, group = %group_id, error = %e.detail, "single sign-on: a group mapping failed");
                changes.push(GroupChange::Failed { group: group_id, reason: e.detail });
            }
        }
    }
    changes
}

async fn sync_group(
    app: &AppState,
    provider: &Provider,
    account: &AccountRecord,
    group_id: &str,
    want: bool,
    claim: &str,
) -> ApiResult<Option<GroupChange>> {
    // The change is the provider's, driven by this person's sign-in: they control its request
    // (R16), so they can never approve their own membership, whatever the provider says of them.
    let actor = countersign_store::Actor { via: vec![account.id.clone()], ..provider.actor() };
    let permissions = provider_permissions();
    // An approved request of the provider's that this sign-in completed, if any.
    let mut completed = None;
    for _ in 0..2 {
        let Some((state, version)) = app.store.object_state(ResourceType::Group, group_id).await? else {
            return Ok(Some(GroupChange::Failed { group: group_id.to_owned(), reason: "the group is gone".into() }));
        };
        let ObjectState::Group(group) = &state else {
            return Err(ApiError::new(ErrorCode::InternalError, "a group holds another type's state"));
        };
        let name = group.display_name.clone();
        let member = group.members.iter().any(|m| m.id == account.id);
        if member == want || (!want && !provider.remove_from_mapped_groups) {
            return Ok(completed);
        }
        let mut members: Vec<GroupMember> = group.members.iter().filter(|m| m.id != account.id).cloned().collect();
        if want {
            members.push(GroupMember { id: account.id.clone(), username: account.username.clone() });
        }
        // Ordered as the store lists members, as `ops::directory::set_members` does.
        members.sort_by(|a, b| (&a.username, &a.id).cmp(&(&b.username, &b.id)));
        let after = ObjectState::Group(GroupState { members, ..group.clone() });
        let proposal = Proposal::change(
            ResourceType::Group,
            Operation::Update,
            group_id.to_owned(),
            state.clone(),
            version,
            Some(after),
        );
        let why = if want { "names" } else { "no longer names" };
        let justification: String = format!(
            "Single sign-on: {}'s claim '{}' {why} '{claim}' for {} ({})",
            provider.display_name,
            provider.groups_claim.as_deref().unwrap_or_default(),
            account.username,
            account.display_name,
        )
        .chars()
        .take(1000)
        .collect();
        let submitted = app.store.submit(&actor, &permissions, proposal, Some(&justification), app.now()).await;
        return match submitted {
            Ok(Submitted::Applied { .. }) if want => Ok(Some(GroupChange::Added { group: name })),
            Ok(Submitted::Applied { .. }) => Ok(Some(GroupChange::Removed { group: name })),
            Ok(Submitted::Held(record)) => Ok(Some(GroupChange::Held { group: name, request_id: record.id })),
            Err(StoreError::RequestOpen { request_id, .. }) => {
                let open = app.store.request(&request_id).await?;
                if completed.is_none() && open.requested_by == actor.id && open.status == RequestStatus::Approved {
                    // R8: the provider completes its own approved request (exactly what was
                    // approved; a stale one fails), then this sign-in looks again.
                    let viewer = Viewer { id: &actor.id, permissions: &permissions, group_ids: &[] };
                    let done = app.store.complete(&actor, viewer, &request_id, app.now()).await?;
                    completed = Some(match done.status {
                        RequestStatus::Completed => GroupChange::Completed { group: name, request_id },
                        _ => GroupChange::Failed {
                            group: name,
                            reason: done.failure_reason.unwrap_or_else(|| "the approved change failed".into()),
                        },
                    });
                    continue;
                }
                Ok(Some(GroupChange::Waiting { group: name, request_id }))
            }
            Err(e) => Err(e.into()),
        };
    }
    Ok(completed)
}

/// The caller's linked identities.
pub async fn identities(app: &AppState, principal: &Principal) -> ApiResult<Vec<SsoIdentity>> {
    Ok(app.store.sso_identities_of(&principal.account.id).await?)
}

/// Unlinks one of the caller's identities.
pub async fn unlink(app: &AppState, principal: &Principal, id: &str) -> ApiResult<()> {
    let id = parse_id(id)?;
    app.store.unlink_sso_identity(&principal.actor(), &principal.account.id, &id, app.now()).await?;
    Ok(())
}
