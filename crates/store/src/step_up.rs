//! R21, the part that needs state: a decision's step-up nonce is issued by the server, expires,
//! and is used once (consumed in the decision's own transaction); the assertion is checked with
//! `countersign_core::step_up` against the approver's live passkey, stored with the approval,
//! and checked again, offline, by [`Store::verify_step_ups`].

use crate::passkeys::take_ceremony_in;
use crate::policies::{all_policies, policy_by_id};
use crate::rows::{int, opt_text, text};
use crate::{Result, Store, StoreError, WriteTx};
use countersign_core::request::Decision;
use countersign_core::step_up::{
    check_step_up_assertion, CredentialPublicKey, Decision as SignedDecision, RelyingParty, StepUp, StepUpAssertion,
    StepUpContext,
};
use countersign_core::{DomainError, Millis};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The kind of a step-up ceremony in `webauthn_ceremonies`; its id is the nonce.
pub const STEP_UP: &str = "stepUp";

/// What a step-up ceremony was begun for (stored as its state).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepUpIntent {
    pub request_id: String,
    pub decision: String,
}

/// A decision's step-up, as the approver sends it.
#[derive(Debug, Clone)]
pub struct StepUpInput<'a> {
    pub nonce: &'a str,
    pub assertion: &'a StepUpAssertion,
    pub relying_party: &'a RelyingParty,
}

/// What is stored with the approval (`approvals.step_up`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredStepUp {
    pub passkey_id: String,
    pub nonce: String,
    pub assertion: StepUpAssertion,
}

/// SHA-256 (hex) of the stored assertion's canonical JSON, recorded in the audit entry.
pub(crate) fn assertion_hash(assertion: &StepUpAssertion) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(json!(assertion).to_string().as_bytes()))
}

pub(crate) fn signed(decision: Decision) -> SignedDecision {
    match decision {
        Decision::Approve => SignedDecision::Approve,
        Decision::Reject => SignedDecision::Reject,
    }
}

fn rejected(reason: impl Into<String>) -> StoreError {
    DomainError::StepUpRejected(reason.into()).into()
}

/// R21: what the request's decisions must carry: its policy's `stepUp`. A request governed by
/// no policy row (an R9 change while no `operationApprovalPolicy` policy exists, or a policy
/// since deleted) asks for a passkey if any policy in force does: the strictest setting.
pub(crate) async fn required_step_up(tx: &mut WriteTx, policy_id: Option<&str>) -> Result<StepUp> {
    if let Some(id) = policy_id {
        if let Some((policy, _)) = policy_by_id(tx.conn(), id).await? {
            return Ok(policy.step_up);
        }
    }
    let strictest = all_policies(tx.conn()).await?.iter().any(|p| p.step_up == StepUp::Passkey);
    Ok(if strictest { StepUp::Passkey } else { StepUp::None })
}

/// Checks a decision's step-up in the decision's transaction: the nonce is this approver's,
/// for this request and decision, unexpired and unused (it is consumed here); the assertion is
/// user-verified, signed by one of the approver's live passkeys, over the challenge of this
/// request, its digest as stored now, the decision and the nonce. Returns what to store.
pub(crate) async fn check_step_up(
    tx: &mut WriteTx,
    approver_id: &str,
    request_id: &str,
    digest: &str,
    decision: Decision,
    input: &StepUpInput<'_>,
    now: Millis,
) -> Result<StoredStepUp> {
    let ceremony = take_ceremony_in(tx, input.nonce, STEP_UP, now).await?.ok_or_else(|| {
        rejected("this confirmation was already used, has expired, or was never issued; confirm again")
    })?;
    if ceremony.account_id.as_deref() != Some(approver_id) {
        return Err(rejected("this confirmation was issued to another account"));
    }
    let intent: StepUpIntent = serde_json::from_str(&ceremony.state)
        .map_err(|e| StoreError::Corrupt(format!("a step-up ceremony's state: {e}")))?;
    if intent.request_id != request_id {
        return Err(rejected("this confirmation was made for another request"));
    }
    if intent.decision != signed(decision).as_str() {
        return Err(rejected(format!(
            "this confirmation was made to {}, not to {}",
            intent.decision,
            signed(decision).as_str()
        )));
    }
    let row = sqlx::query(
        "SELECT id, public_key, sign_count FROM passkeys WHERE credential_id = $1 AND account_id = $2 AND removed_at IS NULL",
    )
    .bind(&input.assertion.credential_id)
    .bind(approver_id)
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(|| rejected("the assertion was not made with one of your passkeys"))?;
    let passkey_id = text(&row, "id")?;
    let key = CredentialPublicKey::parse(&text(&row, "public_key")?).map_err(|e| rejected(e.to_string()))?;
    let context = StepUpContext { request_id, change_digest: digest, decision: signed(decision), nonce: input.nonce };
    let checked = check_step_up_assertion(input.assertion, &key, input.relying_party, &context)
        .map_err(|e| rejected(format!("{e} ({})", e.code())))?;
    // A counter that does not move forward is a cloned authenticator (WebAuthn §6.1.1);
    // authenticators that keep none always say 0.
    let stored = int(&row, "sign_count")?;
    let count = i64::from(checked.sign_count);
    if (count != 0 || stored != 0) && count <= stored {
        return Err(rejected("the authenticator's signature counter went back: it may have been cloned"));
    }
    sqlx::query("UPDATE passkeys SET sign_count = $1, last_used_at = $2 WHERE id = $3")
        .bind(count)
        .bind(now)
        .bind(&passkey_id)
        .execute(tx.conn())
        .await?;
    Ok(StoredStepUp { passkey_id, nonce: input.nonce.to_owned(), assertion: input.assertion.clone() })
}

/// One stored step-up that does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepUpFinding {
    pub request_id: String,
    pub approver_id: String,
    pub reason: String,
}

/// What [`Store::verify_step_ups`] found.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepUpReport {
    pub checked: u64,
    pub failed: Vec<StepUpFinding>,
}

impl Store {
    /// R21: what a decision on a request governed by `policy_id` must carry (see
    /// [`required_step_up`]).
    pub async fn step_up_of(&self, policy_id: Option<&str>) -> Result<StepUp> {
        let mut tx = self.begin_write().await?;
        let step_up = required_step_up(&mut tx, policy_id).await?;
        tx.rollback().await?;
        Ok(step_up)
    }

    /// Begins a step-up for a decision: the nonce (the ceremony's id) the challenge is derived
    /// from, usable once by `account_id` until `expires_at`.
    pub async fn begin_step_up(
        &self,
        nonce: &str,
        account_id: &str,
        intent: &StepUpIntent,
        now: Millis,
        expires_at: Millis,
    ) -> Result<()> {
        let state = json!(intent).to_string();
        self.begin_ceremony(nonce, STEP_UP, Some(account_id), None, &state, now, expires_at).await?;
        Ok(())
    }

    /// R21, offline: every assertion stored with an approval is checked again against the
    /// public key of the passkey that made it (removed passkeys included), over the challenge
    /// of the request, the digest the approval recorded, its decision and its nonce. Against
    /// someone who can write the database, the keyed audit log must attest both: the decision's
    /// entry names the passkey and the assertion's hash, and the passkey's `passkeyAdded` entry
    /// its public key (`verify_audit` checks that those entries are intact).
    pub async fn verify_step_ups(&self, relying_party: &RelyingParty) -> Result<StepUpReport> {
        let rows = sqlx::query(
            "SELECT a.request_id AS request_id, a.approver_id AS approver_id, a.decision AS decision, \
             a.change_digest AS change_digest, a.step_up AS step_up, p.public_key AS public_key, \
             p.account_id AS owner FROM approvals a LEFT JOIN passkeys p ON p.id = a.passkey_id \
             WHERE a.step_up IS NOT NULL ORDER BY a.at, a.request_id",
        )
        .fetch_all(self.pool())
        .await?;
        let mut report = StepUpReport::default();
        for row in &rows {
            report.checked += 1;
            let request_id = text(row, "request_id")?;
            let approver_id = text(row, "approver_id")?;
            let mut reason = verify_one(row, &request_id, &approver_id, relying_party).err();
            if reason.is_none() {
                reason = self.attested(row, &request_id, &approver_id).await?.err();
            }
            if let Some(reason) = reason {
                report.failed.push(StepUpFinding { request_id, approver_id, reason });
            }
        }
        Ok(report)
    }
}

impl Store {
    /// Whether the keyed audit log attests a stored step-up: the decision's entry by the
    /// approver names this passkey and this assertion's hash, and the passkey's registration
    /// entry names this public key.
    async fn attested(
        &self,
        row: &crate::Row,
        request_id: &str,
        approver_id: &str,
    ) -> Result<std::result::Result<(), String>> {
        let Ok(stored) = serde_json::from_str::<StoredStepUp>(&text(row, "step_up")?) else {
            return Ok(Err("the stored assertion is unreadable".into()));
        };
        let filter = |action: Option<&str>, target: &str| crate::AuditFilter {
            action: action.map(str::to_owned),
            target_id: Some(target.to_owned()),
            limit: 500,
            ..crate::AuditFilter::default()
        };
        let hash = assertion_hash(&stored.assertion);
        let decisions = self.audit_entries(&filter(None, request_id)).await?;
        let decided = decisions.iter().any(|entry| {
            let details: serde_json::Value = serde_json::from_str(&entry.details).unwrap_or_default();
            entry.actor_id.as_deref() == Some(approver_id)
                && details["stepUp"]["passkeyId"] == stored.passkey_id.as_str()
                && details["stepUp"]["assertionSha256"] == hash.as_str()
        });
        if !decided {
            return Ok(Err("the audit log does not record this assertion with the decision".into()));
        }
        let key = opt_text(row, "public_key")?.unwrap_or_default();
        let registered = self.audit_entries(&filter(Some("passkeyAdded"), approver_id)).await?;
        let recorded = registered.iter().any(|entry| {
            let details: serde_json::Value = serde_json::from_str(&entry.details).unwrap_or_default();
            details["passkeyId"] == stored.passkey_id.as_str() && details["publicKey"] == key.as_str()
        });
        if !recorded {
            return Ok(
                Err("the passkey's public key is not the one the audit log recorded at its registration".into()),
            );
        }
        Ok(Ok(()))
    }
}

fn verify_one(
    row: &crate::Row,
    request_id: &str,
    approver_id: &str,
    relying_party: &RelyingParty,
) -> std::result::Result<(), String> {
    let stored: StoredStepUp = serde_json::from_str(&text(row, "step_up").map_err(|e| e.to_string())?)
        .map_err(|e| format!("the stored assertion is unreadable: {e}"))?;
    let key = opt_text(row, "public_key").map_err(|e| e.to_string())?.ok_or("its passkey is not in the database")?;
    if opt_text(row, "owner").map_err(|e| e.to_string())?.as_deref() != Some(approver_id) {
        return Err("its passkey belongs to another account".into());
    }
    let key = CredentialPublicKey::parse(&key).map_err(|e| e.to_string())?;
    let digest = opt_text(row, "change_digest").map_err(|e| e.to_string())?.ok_or("the approval has no digest")?;
    let decision: Decision = text(row, "decision").map_err(|e| e.to_string())?.parse()?;
    let context =
        StepUpContext { request_id, change_digest: &digest, decision: signed(decision), nonce: &stored.nonce };
    check_step_up_assertion(&stored.assertion, &key, relying_party, &context)
        .map(|_| ())
        .map_err(|e| format!("{e} ({})", e.code()))
}
