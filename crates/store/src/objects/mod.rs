//! The objects a change can touch. Each resource type has a module with the same three
//! functions: `load` (its row as the JSON state approvers see, R12), `apply` (a proposed state
//! written to its rows) and `gate` (what the core gate is told about a change to it). This
//! module holds what they share and dispatches to them by resource type.

mod access_policy;
mod account;
mod device;
mod document;
mod group;
mod notification_channel;
mod role;
mod role_assignment;
#[cfg(test)]
mod tests;

pub(crate) use access_policy::proposed_policy;
pub(crate) use account::{check_proposed_names, ensure_no_escalation};
pub use notification_channel::redact_webhook_url;

use crate::rows::{int, text};
use crate::{Result, StoreError, WriteTx};
use countersign_core::eligibility::AccountKind;
use countersign_core::gate::Gate;
use countersign_core::policy::AccessPolicy;
use countersign_core::profile::{Operation, ResourceType};
use countersign_core::state::ObjectState;
use countersign_core::{DomainError, Millis};
use serde_json::Value;

/// A change as proposed: the object's state and version as the proposer saw them, and the
/// state they want. The store re-reads the object under lock and refuses the proposal if the
/// version moved (optimistic concurrency), so `before` is exactly what approvers are shown.
#[derive(Debug, Clone)]
pub struct Proposal {
    pub resource_type: ResourceType,
    pub operation: Operation,
    pub object_id: String,
    pub object_name: String,
    /// `None` for a create.
    pub before: Option<ObjectState>,
    /// 0 for a create.
    pub before_version: i64,
    /// `None` for a delete.
    pub after: Option<ObjectState>,
    /// A new password hash, never shown to approvers; `after` says only that it changes.
    pub secret: Option<String>,
    /// R16: who sets the password in `secret` (`None`: the system, at first start), and the
    /// accounts that will control it. `Store::submit` fills both from its actor, whatever the
    /// caller put here.
    pub secret_set_by: Option<String>,
    pub secret_controllers: Vec<String>,
    /// For the create of a service account only: the hash of its first API token, written with
    /// the account when the create is applied, and dropped when it is held.
    pub service_token_hash: Option<String>,
}

impl Proposal {
    /// A change to an existing object, named after it (its name, display name or username).
    /// `after` is `None` for a delete.
    pub fn change(
        resource_type: ResourceType,
        operation: Operation,
        object_id: String,
        before: ObjectState,
        before_version: i64,
        after: Option<ObjectState>,
    ) -> Proposal {
        Proposal {
            resource_type,
            operation,
            object_id,
            object_name: before.name().to_owned(),
            before: Some(before),
            before_version,
            after,
            secret: None,
            secret_set_by: None,
            secret_controllers: vec![],
            service_token_hash: None,
        }
    }

    /// A new object of `resource_type` with a fresh time-ordered id, named after its state.
    pub fn create(resource_type: ResourceType, after: ObjectState) -> Proposal {
        Proposal {
            resource_type,
            operation: Operation::Create,
            object_id: crate::new_id(),
            object_name: after.name().to_owned(),
            before: None,
            before_version: 0,
            after: Some(after),
            secret: None,
            secret_set_by: None,
            secret_controllers: vec![],
            service_token_hash: None,
        }
    }

    /// The state before, as JSON (`null` for a create): what approvers see and requests keep.
    pub fn before_json(&self) -> Value {
        self.before.as_ref().map_or(Value::Null, ObjectState::to_json)
    }

    /// The proposed state, as JSON (`null` for a delete).
    pub fn after_json(&self) -> Value {
        self.after.as_ref().map_or(Value::Null, ObjectState::to_json)
    }

    /// A create carries only an after, a delete only a before, anything else both; each is a
    /// state of the proposal's resource type.
    pub(crate) fn check_shape(&self) -> Result<()> {
        let expected = match self.operation {
            Operation::Create => (false, true),
            Operation::Delete => (true, false),
            _ => (true, true),
        };
        let wrong_type = [&self.before, &self.after].into_iter().flatten().any(|s| !s.is_of(self.resource_type));
        if (self.before.is_some(), self.after.is_some()) != expected || wrong_type {
            return Err(DomainError::Validation(format!(
                "a {} of a {} does not carry these states",
                self.operation, self.resource_type
            ))
            .into());
        }
        Ok(())
    }

    fn creates_service_account(&self) -> bool {
        matches!(&self.after, Some(ObjectState::Account(a)) if a.kind == AccountKind::Service)
            && self.operation == Operation::Create
    }

    /// The first token may come only with the create of a service account.
    pub(crate) fn check_service_token(&self) -> Result<()> {
        if self.service_token_hash.is_some() && !self.creates_service_account() {
            return Err(
                DomainError::Validation("only a new service account is given a token as it is created".into()).into()
            );
        }
        Ok(())
    }

    /// A proposal that `apply` reached with no state after it, or a state of another type,
    /// was built wrongly; `check_shape` refuses those before anything is written.
    fn malformed(&self) -> StoreError {
        StoreError::Corrupt(format!(
            "a {} of {} '{}' without its state",
            self.operation, self.resource_type, self.object_name
        ))
    }
}

/// A state kept as JSON in a request row (`null` for none), read back as its type.
pub(crate) fn stored_state(resource_type: ResourceType, value: &Value) -> Result<Option<ObjectState>> {
    match value {
        Value::Null => Ok(None),
        value => ObjectState::from_json(resource_type, value.clone())
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("a stored request's state: {e}"))),
    }
}

/// An object's current state as approvers see it.
#[derive(Debug, Clone)]
pub(crate) struct Current {
    pub state: ObjectState,
    pub version: i64,
}

/// An app, script, policy, device category or device as listed.
#[derive(Debug, Clone)]
pub struct ResourceRecord {
    pub id: String,
    pub resource_type: ResourceType,
    pub state: ObjectState,
    pub version: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// One page of a resource list.
#[derive(Debug, Clone)]
pub struct ResourceList {
    pub records: Vec<ResourceRecord>,
    /// When the page is full: the id the next page starts after.
    pub next_after: Option<String>,
}

fn resource_row(resource_type: ResourceType, row: &crate::Row) -> Result<ResourceRecord> {
    let state = match resource_type {
        ResourceType::Device => device::state_of_row(row)?,
        _ => document::state_of_row(resource_type, row)?,
    };
    Ok(ResourceRecord {
        id: text(row, "id")?,
        resource_type,
        state,
        version: int(row, "version")?,
        created_at: int(row, "created_at")?,
        updated_at: int(row, "updated_at")?,
    })
}

impl crate::Store {
    /// Live resources of one type in id order, after `after_id`. A row that cannot be read is
    /// reported and passed over, as request lists do (issue 15).
    pub async fn resources(
        &self,
        resource_type: ResourceType,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<ResourceList> {
        let limit = limit.clamp(1, 500);
        let rows = sqlx::query(
            "SELECT id, name, description, document, assigned_group_ids, version, created_at, updated_at FROM resources \
             WHERE type = $1 AND deleted_at IS NULL AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(resource_type.as_str())
        .bind(after_id.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let next_after = match rows.last() {
            Some(last) if i64::try_from(rows.len()).unwrap_or(i64::MAX) >= limit => Some(text(last, "id")?),
            _ => None,
        };
        let records = rows
            .iter()
            .filter_map(|row| {
                resource_row(resource_type, row)
                    .inspect_err(|e| {
                        let id = text(row, "id").unwrap_or_default();
                        tracing::warn!(object = %id, error = %e, "a stored object cannot be read; lists pass over it");
                    })
                    .ok()
            })
            .collect();
        Ok(ResourceList { records, next_after })
    }

    /// The current state and version of an object, as a proposal's `before`.
    pub async fn object_state(&self, resource_type: ResourceType, id: &str) -> Result<Option<(ObjectState, i64)>> {
        // Outside a transaction: `submit` reads the object again under lock and refuses the
        // proposal if its version moved, so this read needs no snapshot of its own.
        let mut tx = self.reader().await?;
        let current = load(&mut tx, resource_type, id).await?;
        tx.rollback().await?;
        Ok(current.map(|c| (c.state, c.version)))
    }
}

/// The current state of an object, or `None` if it does not exist.
pub(crate) async fn load(tx: &mut WriteTx, resource_type: ResourceType, id: &str) -> Result<Option<Current>> {
    match resource_type {
        ResourceType::App
        | ResourceType::Script
        | ResourceType::CompliancePolicy
        | ResourceType::ConfigurationPolicy
        | ResourceType::DeviceCategory => document::load(tx, resource_type, id).await,
        ResourceType::Device => device::load(tx, id).await,
        ResourceType::Role => role::load(tx, id).await,
        ResourceType::RoleAssignment => role_assignment::load(tx, id).await,
        ResourceType::Group => group::load(tx, id).await,
        ResourceType::Account => account::load(tx, id).await,
        ResourceType::AccessPolicy => access_policy::load(tx, id).await,
        ResourceType::NotificationChannel => notification_channel::load(tx, id).await,
    }
}

/// Decides which rule-relevant facts apply to a proposal, for the gate.
pub(crate) async fn gate_decision(tx: &mut WriteTx, proposal: &Proposal, policies: &[AccessPolicy]) -> Result<Gate> {
    match proposal.resource_type {
        ResourceType::App
        | ResourceType::Script
        | ResourceType::CompliancePolicy
        | ResourceType::ConfigurationPolicy
        | ResourceType::DeviceCategory => document::gate(tx, proposal, policies).await,
        ResourceType::Device => device::gate(tx, proposal, policies).await,
        ResourceType::Role => role::gate(tx, proposal, policies).await,
        ResourceType::RoleAssignment => role_assignment::gate(tx, proposal, policies).await,
        ResourceType::Group => group::gate(tx, proposal, policies).await,
        ResourceType::Account => account::gate(tx, proposal, policies).await,
        ResourceType::AccessPolicy => access_policy::gate(tx, proposal, policies).await,
        ResourceType::NotificationChannel => notification_channel::gate(tx, proposal, policies).await,
    }
}

/// Applies `proposal` (already approved, or not protected) after checking the object's version
/// still matches (R12). `Err(StoreError::Stale | Conflict)` means nothing was changed.
pub(crate) async fn apply(tx: &mut WriteTx, proposal: &Proposal, now: Millis) -> Result<()> {
    let current = load(tx, proposal.resource_type, &proposal.object_id).await?;
    let found_version = current.as_ref().map(|c| c.version).unwrap_or(0);
    if found_version != proposal.before_version {
        return Err(StoreError::Stale(format!(
            "{} '{}' changed since the change was proposed (version {} then, {} now)",
            proposal.resource_type,
            proposal.object_name,
            proposal.before_version,
            if current.is_some() { found_version.to_string() } else { "deleted".to_owned() }
        )));
    }
    match proposal.resource_type {
        ResourceType::App
        | ResourceType::Script
        | ResourceType::CompliancePolicy
        | ResourceType::ConfigurationPolicy
        | ResourceType::DeviceCategory => document::apply(tx, proposal, now).await,
        ResourceType::Device => device::apply(tx, proposal, now).await,
        ResourceType::Role => role::apply(tx, proposal, now).await,
        ResourceType::RoleAssignment => role_assignment::apply(tx, proposal, now).await,
        ResourceType::Group => group::apply(tx, proposal, now).await,
        ResourceType::Account => account::apply(tx, proposal, now).await,
        ResourceType::AccessPolicy => access_policy::apply(tx, proposal, now).await,
        ResourceType::NotificationChannel => notification_channel::apply(tx, proposal, now).await,
    }
}
