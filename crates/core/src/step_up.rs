//! **R21 Step-up on every decision.** A policy with `stepUp: "passkey"` accepts an approve or
//! reject only with a fresh, user-verified WebAuthn assertion whose challenge is derived from the
//! request's `changeDigest`. The assertion is stored with the approval, so every approval is a
//! signature by the approver's authenticator over exactly what was approved.
//!
//! This module is the part of R21 that needs no I/O: the challenge a decision must sign, and the
//! check of a stored assertion against a registered public key, which the server runs when a
//! decision arrives and `countersign audit verify` runs again offline. The server adds what needs
//! state: that the nonce was issued by it, is unexpired and is used once.
//!
//! The challenge binds the request, the digest, the decision (an assertion made to approve cannot
//! reject, and the reverse) and a server nonce (so each ceremony is fresh):
//! `SHA-256("countersign-step-up/1" ‖ for each of request id, changeDigest, decision, nonce: its
//! length as 8 bytes big-endian ‖ its bytes)`; the lengths keep one part from shifting into the next.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

crate::named_enum! {
    /// What a policy asks of each decision (R21).
    pub enum StepUp: "step-up requirement" {
        /// A fresh, user-verified passkey assertion over the change digest.
        Passkey = "passkey",
        /// A signed-in session or a token is enough (the behaviour before R21).
        None = "none",
    }
}

impl StepUp {
    /// New policies ask for a passkey; policies saved before R21 keep their behaviour, which is
    /// `none` (their stored row has no value).
    pub const FOR_NEW_POLICIES: StepUp = StepUp::Passkey;

    /// What a stored policy or state that says nothing asks for: its behaviour before R21.
    pub const fn before_r21() -> StepUp {
        StepUp::None
    }

    pub fn is_none(&self) -> bool {
        *self == StepUp::None
    }
}

/// The decision an assertion signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        }
    }
}

/// What an assertion must be about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUpContext<'a> {
    pub request_id: &'a str,
    pub change_digest: &'a str,
    pub decision: Decision,
    /// The server's nonce for this ceremony, as issued (opaque text, at least 16 random bytes).
    pub nonce: &'a str,
}

/// The WebAuthn challenge for a decision (R21): 32 bytes the authenticator signs through
/// `clientDataJSON`.
pub fn step_up_challenge(context: &StepUpContext<'_>) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(b"countersign-step-up/1");
    for part in [context.request_id, context.change_digest, context.decision.as_str(), context.nonce] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize().into()
}

/// The challenge as the browser receives it and `clientDataJSON` carries it: base64url, unpadded.
pub fn step_up_challenge_text(context: &StepUpContext<'_>) -> String {
    URL_SAFE_NO_PAD.encode(step_up_challenge(context))
}

/// A registered passkey's public key, in the form an assertion is checked against offline.
/// Text form: `es256:<hex of the SEC1 uncompressed point>` or `ed25519:<hex of 32 bytes>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialPublicKey {
    /// ECDSA P-256 with SHA-256 (COSE alg -7), what nearly every authenticator uses.
    Es256(Vec<u8>),
    /// Ed25519 (COSE alg -8).
    Ed25519([u8; 32]),
}

impl CredentialPublicKey {
    pub fn parse(text: &str) -> Result<Self, StepUpError> {
        let bad = || StepUpError::PublicKey(format!("{text:.40} is not es256:<hex> or ed25519:<hex>"));
        let (alg, key) = text.split_once(':').ok_or_else(bad)?;
        let bytes = hex::decode(key).map_err(|_| bad())?;
        match alg {
            "es256" => {
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&bytes)
                    .map_err(|_| StepUpError::PublicKey("not a P-256 point".into()))?;
                Ok(CredentialPublicKey::Es256(bytes))
            }
            "ed25519" => Ok(CredentialPublicKey::Ed25519(bytes.try_into().map_err(|_| bad())?)),
            _ => Err(bad()),
        }
    }

    pub fn to_text(&self) -> String {
        match self {
            CredentialPublicKey::Es256(point) => format!("es256:{}", hex::encode(point)),
            CredentialPublicKey::Ed25519(key) => format!("ed25519:{}", hex::encode(key)),
        }
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), StepUpError> {
        let invalid = || StepUpError::Signature;
        match self {
            CredentialPublicKey::Es256(point) => {
                use p256::ecdsa::signature::Verifier;
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| invalid())?;
                // WebAuthn ES256 signatures are ASN.1 DER.
                let signature = p256::ecdsa::Signature::from_der(signature).map_err(|_| invalid())?;
                key.verify(message, &signature).map_err(|_| invalid())
            }
            CredentialPublicKey::Ed25519(key) => {
                let key = ed25519_dalek::VerifyingKey::from_bytes(key).map_err(|_| invalid())?;
                let signature = ed25519_dalek::Signature::from_slice(signature).map_err(|_| invalid())?;
                key.verify_strict(message, &signature).map_err(|_| invalid())
            }
        }
    }
}

/// A WebAuthn assertion as the browser returns it (each field base64url, as
/// `PublicKeyCredential.toJSON()` gives them) and as it is stored with the approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepUpAssertion {
    pub credential_id: String,
    pub authenticator_data: String,
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    pub signature: String,
}

/// Where assertions may come from: the relying party id and the allowed origins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    pub id: String,
    pub origins: Vec<String>,
}

/// What a checked assertion tells: the authenticator's signature counter, which the server
/// compares with the one it saw last (a counter that goes back is a cloned authenticator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedAssertion {
    pub sign_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepUpError {
    #[error("the assertion is malformed: {0}")]
    Malformed(String),
    #[error("the assertion is not a WebAuthn sign-in assertion (type {0:?})")]
    WrongType(String),
    #[error("the assertion was made for another request, digest or decision")]
    WrongChallenge,
    #[error("the assertion was made on another site ({0:?})")]
    WrongOrigin(String),
    #[error("the assertion was made for another relying party")]
    WrongRelyingParty,
    #[error("the authenticator did not verify the user (PIN or biometric)")]
    NotUserVerified,
    #[error("the signature does not verify under the passkey's public key")]
    Signature,
    #[error("the passkey's public key is unusable: {0}")]
    PublicKey(String),
}

impl StepUpError {
    /// A stable code for problem+json and the audit report.
    pub fn code(&self) -> &'static str {
        match self {
            StepUpError::Malformed(_) => "step_up_malformed",
            StepUpError::WrongType(_) => "step_up_wrong_type",
            StepUpError::WrongChallenge => "step_up_wrong_challenge",
            StepUpError::WrongOrigin(_) => "step_up_wrong_origin",
            StepUpError::WrongRelyingParty => "step_up_wrong_relying_party",
            StepUpError::NotUserVerified => "step_up_not_user_verified",
            StepUpError::Signature => "step_up_bad_signature",
            StepUpError::PublicKey(_) => "step_up_bad_public_key",
        }
    }
}

#[derive(Deserialize)]
struct ClientData {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
}

/// Authenticator data flags (WebAuthn §6.1): user present and user verified.
const FLAG_USER_PRESENT: u8 = 0x01;
const FLAG_USER_VERIFIED: u8 = 0x04;

/// R21: checks that `assertion` is a user-verified signature by `public_key`, made on one of the
/// relying party's origins, over the challenge of `context`. The same function decides a live
/// decision and re-checks a stored one offline, so what was accepted is what verifies.
pub fn check_step_up_assertion(
    assertion: &StepUpAssertion,
    public_key: &CredentialPublicKey,
    relying_party: &RelyingParty,
    context: &StepUpContext<'_>,
) -> Result<CheckedAssertion, StepUpError> {
    let decode = |field: &str, text: &str| {
        URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| StepUpError::Malformed(format!("{field} is not base64url")))
    };
    let authenticator_data = decode("authenticatorData", &assertion.authenticator_data)?;
    let client_data_bytes = decode("clientDataJSON", &assertion.client_data_json)?;
    let signature = decode("signature", &assertion.signature)?;

    let client_data: ClientData = serde_json::from_slice(&client_data_bytes)
        .map_err(|_| StepUpError::Malformed("clientDataJSON is not the expected JSON".into()))?;
    if client_data.kind != "webauthn.get" {
        return Err(StepUpError::WrongType(client_data.kind));
    }
    if client_data.challenge != step_up_challenge_text(context) {
        return Err(StepUpError::WrongChallenge);
    }
    if !relying_party.origins.iter().any(|origin| origin == &client_data.origin) {
        return Err(StepUpError::WrongOrigin(client_data.origin));
    }

    // rpIdHash (32) ‖ flags (1) ‖ signCount (4) ‖ extensions…
    if authenticator_data.len() < 37 {
        return Err(StepUpError::Malformed("authenticatorData is too short".into()));
    }
    let rp_id_hash: [u8; 32] = Sha256::digest(relying_party.id.as_bytes()).into();
    if authenticator_data[..32] != rp_id_hash {
        return Err(StepUpError::WrongRelyingParty);
    }
    let flags = authenticator_data[32];
    if flags & FLAG_USER_PRESENT == 0 || flags & FLAG_USER_VERIFIED == 0 {
        return Err(StepUpError::NotUserVerified);
    }
    let sign_count = u32::from_be_bytes([
        authenticator_data[33],
        authenticator_data[34],
        authenticator_data[35],
        authenticator_data[36],
    ]);

    let mut signed = authenticator_data;
    signed.extend_from_slice(&Sha256::digest(&client_data_bytes));
    public_key.verify(&signed, &signature)?;
    Ok(CheckedAssertion { sign_count })
}

#[cfg(test)]
mod tests;
