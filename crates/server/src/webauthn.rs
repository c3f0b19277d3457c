//! The relying party (issue 17): who passkeys are registered with, from `public_url`.
//!
//! webauthn-rs runs registration and sign-in. Step-up assertions (R21) are checked by
//! `countersign_core::step_up`, the same function `countersign audit verify` runs offline, so
//! what a decision was accepted with is exactly what verifies later.

use crate::error::{ApiError, ApiResult};
use countersign_core::error::ErrorCode;
use countersign_core::step_up::{CredentialPublicKey, RelyingParty};
use webauthn_rs::prelude::{COSEKeyType, ECDSACurve, EDDSACurve, Passkey, Url};
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// The relying party: webauthn-rs for the ceremonies it runs, and the id and origin that
/// step-up assertions are checked against.
pub struct Relying {
    /// `None` when `public_url` has no domain name (an IP address): browsers refuse WebAuthn
    /// there, so passkey registration and sign-in are off; step-up checks still work.
    webauthn: Option<Webauthn>,
    pub party: RelyingParty,
}

impl Relying {
    pub fn new(public_url: &str) -> Relying {
        let url = Url::parse(public_url).ok();
        let host = url.as_ref().and_then(|u| u.host_str()).unwrap_or("localhost").to_owned();
        let origin = url.as_ref().map(|u| u.origin().ascii_serialization()).unwrap_or_default();
        let webauthn = url.as_ref().and_then(|u| {
            let domain = u.domain()?;
            WebauthnBuilder::new(domain, u).ok()?.rp_name("Countersign").build().ok()
        });
        Relying { webauthn, party: RelyingParty { id: host, origins: vec![origin] } }
    }

    /// webauthn-rs, or 409 saying why passkeys are off (a setting of this server, not a fault).
    pub fn webauthn(&self) -> ApiResult<&Webauthn> {
        self.webauthn.as_ref().ok_or_else(|| {
            ApiError::new(
                ErrorCode::Conflict,
                "passkeys need the server's public URL (public_url) to have a domain name, not an IP address",
            )
        })
    }
}

/// A registered passkey's public key in `core::step_up`'s text form (ES256 or Ed25519, what
/// step-up assertions can be checked with offline).
pub fn public_key_text(passkey: &Passkey) -> ApiResult<String> {
    let key = match &passkey.get_public_key().key {
        COSEKeyType::EC_EC2(ec) if ec.curve == ECDSACurve::SECP256R1 => {
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(ec.x.as_ref());
            point.extend_from_slice(ec.y.as_ref());
            CredentialPublicKey::parse(&format!("es256:{}", hex::encode(point)))
        }
        COSEKeyType::EC_OKP(okp) if okp.curve == EDDSACurve::ED25519 => {
            CredentialPublicKey::parse(&format!("ed25519:{}", hex::encode(okp.x.as_ref())))
        }
        _ => {
            return Err(ApiError::validation(
                "this authenticator's key type is not supported: register a passkey that uses ES256 or Ed25519",
            ))
        }
    };
    key.map(|k| k.to_text()).map_err(|e| ApiError::validation(e.to_string()))
}
