//! Single sign-on plumbing (issue 17): the providers `countersign.toml` names, and an OpenID
//! Connect client for each (the `openidconnect` crate: discovery, the authorization code flow
//! with PKCE and a nonce, and every check of the ID token: signature against the provider's
//! published keys, issuer, audience, expiry, nonce). What a sign-in *does* is in `ops::sso`.
//!
//! A provider's metadata and keys are cached per replica for [`METADATA_TTL`]: a cache, not
//! state, since any replica rebuilds it from the issuer. Everything a sign-in in progress needs
//! is in the database.

use crate::error::{ApiError, ApiResult};
use countersign_core::error::ErrorCode;
use countersign_core::Millis;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreRevocableToken,
    CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, Client, ClientId, ClientSecret, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IdTokenFields, IssuerUrl, RedirectUrl, StandardErrorResponse, StandardTokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// How long a provider's discovered metadata and signing keys are used before they are fetched
/// again (a provider that rotates its keys is followed within this time).
pub const METADATA_TTL: Millis = 10 * 60 * 1000;
/// How long a person has at the provider before the sign-in they started is refused.
pub const LOGIN_TTL: Millis = 10 * 60 * 1000;
/// The cookie that binds a sign-in in progress to the browser that started it. `SameSite=Lax`:
/// the provider's redirect back is a cross-site navigation, on which a `Strict` cookie is not
/// sent. It grants nothing by itself.
pub const BROWSER_COOKIE: &str = "countersign_sso";

/// A provider as `countersign.toml` (`[[oidc_providers]]`) or `COUNTERSIGN_OIDC_PROVIDERS` (a
/// JSON array) names it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    /// Short, in URLs: `/sso/<id>/callback`. Letters, digits and `-`.
    pub id: String,
    /// What the sign-in button says: "Sign in with <display_name>".
    pub display_name: String,
    /// The issuer URL; `<issuer>/.well-known/openid-configuration` is read.
    pub issuer: String,
    pub client_id: String,
    /// The client secret, or `client_secret_file` naming a file that holds it.
    pub client_secret: Option<SecretString>,
    pub client_secret_file: Option<PathBuf>,
    /// Scopes to ask for besides `openid` [default: `email`, `profile`].
    pub scopes: Option<Vec<String>>,
    /// Create an account at an identity's first sign-in [default: false: an administrator or
    /// the person links it].
    #[serde(default)]
    pub create_accounts: bool,
    /// The claim a created account's username comes from [default: `preferred_username`, then
    /// `email`].
    pub username_claim: Option<String>,
    /// The ID token claim that lists the person's groups at the provider (`groups`, `roles`).
    pub groups_claim: Option<String>,
    /// Which provider group makes which Countersign group member.
    #[serde(default)]
    pub group_mappings: Vec<GroupMappingSettings>,
    /// Remove an account from a mapped group when its claim no longer names it [default: true].
    pub remove_from_mapped_groups: Option<bool>,
    /// Only identities whose verified e-mail address is in one of these domains may sign in.
    #[serde(default)]
    pub allowed_email_domains: Vec<String>,
}

/// `{ claim = "cs-approvers", group = "Approvers" }`: an account whose groups claim holds
/// `claim` belongs in the Countersign group `group` (its id, or its display name).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupMappingSettings {
    pub claim: String,
    pub group: String,
}

/// A checked provider.
#[derive(Debug, Clone)]
pub struct Provider {
    pub id: String,
    pub display_name: String,
    pub issuer: IssuerUrl,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub scopes: Vec<String>,
    pub create_accounts: bool,
    pub username_claim: Option<String>,
    pub groups_claim: Option<String>,
    pub group_mappings: Vec<GroupMappingSettings>,
    pub remove_from_mapped_groups: bool,
    pub allowed_email_domains: Vec<String>,
}

impl Provider {
    /// Checks a provider's settings; the error names the provider and what is wrong.
    pub fn from_settings(settings: &ProviderSettings) -> Result<Provider, String> {
        let id = settings.id.trim();
        let fail = |why: String| format!("oidc provider '{id}': {why}");
        if id.is_empty() || id.len() > 32 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(fail("id must be 1-32 letters, digits or '-' (it is part of the callback URL)".into()));
        }
        if settings.display_name.trim().is_empty() {
            return Err(fail("display_name is empty".into()));
        }
        let issuer = IssuerUrl::new(settings.issuer.trim().to_owned())
            .map_err(|e| fail(format!("issuer '{}' is not a URL: {e}", settings.issuer)))?;
        if settings.client_id.trim().is_empty() {
            return Err(fail("client_id is empty".into()));
        }
        let client_secret = match (&settings.client_secret, &settings.client_secret_file) {
            (Some(_), Some(_)) => return Err(fail("give client_secret or client_secret_file, not both".into())),
            (Some(secret), None) => Some(secret.clone()),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| fail(format!("client_secret_file: cannot read {}: {e}", path.display())))?;
                Some(SecretString::from(text.trim_end_matches(['\n', '\r']).to_owned()))
            }
            (None, None) => None,
        };
        if settings.group_mappings.iter().any(|m| m.claim.is_empty() || m.group.trim().is_empty()) {
            return Err(fail("every group mapping needs a claim and a group".into()));
        }
        if !settings.group_mappings.is_empty() && settings.groups_claim.as_deref().is_none_or(str::is_empty) {
            return Err(fail("group_mappings need groups_claim (the claim that lists the groups)".into()));
        }
        let scopes = settings.scopes.clone().unwrap_or_else(|| vec!["email".into(), "profile".into()]);
        Ok(Provider {
            id: id.to_owned(),
            display_name: settings.display_name.trim().to_owned(),
            issuer,
            client_id: settings.client_id.trim().to_owned(),
            client_secret,
            scopes: scopes.into_iter().filter(|s| s != "openid").collect(),
            create_accounts: settings.create_accounts,
            username_claim: settings.username_claim.clone(),
            groups_claim: settings.groups_claim.clone(),
            group_mappings: settings.group_mappings.clone(),
            remove_from_mapped_groups: settings.remove_from_mapped_groups.unwrap_or(true),
            allowed_email_domains: settings
                .allowed_email_domains
                .iter()
                .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
                .collect(),
        })
    }

    /// Checks every provider; ids must be unique.
    pub fn from_all(settings: &[ProviderSettings]) -> Result<Vec<Provider>, String> {
        let providers = settings.iter().map(Provider::from_settings).collect::<Result<Vec<_>, _>>()?;
        for (i, provider) in providers.iter().enumerate() {
            if providers[..i].iter().any(|other| other.id == provider.id) {
                return Err(format!("two oidc providers have the id '{}'", provider.id));
            }
        }
        Ok(providers)
    }

    /// The store's actor for what the provider's claims do (the mapping is automation): it
    /// creates accounts and proposes membership changes, and is named as itself wherever a
    /// change or request shows who made it. It is no account, so it never approves (R2).
    pub fn actor(&self) -> countersign_store::Actor {
        countersign_store::Actor {
            id: format!("sso:{}", self.id),
            name: format!("Single sign-on ({})", self.display_name),
            username: format!("sso:{}", self.id),
            kind: countersign_core::eligibility::AccountKind::Service,
            via: vec![],
        }
    }

    /// Whether `email` (verified by the provider) is in an allowed domain; true when no domains
    /// are configured.
    pub fn email_allowed(&self, email: Option<&str>, verified: Option<bool>) -> bool {
        if self.allowed_email_domains.is_empty() {
            return true;
        }
        let Some(email) = email else { return false };
        let Some((_, domain)) = email.rsplit_once('@') else { return false };
        verified != Some(false) && self.allowed_email_domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }
}

/// Every claim of the ID token besides the standard ones, so that the operator can name any
/// claim as the groups claim (`groups`, `roles`, a namespaced one).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OtherClaims(pub HashMap<String, serde_json::Value>);

impl AdditionalClaims for OtherClaims {}

impl OtherClaims {
    /// The strings of claim `name`: a list of strings, or one string.
    pub fn strings(&self, name: &str) -> Vec<String> {
        match self.0.get(name) {
            Some(serde_json::Value::Array(items)) => {
                items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
            }
            Some(serde_json::Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        }
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.0.get(name).and_then(|v| v.as_str()).map(str::to_owned)
    }
}

pub type IdFields = IdTokenFields<
    OtherClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
pub type TokenResponse = StandardTokenResponse<IdFields, CoreTokenType>;
/// The client for one provider: discovered authorization and token endpoints.
pub type OidcClient = Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The configured providers, with each one's client once discovered.
pub struct Providers {
    providers: Vec<Provider>,
    /// Talks to the providers: no redirects followed (the crate's advice against SSRF), bounded
    /// in time, rustls with ring.
    pub http: reqwest::Client,
    discovered: Mutex<HashMap<String, (Millis, Arc<OidcClient>)>>,
}

impl Providers {
    pub fn new(providers: Vec<Provider>) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Providers { providers, http, discovered: Mutex::default() }
    }

    pub fn all(&self) -> &[Provider] {
        &self.providers
    }

    /// The provider `id`, or 404.
    pub fn get(&self, id: &str) -> ApiResult<&Provider> {
        self.providers
            .iter()
            .find(|p| p.id == id)
            .ok_or_else(|| ApiError::not_found(format!("there is no single sign-on provider '{id}'")))
    }

    /// The provider's client, from its discovery document (cached for [`METADATA_TTL`]).
    /// `callback` is where the provider sends the person back.
    pub async fn client(&self, provider: &Provider, callback: &str, now: Millis) -> ApiResult<Arc<OidcClient>> {
        let mut discovered = self.discovered.lock().await;
        if let Some((at, client)) = discovered.get(&provider.id) {
            if now - *at < METADATA_TTL && now >= *at {
                return Ok(client.clone());
            }
        }
        let metadata =
            CoreProviderMetadata::discover_async(provider.issuer.clone(), &self.http).await.map_err(|e| {
                tracing::warn!(provider = %provider.id, error = %e, "single sign-on: discovery failed");
                ApiError::new(
                    ErrorCode::Unavailable,
                    format!("{} cannot be reached for sign-in just now. Try again later.", provider.display_name),
                )
            })?;
        let redirect = RedirectUrl::new(callback.to_owned())
            .map_err(|e| ApiError::new(ErrorCode::InternalError, format!("the callback URL is not a URL: {e}")))?;
        let client = OidcClient::from_provider_metadata(
            metadata,
            ClientId::new(provider.client_id.clone()),
            provider.client_secret.as_ref().map(|s| ClientSecret::new(s.expose_secret().to_owned())),
        )
        .set_redirect_uri(redirect);
        let client = Arc::new(client);
        discovered.insert(provider.id.clone(), (now, client.clone()));
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(id: &str) -> ProviderSettings {
        ProviderSettings {
            id: id.into(),
            display_name: "Example".into(),
            issuer: "https://login.example.com/tenant/v2.0".into(),
            client_id: "countersign".into(),
            client_secret: Some(SecretString::from("s3cret".to_owned())),
            client_secret_file: None,
            scopes: None,
            create_accounts: false,
            username_claim: None,
            groups_claim: None,
            group_mappings: vec![],
            remove_from_mapped_groups: None,
            allowed_email_domains: vec![],
        }
    }

    #[test]
    fn providers_are_checked_when_loaded() {
        let ok = Provider::from_settings(&settings("entra")).unwrap();
        assert_eq!(ok.scopes, ["email", "profile"]);
        assert!(ok.remove_from_mapped_groups);
        assert!(!format!("{ok:?}").contains("s3cret"), "the secret stays out of Debug");
        for (bad, why) in [
            (ProviderSettings { id: "a/b".into(), ..settings("x") }, "id must be"),
            (ProviderSettings { issuer: "not a url".into(), ..settings("x") }, "is not a URL"),
            (ProviderSettings { client_secret_file: Some("/nonexistent".into()), ..settings("x") }, "not both"),
            (
                ProviderSettings {
                    group_mappings: vec![GroupMappingSettings { claim: "a".into(), group: "b".into() }],
                    ..settings("x")
                },
                "groups_claim",
            ),
        ] {
            let refused = Provider::from_settings(&bad).unwrap_err();
            assert!(refused.contains(why) && refused.starts_with(&format!("oidc provider '{}'", bad.id)), "{refused}");
        }
        let twice = Provider::from_all(&[settings("a"), settings("a")]).unwrap_err();
        assert!(twice.contains("two oidc providers"), "{twice}");
    }

    #[test]
    fn allowed_domains_need_a_verified_address_in_them() {
        let provider = Provider::from_settings(&ProviderSettings {
            allowed_email_domains: vec!["@Example.com".into()],
            ..settings("x")
        })
        .unwrap();
        assert!(provider.email_allowed(Some("a@example.COM"), Some(true)));
        assert!(provider.email_allowed(Some("a@example.com"), None));
        assert!(!provider.email_allowed(Some("a@example.com"), Some(false)), "unverified");
        assert!(!provider.email_allowed(Some("a@example.com.evil.test"), Some(true)));
        assert!(!provider.email_allowed(Some("a@evil.test"), Some(true)));
        assert!(!provider.email_allowed(None, None));
        let open = Provider::from_settings(&settings("y")).unwrap();
        assert!(open.email_allowed(None, None));
    }

    #[test]
    fn a_groups_claim_is_a_list_or_one_string() {
        let claims: OtherClaims =
            serde_json::from_value(serde_json::json!({"groups": ["a", 1, "b"], "role": "x"})).unwrap();
        assert_eq!(claims.strings("groups"), ["a", "b"]);
        assert_eq!(claims.strings("role"), ["x"]);
        assert!(claims.strings("none").is_empty());
    }
}
