//! **The MAA gate**: `Store::submit`, through which every change from every interface comes,
//! and R4's one open request per object.

use super::events::enqueue;
use super::lifecycle::expire_one;
use super::{applied_audit, request_audit, RequestRecord, REQUEST_COLUMNS};
use crate::approvers::{ensure_groups_exist, ensure_policy_satisfiable, insert_visibility};
use crate::audit::append;
use crate::auth::{insert_token, made_by, SERVICE_TOKEN_NAME};
use crate::control::controllers_now;
use crate::dependencies::freeze;
use crate::directory::Actor;
use crate::error::{broken_unique_rule, UniqueRule};
use crate::objects::{
    apply, check_proposed_names, ensure_no_escalation, gate_decision, load, proposed_policy, Proposal,
};
use crate::policies::all_policies;
use crate::rows::{int, text};
use crate::{new_id, Result, Store, StoreError, WriteTx};
use countersign_core::dependency::depends_on;
use countersign_core::gate::{Gate, Governance};
use countersign_core::notify::EventKind;
use countersign_core::permission::{may_propose, PermissionSet};
use countersign_core::policy_set::ensure_one_per_profile_type;
use countersign_core::profile::ResourceType;
use countersign_core::request::RequestStatus;
use countersign_core::state::ObjectState;
use countersign_core::{validate, DomainError, Millis};
use serde_json::json;
use sqlx::AnyConnection;

/// What `Store::submit` did with a proposal.
#[derive(Debug)]
pub enum Submitted {
    /// Not protected: applied at once; the object's new state.
    Applied { state: Option<ObjectState>, version: i64 },
    /// R1: held as an approval request.
    Held(Box<RequestRecord>),
}

/// The object's open request (R4), after expiring, inside `tx`, one that is already past its
/// time: R4 never counts a request that can no longer be acted on.
async fn live_open_request(
    tx: &mut WriteTx,
    resource_type: ResourceType,
    object_id: &str,
    now: Millis,
) -> Result<Option<String>> {
    let open = sqlx::query(
        "SELECT id, expires_at FROM requests WHERE resource_type = $1 AND object_id = $2 \
         AND status IN ('needsApproval', 'approved')",
    )
    .bind(resource_type.as_str())
    .bind(object_id)
    .fetch_all(tx.conn())
    .await?;
    let mut live = None;
    for row in &open {
        let id = text(row, "id")?;
        if int(row, "expires_at")? <= now {
            expire_one(tx, &id, now).await?;
        } else {
            live = Some(id);
        }
    }
    Ok(live)
}

async fn open_request_for(
    conn: &mut AnyConnection,
    resource_type: ResourceType,
    object_id: &str,
) -> Result<Option<String>> {
    let row = sqlx::query(
        "SELECT id FROM requests WHERE resource_type = $1 AND object_id = $2 AND status IN ('needsApproval', 'approved')",
    )
    .bind(resource_type.as_str())
    .bind(object_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(|r| text(r, "id")).transpose()
}

impl Store {
    /// **The MAA gate.** Every change from every interface comes through here. Inside one write
    /// transaction it re-reads the object (refusing a stale proposal), asks the core gate whether
    /// the change is protected, and either applies it with its audit entry or holds it as an
    /// approval request (R1, R4, R5, R9, R14).
    pub async fn submit(
        &self,
        actor: &Actor,
        permissions: &PermissionSet,
        proposal: Proposal,
        justification: Option<&str>,
        now: Millis,
    ) -> Result<Submitted> {
        // §4: the permission comes before MAA (403, not a request), checked here so that no
        // caller of the gate can skip it.
        may_propose(permissions, proposal.resource_type, proposal.operation).map_err(DomainError::from)?;
        let mut proposal = proposal;
        if proposal.secret.is_some() {
            // R16: a password set through this gate is the actor's, and carries on whoever
            // controls the credential the actor is using.
            proposal.secret_set_by = Some(actor.id.clone());
            proposal.secret_controllers = made_by(actor, &proposal.object_id);
        }
        proposal.check_shape()?;
        proposal.check_service_token()?;
        let mut tx = self.begin_write().await?;
        let current = load(&mut tx, proposal.resource_type, &proposal.object_id).await?;
        let current_version = current.as_ref().map(|c| c.version).unwrap_or(0);
        if current_version != proposal.before_version {
            return Err(StoreError::Stale(format!(
                "{} '{}' changed while you were editing it; reload it and try again",
                proposal.resource_type, proposal.object_name
            )));
        }
        ensure_no_escalation(&mut tx, &proposal, actor, permissions).await?;
        check_proposed_names(&mut tx, &proposal).await?;
        let policies = all_policies(tx.conn()).await?;
        if let Some(policy) = proposed_policy(&proposal)? {
            policy.validate()?;
            // Refused now, not held as a request that could never be applied.
            ensure_one_per_profile_type(&policies, &policy)?;
            ensure_groups_exist(&mut tx, &policy.approver_group_ids).await?;
        }
        let decision = gate_decision(&mut tx, &proposal, &policies).await?;
        Self::settle(tx, actor, proposal, decision, justification, now).await
    }

    /// Carries out the gate's decision on `proposal` in `tx`, and commits.
    async fn settle(
        mut tx: WriteTx,
        actor: &Actor,
        proposal: Proposal,
        decision: Gate,
        justification: Option<&str>,
        now: Millis,
    ) -> Result<Submitted> {
        match decision {
            Gate::Apply => {
                apply(&mut tx, &proposal, now).await?;
                append(&mut tx, applied_audit(&proposal, actor, None), now);
                if let Some(token_hash) = &proposal.service_token_hash {
                    let controllers = made_by(actor, &proposal.object_id);
                    insert_token(
                        &mut tx,
                        actor,
                        &proposal.object_id,
                        &controllers,
                        SERVICE_TOKEN_NAME,
                        token_hash,
                        None,
                        now,
                    )
                    .await?;
                }
                // As stored (normalised), with its new version; nothing after a delete.
                let (state, version) = match load(&mut tx, proposal.resource_type, &proposal.object_id).await? {
                    Some(applied) => (Some(applied.state), applied.version),
                    None => (None, 0),
                };
                tx.commit().await?;
                Ok(Submitted::Applied { state, version })
            }
            Gate::Hold(governance) => {
                let justification = validate::justification(justification)?;
                if let Some(policy) = proposed_policy(&proposal)? {
                    ensure_policy_satisfiable(&mut tx, actor, &policy, now).await?;
                }
                let record = Self::hold(&mut tx, actor, proposal, governance, justification, now).await?;
                enqueue(&mut tx, &record, record.status, EventKind::Created, None, now).await?;
                tx.commit().await?;
                Ok(Submitted::Held(Box::new(record)))
            }
        }
    }

    /// First start only: applies `plan` without the gate, in one transaction, and only while no
    /// access policy exists (so nothing is protected yet and nothing can be bypassed). Returns
    /// false, changing nothing, once any policy exists.
    pub async fn seed(&self, plan: Vec<Proposal>, now: Millis) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        tx.serialise_on_chain_head().await?;
        if !all_policies(tx.conn()).await?.is_empty() {
            return Ok(false);
        }
        let system = Actor {
            id: String::new(),
            name: "system".into(),
            username: "system".into(),
            kind: countersign_core::eligibility::AccountKind::Service,
            via: vec![],
        };
        for proposal in &plan {
            apply(&mut tx, proposal, now).await?;
            let mut entry = applied_audit(proposal, &system, None);
            entry.actor_id = None;
            entry.action = "seeded".into();
            append(&mut tx, entry, now);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn hold(
        tx: &mut WriteTx,
        actor: &Actor,
        proposal: Proposal,
        governance: Governance,
        justification: String,
        now: Millis,
    ) -> Result<RequestRecord> {
        let object = format!("{} '{}'", proposal.resource_type, proposal.object_name);
        if let Some(open) = live_open_request(tx, proposal.resource_type, &proposal.object_id, now).await? {
            return Err(StoreError::RequestOpen { request_id: open, object });
        }
        let (before, after) = (proposal.before_json(), proposal.after_json());
        // R17: what the approvers approve besides the object, frozen with the request.
        let dependencies = freeze(tx, depends_on(proposal.before.as_ref(), proposal.after.as_ref())).await?;
        let record = RequestRecord {
            id: new_id(),
            resource_type: proposal.resource_type,
            object_id: proposal.object_id,
            object_name: proposal.object_name,
            operation: proposal.operation,
            profile_type: governance.profile_type,
            policy_id: governance.policy_id,
            status: RequestStatus::NeedsApproval,
            justification,
            requested_by: actor.id.clone(),
            requested_by_name: actor.name.clone(),
            requested_by_username: actor.username.clone(),
            requested_at: now,
            last_modified_at: now,
            expires_at: now.saturating_add(governance.request_ttl_ms),
            ttl_ms: governance.request_ttl_ms,
            required_approvals: governance.required_approvals,
            completion: governance.completion,
            completed_at: None,
            failure_reason: None,
            before,
            before_version: proposal.before_version,
            after,
            approvals: vec![],
            dependencies,
            secret: proposal.secret,
            secret_controllers: proposal.secret_controllers,
            requester_controllers: controllers_now(tx.conn(), actor, now).await?,
        };
        let inserted = sqlx::query(&format!(
            "INSERT INTO requests ({REQUEST_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)"
        ))
        .bind(&record.id)
        .bind(record.resource_type.as_str())
        .bind(&record.object_id)
        .bind(&record.object_name)
        .bind(record.operation.as_str())
        .bind(record.profile_type.as_str())
        .bind(&record.policy_id)
        .bind(record.status.as_str())
        .bind(&record.justification)
        .bind(&record.requested_by)
        .bind(&record.requested_by_name)
        .bind(record.requested_at)
        .bind(record.last_modified_at)
        .bind(record.expires_at)
        .bind(record.ttl_ms)
        .bind(record.required_approvals)
        .bind(record.completion.as_str())
        .bind(record.completed_at)
        .bind(&record.failure_reason)
        .bind(record.before.to_string())
        .bind(record.before_version)
        .bind(record.after.to_string())
        .bind(&record.secret)
        .bind(record.secret.as_ref().map(|_| json!(record.secret_controllers).to_string()))
        .bind(json!(record.requester_controllers).to_string())
        .bind(json!(record.dependencies).to_string())
        .execute(tx.conn())
        .await;
        if let Err(e) = inserted {
            // R4 under a race on PostgreSQL: the partial unique index decides.
            if broken_unique_rule(&e) == Some(UniqueRule::OneOpenRequestPerObject) {
                let open =
                    open_request_for(tx.conn(), record.resource_type, &record.object_id).await?.unwrap_or_default();
                return Err(StoreError::RequestOpen { request_id: open, object });
            }
            return Err(e.into());
        }
        insert_visibility(tx.conn(), &record.id, &governance.approver_group_ids).await?;
        append(
            tx,
            request_audit(&record, "created", Some(actor)).details(json!({
                "resourceType": record.resource_type,
                "objectId": record.object_id,
                "objectName": record.object_name,
                "operation": record.operation,
                "justification": record.justification,
            })),
            now,
        );
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestBackend, TestDatabase};
    use crate::StoreOptions;
    use countersign_core::eligibility::AccountKind;
    use countersign_core::policy::Completion;
    use countersign_core::profile::ProfileType;
    use countersign_core::{DomainError, MILLIS_PER_DAY};

    const NOW: Millis = 1_800_000_000_000;

    fn admin() -> Actor {
        Actor {
            id: "00000000-0000-7000-8000-0000000000aa".into(),
            name: "admin".into(),
            username: "admin".into(),
            kind: AccountKind::Human,
            via: vec![],
        }
    }

    fn every_permission() -> PermissionSet {
        PermissionSet::new(countersign_core::permission::Permission::ALL.map(|p| p.as_str()))
    }

    fn new_account(name: &str, kind: &str) -> Proposal {
        Proposal {
            service_token_hash: Some(format!("hash-of-{name}")),
            ..Proposal::create(
                ResourceType::Account,
                ObjectState::from_json(
                    ResourceType::Account,
                    json!({"username": name, "displayName": name, "email": null, "kind": kind, "enabled": true}),
                )
                .unwrap(),
            )
        }
    }

    async fn store_on(database: &TestDatabase) -> Store {
        Store::connect(&database.url, StoreOptions::default()).await.expect("store")
    }

    crate::backend_tests!(an_applied_service_account_create_mints_exactly_one_token);
    async fn an_applied_service_account_create_mints_exactly_one_token(backend: TestBackend) {
        let database = TestDatabase::create(backend).await;
        let store = store_on(&database).await;
        let proposal = new_account("svc", "service");
        let id = proposal.object_id.clone();
        let submitted = store.submit(&admin(), &every_permission(), proposal, None, NOW).await.expect("submit");
        assert!(matches!(submitted, Submitted::Applied { .. }), "{backend:?}: a new account is not protected");
        let minted = store.tokens_of(&id).await.expect("tokens");
        assert_eq!(minted.len(), 1, "{backend:?}");
        assert_eq!(minted[0].display_name, SERVICE_TOKEN_NAME);
        let owner = store.account_for_token("hash-of-svc", None, NOW).await.expect("look-up");
        assert_eq!(owner.map(|access| access.account.id), Some(id), "{backend:?}");
        store.close().await;
        database.drop_database().await;
    }

    crate::backend_tests!(a_held_service_account_create_mints_no_token);
    async fn a_held_service_account_create_mints_no_token(backend: TestBackend) {
        let database = TestDatabase::create(backend).await;
        let store = store_on(&database).await;
        let proposal = new_account("svc", "service");
        let id = proposal.object_id.clone();
        // No rule holds an account create today, so the gate's answer is given here.
        let governance = Governance {
            profile_type: ProfileType::OperationApprovalPolicy,
            policy_id: None,
            approver_group_ids: vec![],
            required_approvals: 1,
            completion: Completion::Requester,
            request_ttl_ms: MILLIS_PER_DAY,
        };
        let tx = store.begin_write().await.expect("transaction");
        let submitted =
            Store::settle(tx, &admin(), proposal, Gate::Hold(governance), Some("j"), NOW).await.expect("held");
        let Submitted::Held(request) = submitted else { panic!("{backend:?}: the create is held") };
        assert_eq!(request.proposal().unwrap().service_token_hash, None, "a request never keeps the token");
        assert!(store.tokens_of(&id).await.expect("tokens").is_empty(), "{backend:?}");
        assert!(store.account_for_token("hash-of-svc", None, NOW).await.expect("look-up").is_none(), "{backend:?}");
        store.close().await;
        database.drop_database().await;
    }

    #[tokio::test]
    async fn a_token_comes_only_with_the_create_of_a_service_account() {
        let database = TestDatabase::create(crate::testing::TestBackend::Sqlite).await;
        let store = store_on(&database).await;
        let refused = store.submit(&admin(), &every_permission(), new_account("alice", "human"), None, NOW).await;
        assert!(matches!(refused, Err(StoreError::Domain(DomainError::Validation(_)))), "{refused:?}");
        assert!(store.account_by_username("alice").await.expect("look-up").is_none());
        store.close().await;
    }
}
