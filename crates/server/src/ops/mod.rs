//! What a caller may do: every operation, read and write, with typed input and output, shared by
//! the three adapters (`api` speaks JSON, `web` HTML, `graph` Graph's shapes). Each operation
//! takes the app and the caller, checks the permission first (403 before any MAA request), and
//! sends every change through the one gate, `Store::submit`.

pub mod audit;
pub mod directory;
pub mod notifications;
pub mod own;
pub mod passkeys;
pub mod policies;
pub mod requests;
pub mod resources;
pub mod sso;

use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, Principal};
use crate::AppState;
use countersign_core::profile::{Operation, ResourceType};
use countersign_core::state::ObjectState;
use countersign_store::{Proposal, RequestRecord, StoreError, Submitted};

/// What an attempted change did; the API renders it as JSON, the web pages as HTML.
pub enum Outcome {
    /// Not protected: applied at once. `state` is `None` after a delete.
    Applied { id: String, resource_type: ResourceType, state: Option<ObjectState>, version: i64, created: bool },
    /// R1: held as an approval request.
    Held(Box<RequestRecord>),
    /// The proposal would change nothing, so nothing was submitted.
    Unchanged { id: String, resource_type: ResourceType, state: ObjectState, version: i64 },
}

/// An object as it is stored now: its id, state and version.
pub struct Current {
    pub id: String,
    pub state: ObjectState,
    pub version: i64,
}

/// One page of a keyset-paged collection and the cursor of the next page.
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Which page of a collection: after `cursor`, at most `limit` items.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// The cursor for the next page: the last item's key when the page is full.
pub fn next_cursor<T>(items: &[T], limit: i64, key: impl Fn(&T) -> String) -> Option<String> {
    if items.len() as i64 >= limit {
        items.last().map(key)
    } else {
        None
    }
}

/// A page size between 1 and 500 (100 when not given).
pub fn limit_of(limit: Option<i64>) -> ApiResult<i64> {
    let limit = limit.unwrap_or(100);
    if (1..=500).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::validation("limit must be between 1 and 500"))
    }
}

/// Runs a proposal through the MAA gate (`Store::submit`, the one place every change goes).
pub(crate) async fn gate(
    app: &AppState,
    principal: &Principal,
    proposal: Proposal,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    let created = proposal.operation == Operation::Create;
    let (id, resource_type) = (proposal.object_id.clone(), proposal.resource_type);
    let submitted = app
        .store
        .submit(&principal.actor(), &principal.permissions, proposal, justification.as_deref(), app.now())
        .await?;
    Ok(match submitted {
        Submitted::Applied { state, version } => Outcome::Applied { id, resource_type, state, version, created },
        Submitted::Held(record) => Outcome::Held(record),
    })
}

/// An object's id, state and version, or 404.
pub(crate) async fn current(app: &AppState, resource_type: ResourceType, id: &str) -> ApiResult<Current> {
    let id = parse_id(id)?;
    let (state, version) = app
        .store
        .object_state(resource_type, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{resource_type} {id} does not exist")))?;
    Ok(Current { id, state, version })
}

/// An object read as one type that holds another type's state: the store is inconsistent.
pub(crate) fn wrong_state(current: &Current) -> ApiError {
    StoreError::Corrupt(format!("object {} holds the state of another type", current.id)).into()
}

/// A change to an existing object; one that changes nothing is not submitted.
pub(crate) async fn propose(
    app: &AppState,
    principal: &Principal,
    resource_type: ResourceType,
    operation: Operation,
    before: Current,
    after: Option<ObjectState>,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    let Current { id, state, version } = before;
    // Compared as shown (R12): sets in any order are the same set.
    if after.as_ref().map(ObjectState::to_json) == Some(state.to_json()) {
        return Ok(Outcome::Unchanged { id, resource_type, state, version });
    }
    let proposal = Proposal::change(resource_type, operation, id, state, version, after);
    gate(app, principal, proposal, justification).await
}

/// [`propose`] with a secret that travels beside the state (a password hash, a webhook URL): a
/// change with a secret is always submitted, since the state alone cannot show it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn propose_with_secret(
    app: &AppState,
    principal: &Principal,
    resource_type: ResourceType,
    operation: Operation,
    before: Current,
    after: Option<ObjectState>,
    secret: Option<String>,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    if secret.is_none() {
        return propose(app, principal, resource_type, operation, before, after, justification).await;
    }
    let Current { id, state, version } = before;
    let proposal = Proposal { secret, ..Proposal::change(resource_type, operation, id, state, version, after) };
    gate(app, principal, proposal, justification).await
}

/// Group ids, checked to exist, without duplicates, sorted.
pub(crate) async fn ensure_groups(app: &AppState, group_ids: &[String]) -> ApiResult<Vec<String>> {
    let mut ids = Vec::with_capacity(group_ids.len());
    for raw in group_ids {
        let id = parse_id(raw)?;
        if app.store.group(&id).await?.is_none() {
            return Err(ApiError::validation(format!("group {id} does not exist")));
        }
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids.sort();
    Ok(ids)
}
