//! The REST API's answers as typed structs: each serializes to the JSON the API sends and derives
//! its OpenAPI schema, so the document and the answers cannot drift apart. Object states
//! (`ObjectState`) keep their hand-written schemas in `openapi.rs`, since `core` does not depend
//! on utoipa. An `Option` is always sent (as null when absent), so its field is `required`.

use crate::ops::audit::AuditItem;
use crate::time::format;
use countersign_core::audit::{BreakKind, ChainBreak, Checkpoint, CheckpointKind, PublicKey};
use countersign_core::eligibility::AccountKind;
use countersign_core::notify::DeliveryStatus;
use countersign_core::permission::Permission;
use countersign_core::policy::{format_duration, Completion};
use countersign_core::profile::{Operation, ProfileType, ResourceType};
use countersign_core::request::{Decision, RequestStatus};
use countersign_core::Millis;
use countersign_store::{
    AccountRecord, DeliveryRecord, EligibilityRow, GroupRecord, RoleAssignmentRecord, RoleRecord, SessionInfo,
    TokenRecord, VerifyResult,
};
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::ToSchema;

/// A string schema that admits only `all`'s names, so core's enums need no utoipa derive.
fn names<T: Copy>(all: &[T], as_str: fn(T) -> &'static str) -> Object {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(all.iter().copied().map(as_str))).build()
}

fn account_kind() -> Object {
    names(&AccountKind::ALL, AccountKind::as_str)
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

fn completion() -> Object {
    names(&Completion::ALL, Completion::as_str)
}

fn break_kind() -> Object {
    names(&BreakKind::ALL, BreakKind::as_str)
}

fn checkpoint_kind() -> Object {
    names(&CheckpointKind::ALL, CheckpointKind::as_str)
}

fn verify_result() -> Object {
    names(&[VerifyResult::Intact, VerifyResult::Rewritten, VerifyResult::Unverifiable], verify_result_name)
}

fn verify_result_name(result: VerifyResult) -> &'static str {
    match result {
        VerifyResult::Intact => "intact",
        VerifyResult::Rewritten => "rewritten",
        VerifyResult::Unverifiable => "unverifiable",
    }
}

fn delivery_status() -> Object {
    names(&DeliveryStatus::ALL, DeliveryStatus::as_str)
}

/// Who requested or decided: an account's id, display name and (R20) immutable username, which
/// tells apart two people whose display names look alike.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Party {
    pub id: String,
    pub display_name: String,
    pub username: String,
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
    /// R12: the `changeDigest` this decision was given on (null for a decision from before
    /// digests were recorded).
    #[schema(required = true)]
    pub change_digest: Option<String>,
    /// R21: the id of the passkey that confirmed this decision (null without step-up); the
    /// assertion is stored with the approval and checked by `countersign audit verify`.
    #[schema(required = true)]
    pub confirmed_with_passkey: Option<String>,
}

/// A member of a group a request depends on, as it is now.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DependencyMember {
    pub id: String,
    pub username: String,
}

/// R17: an object a request depends on besides its own (a group it names, an account it adds to
/// a group, a role it assigns), frozen at submission; completion fails if it changed since.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestDependency {
    #[schema(schema_with = resource_type)]
    pub resource_type: ResourceType,
    pub id: String,
    /// Its name when the request was submitted.
    pub name: String,
    pub version_at_submission: i64,
    /// Null once it is deleted.
    #[schema(required = true)]
    pub current_version: Option<i64>,
    /// Whether it changed since submission: completing now would fail.
    pub changed: bool,
    /// A group's members now (null for other types).
    #[schema(required = true)]
    pub members: Option<Vec<DependencyMember>>,
    /// A role's permissions now (null for other types).
    #[schema(required = true)]
    pub permissions: Option<Vec<String>>,
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
    /// R12: every difference, each at a JSON Pointer (`""` for the whole object), arrays
    /// compared in order.
    #[schema(value_type = Vec<Object>)]
    pub diff: Vec<countersign_core::diff::DiffEntry>,
    /// The diff one line per difference, keys and strings quoted with every hidden character
    /// escaped, referenced ids followed by their names.
    pub diff_text: String,
    /// R12: lowercase hex SHA-256 over the canonical JSON of `["countersign.change.v1",
    /// objectId, type, operation, beforeVersion, before, after]`. Send it with a decision to
    /// decide exactly the change you reviewed; completion applies only a change whose digest
    /// every approval recorded.
    pub change_digest: String,
    /// R17: what the change depends on besides its object, each as it is now. Sent with one
    /// request (`GET /requests/{id}`, an action's answer, a 202); null in lists.
    #[schema(required = true)]
    pub dependencies: Option<Vec<RequestDependency>>,
    pub can_approve: bool,
    pub can_cancel: bool,
    pub can_complete: bool,
    /// On `GET /requests/{id}` only: every member of the approver groups, whether they may
    /// approve this request (R2), and whether they are independent of its requester and of the
    /// approvals already counted (R16), naming the link when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approvers: Option<Vec<ApproverStanding>>,
}

/// One member of a request's approver groups, judged for that request.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApproverStanding {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub eligible: bool,
    pub reasons: Vec<String>,
    pub independent: bool,
    #[schema(required = true)]
    pub link: Option<String>,
}

/// An account, never with its password.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: String,
    pub username: String,
    pub display_name: String,
    #[schema(schema_with = account_kind)]
    pub kind: AccountKind,
    #[schema(required = true)]
    pub email: Option<String>,
    pub enabled: bool,
    /// R16: the account still has a password another account set, and must choose its own
    /// (`POST /me/password`) before it can do anything else.
    pub password_change_required: bool,
    /// R20: why this account's display name, kept from before display names were checked, is
    /// too like another account's name (or holds hidden characters); its next change must give
    /// it a new display name. Null when the name is fine.
    #[schema(required = true)]
    pub display_name_flag: Option<String>,
    pub version: i64,
    /// Unix milliseconds
    pub created_at: i64,
}

impl From<&AccountRecord> for Account {
    fn from(account: &AccountRecord) -> Self {
        Account {
            id: account.id.clone(),
            username: account.username.clone(),
            display_name: account.display_name.clone(),
            kind: account.kind,
            email: account.email.clone(),
            enabled: account.enabled,
            password_change_required: account.password_change_required,
            display_name_flag: account.display_name_flag.clone(),
            version: account.version,
            created_at: account.created_at,
        }
    }
}

/// An account with the groups it belongs to.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountWithGroups {
    #[serde(flatten)]
    pub account: Account,
    pub group_ids: Vec<String>,
    /// R16: the accounts that control this one through its live credentials (empty: only
    /// itself), each with the chain that makes it so.
    pub controlled_by: Vec<Controller>,
    /// Its linked single sign-on identities: who at which provider signs in as it.
    pub identities: Vec<Identity>,
}

/// An account controlling another (R16).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Controller {
    pub id: String,
    pub username: String,
    pub how: String,
}

/// A group, with how many members it has.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    pub display_name: String,
    pub description: String,
    pub version: i64,
    pub member_count: i64,
}

impl From<&GroupRecord> for Group {
    fn from(group: &GroupRecord) -> Self {
        Group {
            id: group.id.clone(),
            display_name: group.display_name.clone(),
            description: group.description.clone(),
            version: group.version,
            member_count: group.member_count,
        }
    }
}

/// One member of a group.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub id: String,
    pub username: String,
    pub display_name: String,
    #[schema(schema_with = account_kind)]
    pub kind: AccountKind,
}

impl From<&AccountRecord> for Member {
    fn from(account: &AccountRecord) -> Self {
        Member {
            id: account.id.clone(),
            username: account.username.clone(),
            display_name: account.display_name.clone(),
            kind: account.kind,
        }
    }
}

/// A group with its members.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupWithMembers {
    #[serde(flatten)]
    pub group: Group,
    pub members: Vec<Member>,
}

/// A role: the permissions it grants.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    pub id: String,
    pub display_name: String,
    pub description: String,
    pub permissions: Vec<String>,
    pub built_in: bool,
    pub version: i64,
}

impl From<&RoleRecord> for Role {
    fn from(role: &RoleRecord) -> Self {
        Role {
            id: role.id.clone(),
            display_name: role.display_name.clone(),
            description: role.description.clone(),
            permissions: role.permissions.clone(),
            built_in: role.built_in,
            version: role.version,
        }
    }
}

/// A role granted to groups.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    pub id: String,
    pub display_name: String,
    pub role_id: String,
    pub group_ids: Vec<String>,
    pub version: i64,
}

impl From<&RoleAssignmentRecord> for RoleAssignment {
    fn from(assignment: &RoleAssignmentRecord) -> Self {
        RoleAssignment {
            id: assignment.id.clone(),
            display_name: assignment.display_name.clone(),
            role_id: assignment.role_id.clone(),
            group_ids: assignment.group_ids.clone(),
            version: assignment.version,
        }
    }
}

/// A signed-in session: the account and the token every write must carry.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignedIn {
    pub account: Account,
    pub csrf_token: String,
    /// Keep it and send it with later sign-ins as this account (`deviceToken`): it gives this
    /// client an attempt budget of its own. It grants nothing else.
    pub device_token: String,
}

/// The caller, with the permissions and groups they hold now.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub account: Account,
    #[schema(value_type = Vec<String>)]
    pub permissions: Vec<Permission>,
    pub group_ids: Vec<String>,
}

/// A personal API token, never its secret.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    pub id: String,
    pub account_id: String,
    pub display_name: String,
    /// Unix milliseconds
    pub created_at: i64,
    /// Unix milliseconds
    #[schema(required = true)]
    pub expires_at: Option<i64>,
    /// Unix milliseconds; written at most once a minute
    #[schema(required = true)]
    pub last_used_at: Option<i64>,
    /// The client address of the last recorded use
    #[schema(required = true)]
    pub last_used_address: Option<String>,
    /// The User-Agent of the last recorded use (capped in length)
    #[schema(required = true)]
    pub last_used_user_agent: Option<String>,
}

impl From<&TokenRecord> for Token {
    fn from(token: &TokenRecord) -> Self {
        Token {
            id: token.id.clone(),
            account_id: token.account_id.clone(),
            display_name: token.display_name.clone(),
            created_at: token.created_at,
            expires_at: token.expires_at,
            last_used_at: token.last_used_at,
            last_used_address: token.last_used_address.clone(),
            last_used_user_agent: token.last_used_user_agent.clone(),
        }
    }
}

/// A live session, named by its public id (never the cookie secret).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub id: String,
    /// Unix milliseconds
    pub created_at: i64,
    /// Unix milliseconds; written at most once a minute
    #[schema(required = true)]
    pub last_used_at: Option<i64>,
    /// The client address it was opened from
    pub address: String,
    /// The User-Agent it was opened with (capped in length)
    pub user_agent: String,
    /// Whether it is the session this request came with
    pub current: bool,
}

impl From<&SessionInfo> for Session {
    fn from(session: &SessionInfo) -> Self {
        Session {
            id: session.id.clone(),
            created_at: session.created_at,
            last_used_at: session.last_used_at,
            address: session.address.clone(),
            user_agent: session.user_agent.clone(),
            current: session.current,
        }
    }
}

/// Live sessions.
#[derive(Serialize, ToSchema)]
pub struct SessionList {
    pub value: Vec<Session>,
}

/// A single sign-on identity linked to the account (issue 17): who at which provider.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub id: String,
    /// The provider's `id` in the server's configuration
    pub provider: String,
    /// The provider's issuer URL (`iss`)
    pub issuer: String,
    /// The identity's subject at the provider (`sub`)
    pub subject: String,
    /// The e-mail address the provider gave when it was linked (shown, never matched)
    #[schema(required = true)]
    pub email: Option<String>,
    /// Unix milliseconds
    pub linked_at: i64,
    /// Unix milliseconds
    #[schema(required = true)]
    pub last_sign_in_at: Option<i64>,
}

impl From<&countersign_store::SsoIdentity> for Identity {
    fn from(identity: &countersign_store::SsoIdentity) -> Self {
        Identity {
            id: identity.id.clone(),
            provider: identity.provider_id.clone(),
            issuer: identity.issuer.clone(),
            subject: identity.subject.clone(),
            email: identity.email.clone(),
            linked_at: identity.created_at,
            last_sign_in_at: identity.last_sign_in_at,
        }
    }
}

/// Linked single sign-on identities.
#[derive(Serialize, ToSchema)]
pub struct IdentityList {
    pub value: Vec<Identity>,
}

/// The caller's tokens.
#[derive(Serialize, ToSchema)]
pub struct TokenList {
    pub value: Vec<Token>,
}

/// A token just created, with its secret: shown this once.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    pub id: String,
    pub display_name: String,
    /// shown once
    pub token: String,
    #[schema(format = DateTime, required = true)]
    pub expires_at: Option<String>,
}

/// Who did what an audit entry records: an account, or the system (no id).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditActor {
    #[schema(required = true)]
    pub id: Option<String>,
    pub display_name: String,
    /// R20: the account's username; null for the system.
    #[schema(required = true)]
    pub username: Option<String>,
}

/// One entry of the audit log's hash chain (R13).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub seq: i64,
    pub id: String,
    #[schema(format = DateTime)]
    pub at: String,
    pub actor: AuditActor,
    pub category: String,
    pub action: String,
    #[schema(required = true)]
    pub target_type: Option<String>,
    #[schema(required = true)]
    pub target_id: Option<String>,
    /// What the entry records, as JSON.
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
    /// HMAC-SHA-256 of `hash` under the audit key `keyId`; null for entries written before the
    /// chain was keyed.
    #[schema(required = true)]
    pub link: Option<String>,
    #[schema(required = true)]
    pub key_id: Option<String>,
}

impl From<&AuditItem> for AuditEntry {
    fn from(item: &AuditItem) -> Self {
        let entry = &item.entry;
        // Details are stored as JSON text; an entry written otherwise is shown as that text.
        let details = serde_json::from_str(&entry.details).unwrap_or_else(|_| Value::String(entry.details.clone()));
        AuditEntry {
            seq: entry.seq,
            id: entry.id.clone(),
            at: format(entry.at),
            actor: AuditActor {
                id: entry.actor_id.clone(),
                display_name: entry.actor_name.clone(),
                username: item.actor_username.clone(),
            },
            category: entry.category.clone(),
            action: entry.action.clone(),
            target_type: entry.target_type.clone(),
            target_id: entry.target_id.clone(),
            details,
            prev_hash: entry.prev_hash.clone(),
            hash: entry.hash.clone(),
            link: entry.link.clone(),
            key_id: entry.key_id.clone(),
        }
    }
}

/// The first audit entry that does not fit the chain, and why.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokenEntry {
    pub seq: i64,
    /// Empty when the break is not one entry (a cut-off tail, a checkpoint).
    pub id: String,
    #[schema(schema_with = break_kind)]
    pub kind: BreakKind,
    pub reason: String,
}

/// The audit chain's check (R13): every hash, every keyed link, every signed checkpoint (from
/// the checkpoint file and the database) and the stored head.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub valid: bool,
    /// `rewritten` when anything does not fit; `unverifiable` when the checkpoint file cannot be read.
    #[schema(schema_with = verify_result)]
    pub result: VerifyResult,
    pub entries_checked: u64,
    pub links_checked: u64,
    pub checkpoints_checked: usize,
    /// The newest checkpoint's entry.
    #[schema(required = true)]
    pub last_checkpoint: Option<i64>,
    /// The first changed, removed or reordered entry; null when the chain is whole.
    #[schema(required = true)]
    pub first_broken: Option<BrokenEntry>,
    /// Why nothing could be checked.
    #[schema(required = true)]
    pub unverifiable: Option<String>,
}

impl From<countersign_store::VerifyReport> for VerifyReport {
    fn from(report: countersign_store::VerifyReport) -> Self {
        let first_broken =
            report.first_broken.map(|ChainBreak { seq, id, kind, reason }| BrokenEntry { seq, id, kind, reason });
        VerifyReport {
            valid: report.valid,
            result: report.result,
            entries_checked: report.entries_checked,
            links_checked: report.links_checked,
            checkpoints_checked: report.checkpoints_checked,
            last_checkpoint: report.last_checkpoint,
            first_broken,
            unverifiable: report.unverifiable,
        }
    }
}

/// A signed statement that the audit chain's entry `seq` had `hash` and `link` (R13).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditCheckpoint {
    /// `periodic` (every N entries or T seconds) or `keyingStarted` (the last entry before the
    /// chain was keyed: every later one must have a link).
    #[schema(schema_with = checkpoint_kind)]
    pub kind: CheckpointKind,
    pub seq: i64,
    pub hash: String,
    #[schema(required = true)]
    pub link: Option<String>,
    /// When it was made, in Unix milliseconds: the signature covers this number.
    pub at: Millis,
    pub public_key: String,
    /// Ed25519 over `countersign-audit-checkpoint/1`, kind, seq, hash, link (or `-`) and at, one per line.
    pub signature: String,
}

/// The checkpoints and the key to check them with.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointPage {
    /// The Ed25519 public key (hex) that signs this server's checkpoints; null when the server
    /// makes none.
    #[schema(required = true)]
    pub public_key: Option<String>,
    pub algorithm: &'static str,
    pub value: Vec<AuditCheckpoint>,
}

impl CheckpointPage {
    pub fn new(public_key: Option<PublicKey>, checkpoints: &[Checkpoint]) -> CheckpointPage {
        let value = checkpoints
            .iter()
            .map(|c| AuditCheckpoint {
                kind: c.kind,
                seq: c.seq,
                hash: c.hash.clone(),
                link: c.link.clone(),
                at: c.at,
                public_key: c.public_key.clone(),
                signature: c.signature.clone(),
            })
            .collect();
        CheckpointPage { public_key: public_key.map(|key| key.to_hex()), algorithm: "Ed25519", value }
    }
}

/// One notification to one channel, and how its sending went.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    #[schema(required = true)]
    pub request_id: Option<String>,
    pub channel_id: String,
    #[schema(required = true)]
    pub recipient: Option<String>,
    #[schema(schema_with = delivery_status)]
    pub status: DeliveryStatus,
    pub attempts: i64,
    #[schema(format = DateTime)]
    pub next_attempt_at: String,
    #[schema(required = true)]
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime, required = true)]
    pub delivered_at: Option<String>,
}

impl From<&DeliveryRecord> for Delivery {
    fn from(delivery: &DeliveryRecord) -> Self {
        Delivery {
            id: delivery.id.clone(),
            event_id: delivery.event_id.clone(),
            event_type: delivery.event_type.clone(),
            request_id: delivery.request_id.clone(),
            channel_id: delivery.channel_id.clone(),
            recipient: delivery.recipient.clone(),
            status: delivery.status,
            attempts: delivery.attempts,
            next_attempt_at: format(delivery.next_attempt_at),
            last_error: delivery.last_error.clone(),
            created_at: format(delivery.created_at),
            delivered_at: delivery.delivered_at.map(format),
        }
    }
}

/// My e-mail address and opt-outs, and the kinds of notification that may be turned off.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationSettings {
    #[schema(required = true)]
    pub email: Option<String>,
    pub opt_outs: Vec<String>,
    pub optional: Vec<&'static str>,
}

/// A test message was queued as this event.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestQueued {
    pub event_id: String,
}

/// An access policy: who approves changes of one profile type, and how many must.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessPolicy {
    pub id: String,
    pub display_name: String,
    pub description: String,
    #[schema(schema_with = profile_type)]
    pub profile_type: ProfileType,
    pub approver_group_ids: Vec<String>,
    pub required_approvals: i64,
    #[schema(schema_with = completion)]
    pub completion: Completion,
    /// ISO 8601 duration, e.g. P30D
    pub request_ttl: String,
    /// R18: whether a change to the membership of a group that an object of this profile type
    /// is assigned to is held under this policy.
    pub protect_assigned_groups: bool,
    /// R21: `passkey` or `none`.
    pub step_up: String,
    pub version: i64,
}

impl AccessPolicy {
    pub fn new(policy: &countersign_core::policy::AccessPolicy, version: i64) -> Self {
        AccessPolicy {
            id: policy.id.clone(),
            display_name: policy.display_name.clone(),
            description: policy.description.clone(),
            profile_type: policy.profile_type,
            approver_group_ids: policy.approver_group_ids.clone(),
            required_approvals: policy.required_approvals,
            completion: policy.completion,
            request_ttl: format_duration(policy.request_ttl_ms),
            protect_assigned_groups: policy.protect_assigned_groups,
            step_up: policy.step_up.as_str().to_owned(),
            version,
        }
    }
}

/// A member of a policy's approver groups, and whether they could approve (R2, R14).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Approver {
    pub account_id: String,
    pub username: String,
    pub display_name: String,
    pub group_id: String,
    pub eligible: bool,
    /// Why not, when not eligible.
    pub reasons: Vec<String>,
}

impl From<&EligibilityRow> for Approver {
    fn from(row: &EligibilityRow) -> Self {
        Approver {
            account_id: row.account_id.clone(),
            username: row.username.clone(),
            display_name: row.display_name.clone(),
            group_id: row.group_id.clone(),
            eligible: row.eligible,
            reasons: row.reasons.clone(),
        }
    }
}

/// An access policy with each approver's eligibility.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessPolicyWithApprovers {
    #[serde(flatten)]
    pub policy: AccessPolicy,
    pub approvers: Vec<Approver>,
    pub eligible_approver_count: usize,
}
