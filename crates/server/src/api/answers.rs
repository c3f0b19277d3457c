//! The REST API's answers as typed structs: each serializes to the JSON the API sends and derives
//! its OpenAPI schema, so the document and the answers cannot drift apart. Object states
//! (`ObjectState`) keep their hand-written schemas in `openapi.rs`, since `core` does not depend
//! on utoipa. An `Option` is always sent (as null when absent), so its field is `required`.

use countersign_core::profile::{Operation, ProfileType, ResourceType};
use countersign_core::request::{Decision, RequestStatus};
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::ToSchema;

/// A string schema that admits only `all`'s names, so core's enums need no utoipa derive.
fn names<T: Copy>(all: &[T], as_str: fn(T) -> &'static str) -> Object {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(all.iter().copied().map(as_str))).build()
}

fn resource_type() -> Object {
    names(&ResourceType::ALL, ResourceType::as_str)
}

fn operation() -> Object {
    names(&Operation::ALL, Operation::as_str)
}

fn profile_type() -> Object {
    names(&ProfileType::ALL, ProfileType::as_str)
}

fn request_status() -> Object {
    names(&RequestStatus::ALL, RequestStatus::as_str)
}

fn decision() -> Object {
    names(&Decision::ALL, Decision::as_str)
}

/// Who requested or decided: an account's id and display name.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Party {
    pub id: String,
    pub display_name: String,
}

/// One approver's decision on a request.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub approver: Party,
    #[schema(schema_with = decision)]
    pub decision: Decision,
    #[schema(required = true)]
    pub notes: Option<String>,
    #[schema(format = DateTime)]
    pub at: String,
}

/// An approval request with its diff and what the caller may do with it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub id: String,
    #[schema(schema_with = resource_type)]
    pub resource_type: ResourceType,
    pub object_id: String,
    pub object_name: String,
    #[schema(schema_with = operation)]
    pub operation: Operation,
    #[schema(schema_with = profile_type)]
    pub profile_type: ProfileType,
    #[schema(required = true)]
    pub policy_id: Option<String>,
    #[schema(schema_with = request_status)]
    pub status: RequestStatus,
    pub justification: String,
    pub requested_by: Party,
    #[schema(format = DateTime)]
    pub requested_at: String,
    #[schema(format = DateTime)]
    pub last_modified_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    pub required_approvals: i64,
    pub approvals: Vec<Approval>,
    #[schema(format = DateTime, required = true)]
    pub completed_at: Option<String>,
    #[schema(required = true)]
    pub failure_reason: Option<String>,
    /// The object's state before the change (null for a create).
    pub before: Value,
    /// The proposed state (null for a delete).
    pub after: Value,
    #[schema(value_type = Vec<Object>)]
    pub diff: Vec<countersign_core::diff::DiffEntry>,
    pub diff_text: String,
    pub can_approve: bool,
    pub can_cancel: bool,
    pub can_complete: bool,
}
