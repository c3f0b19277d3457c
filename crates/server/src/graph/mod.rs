//! A Microsoft Graph–compatible (beta) Multi Admin Approval API under
//! `/beta/deviceManagement/`: `operationApprovalPolicies` and `operationApprovalRequests`, with
//! Graph's names, shapes, OData options and errors. Same authentication and the same rules as
//! the native API: decisions go through `ops::requests::act`, policy changes through
//! `ops::policies::*` (always held, R9).

pub mod mapping;
pub mod odata;

use crate::error::ApiError;
use crate::extract::{justification, parse_id, Principal};
use crate::ops::directory::account_kind;
use crate::ops::policies::{self, create_policy, delete_policy, existing, update_policy, PolicyInput};
use crate::ops::requests::{
    act, approvers_of, list as list_records, visible_request, Action, ApproverStanding, ListQuery,
};
use crate::ops::{Outcome, Paged};
use crate::time::format;
use crate::AppState;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use countersign_core::eligibility::AccountKind;
use countersign_core::error::ErrorCode;
use countersign_core::permission::Permission;
use countersign_core::policy::{format_duration, AccessPolicy};
use countersign_core::profile::{ProfileType, ResourceType};
use countersign_core::request::{Decision, RequestStatus};
use countersign_store::{DependencyNow, RequestRecord};
use mapping::{graph_status, policy_type, POLICY_PLATFORM};
use odata::{bad_request, origin, parse_query, select, Body, Caller, GraphError, GraphResult, Supports};
use serde_json::{json, Value};
use std::collections::HashMap;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const REQUEST_PROPERTIES: &[&str] = &[
    "id",
    "requestDateTime",
    "expirationDateTime",
    "lastModifiedDateTime",
    "requestor",
    "approver",
    "status",
    "requestJustification",
    "approvalJustification",
    "requiredOperationApprovalPolicyTypes",
];
/// Countersign's extension of one `operationApprovalRequest` (R17): what the change depends on,
/// named as Graph names schema extension properties (`{owner}_{name}`).
const DEPENDENCIES_EXTENSION: &str = "countersign_dependencies";
/// R12: the request's `changeDigest`, on one request; a decision may send it back to decide
/// exactly the change reviewed.
const CHANGE_DIGEST_EXTENSION: &str = "countersign_changeDigest";
/// One request also has its extension.
const REQUEST_ONE_PROPERTIES: &[&str] = &[
    "id",
    "requestDateTime",
    "expirationDateTime",
    "lastModifiedDateTime",
    "requestor",
    "approver",
    "status",
    "requestJustification",
    "approvalJustification",
    "requiredOperationApprovalPolicyTypes",
    DEPENDENCIES_EXTENSION,
    CHANGE_DIGEST_EXTENSION,
];
const POLICY_PROPERTIES: &[&str] = &[
    "id",
    "displayName",
    "description",
    "lastModifiedDateTime",
    "policyType",
    "policyPlatform",
    "policySet",
    "approverGroupIds",
];
const REQUEST_LIST: Supports = Supports { filter: true, paging: true, select: REQUEST_PROPERTIES };
const REQUEST_ONE: Supports = Supports { filter: false, paging: false, select: REQUEST_ONE_PROPERTIES };
const POLICY_QUERY: Supports = Supports { filter: false, paging: false, select: POLICY_PROPERTIES };
const NO_OPTIONS: Supports = Supports { filter: false, paging: false, select: &[] };

/// Pages hold at most this many requests (Graph pages on the server's terms too).
const MAX_PAGE: i64 = 200;
const DEFAULT_PAGE: i64 = 100;

/// The Graph-compatible routes, each with its OpenAPI description, under
/// `/beta/deviceManagement`; anything else under `/beta` answers with Graph's error shape.
pub fn routes() -> OpenApiRouter<AppState> {
    let (dm, document) = OpenApiRouter::default()
        .routes(routes!(list_policies, create))
        .routes(routes!(policy_segment, update, delete))
        .routes(routes!(list_requests))
        .routes(routes!(request_segment, request_function))
        .routes(routes!(request_action))
        .split_for_parts();
    let beta = Router::new().nest("/deviceManagement", dm).fallback(not_found).method_not_allowed_fallback(not_allowed);
    let document = OpenApi::default().nest("/beta/deviceManagement", document);
    OpenApiRouter::with_openapi(document).merge(Router::new().nest("/beta", beta).into())
}

async fn not_found() -> GraphError {
    GraphError(ApiError::not_found("no such resource or function in this Graph-compatible API"))
}

async fn not_allowed() -> GraphError {
    GraphError(ApiError::new(ErrorCode::MethodNotAllowed, "this endpoint does not accept that method"))
}

/// What a response needs to know about where it was asked.
struct Ctx {
    origin: String,
    path: String,
    query: String,
}

impl Ctx {
    fn new(app: &AppState, uri: &OriginalUri) -> Self {
        Ctx { origin: origin(app), path: uri.0.path().to_owned(), query: uri.0.query().unwrap_or_default().to_owned() }
    }

    fn context(&self, fragment: &str) -> String {
        format!("{}/beta/$metadata#{fragment}", self.origin)
    }

    fn fragment_with_select(fragment: &str, fields: Option<&[String]>) -> String {
        match fields {
            Some(f) => format!("{fragment}({})", f.join(",")),
            None => fragment.to_owned(),
        }
    }

    fn next_link(&self, token: &str) -> String {
        format!("{}{}?{}", self.origin, self.path, odata::with_skiptoken(&self.query, token))
    }

    fn request_location(&self, id: &str) -> String {
        format!("{}/beta/deviceManagement/operationApprovalRequests/{id}", self.origin)
    }
}

/// R20: a person is named by display name and username (`userPrincipalName`, as Graph's
/// `userIdentity` has it); an application by display name, with its username as Graph has no
/// field for it, in the `@countersign.username` annotation.
fn identity_set(kind: AccountKind, id: &str, name: &str, username: &str) -> Value {
    let (who, identity) = if kind == AccountKind::Service {
        let identity = json!({"@odata.type": "#microsoft.graph.identity", "id": id, "displayName": name,
            "@countersign.username": username});
        ("application", identity)
    } else {
        let identity = json!({"@odata.type": "#microsoft.graph.userIdentity", "id": id, "displayName": name,
            "userPrincipalName": username});
        ("user", identity)
    };
    json!({"@odata.type": "#microsoft.graph.identitySet", who: identity})
}

/// One approver's standing on a request (R2, R16), for the `@countersign.approvers` annotation.
fn approver_annotation(approver: &ApproverStanding) -> Value {
    json!({
        "id": approver.account_id,
        "userPrincipalName": approver.username,
        "displayName": approver.display_name,
        "eligible": approver.eligible,
        "reasons": approver.reasons,
        "independent": approver.independent,
        "link": approver.link,
    })
}

/// Renders requests as `operationApprovalRequest`s (looking up whether requesters are people
/// or service accounts once each).
struct Renderer<'a> {
    app: &'a AppState,
    kinds: HashMap<String, AccountKind>,
}

impl<'a> Renderer<'a> {
    fn new(app: &'a AppState) -> Self {
        Renderer { app, kinds: HashMap::new() }
    }

    async fn kind(&mut self, id: &str) -> GraphResult<AccountKind> {
        if let Some(kind) = self.kinds.get(id) {
            return Ok(*kind);
        }
        let kind = account_kind(self.app, id).await?;
        self.kinds.insert(id.to_owned(), kind);
        Ok(kind)
    }

    async fn render(&mut self, record: &RequestRecord) -> GraphResult<Value> {
        let status = record.state().effective_status(self.app.now());
        let requestor = identity_set(
            self.kind(&record.requested_by).await?,
            &record.requested_by,
            &record.requested_by_name,
            &record.requested_by_username,
        );
        // The decision that settled the request (or the latest one while more are needed).
        let last = record.approvals.iter().max_by_key(|a| a.at);
        let approver = match last {
            Some(a) => {
                identity_set(self.kind(&a.approver_id).await?, &a.approver_id, &a.approver_name, &a.approver_username)
            }
            None => Value::Null,
        };
        Ok(json!({
            "@odata.type": "#microsoft.graph.operationApprovalRequest",
            "id": record.id,
            "requestDateTime": format(record.requested_at),
            "expirationDateTime": format(record.expires_at),
            "lastModifiedDateTime": format(record.last_modified_at),
            "requestor": requestor,
            "approver": approver,
            "status": graph_status(status),
            "requestJustification": record.justification,
            "approvalJustification": last.and_then(|a| a.notes.clone()),
            "requiredOperationApprovalPolicyTypes": [policy_type(record.profile_type)],
        }))
    }
}

/// R17 for Graph clients: each dependency frozen at submission, with its version now (null once
/// deleted), whether it changed, and a group's current members or a role's current permissions.
fn render_dependencies(dependencies: &[DependencyNow]) -> Value {
    dependencies
        .iter()
        .map(|d| {
            let current = d.current.as_ref();
            let mut item = json!({
                "resourceType": d.frozen.resource_type,
                "id": d.frozen.id,
                "name": d.frozen.name,
                "versionAtSubmission": d.frozen.version,
                "currentVersion": current.map(|c| c.version),
                "changed": d.changed(),
            });
            match d.frozen.resource_type {
                ResourceType::Group => item["members"] = current.map_or(json!([]), |c| json!(c.members)),
                ResourceType::Role => item["permissions"] = current.map_or(json!([]), |c| json!(c.permissions)),
                _ => {}
            }
            item
        })
        .collect()
}

fn policy_set(profile_type: ProfileType) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.operationApprovalPolicySet",
        "policyType": policy_type(profile_type),
        "policyPlatform": POLICY_PLATFORM,
    })
}

fn render_policy(policy: &AccessPolicy) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.operationApprovalPolicy",
        "id": policy.id,
        "displayName": policy.display_name,
        "description": policy.description,
        "lastModifiedDateTime": null,
        "policyType": policy_type(policy.profile_type),
        "policyPlatform": POLICY_PLATFORM,
        "policySet": policy_set(policy.profile_type),
        "approverGroupIds": policy.approver_group_ids,
    })
}

fn collection(ctx: &Ctx, fragment: &str, value: Vec<Value>, next: Option<String>) -> Response {
    let mut body = json!({"@odata.context": ctx.context(fragment), "value": value});
    if let Some(token) = next {
        body["@odata.nextLink"] = json!(ctx.next_link(&token));
    }
    Json(body).into_response()
}

fn entity(ctx: &Ctx, fragment: &str, item: Value) -> Response {
    let mut body = json!({"@odata.context": ctx.context(fragment)});
    if let (Value::Object(map), Value::Object(fields)) = (&mut body, item) {
        map.extend(fields);
    }
    Json(body).into_response()
}

// ---- operationApprovalPolicies ----

#[utoipa::path(
    get,
    path = "/operationApprovalPolicies",
    tag = "graph",
    summary = "List operationApprovalPolicies",
    params(("$select" = Option<String>, Query, description = "comma-separated properties")),
    responses(
        (status = 200, description = "the policies", body = ref("#/components/schemas/OperationApprovalPolicyCollection"))
    )
)]
async fn list_policies(
    State(app): State<AppState>,
    Caller(principal): Caller,
    uri: OriginalUri,
) -> GraphResult<Response> {
    let ctx = Ctx::new(&app, &uri);
    let q = parse_query(&ctx.query, POLICY_QUERY)?;
    let policies = policies::list(&app, &principal).await?;
    let value = policies.iter().map(|p| select(render_policy(p), q.select.as_deref())).collect();
    let fragment = Ctx::fragment_with_select("deviceManagement/operationApprovalPolicies", q.select.as_deref());
    Ok(collection(&ctx, &fragment, value, None))
}

/// `GET operationApprovalPolicies/{id}` and the functions bound to the collection.
#[utoipa::path(
    get,
    path = "/operationApprovalPolicies/{id}",
    tag = "graph",
    summary = "One operationApprovalPolicy, or a function bound to the collection",
    params(("id" = String, Path, description = "a policy id, or retrieveApprovableOperations(), retrieveOperationsRequiringApproval() (or the older getApprovableOperations(), getOperationsRequiringApproval())"), ("$select" = Option<String>, Query, description = "comma-separated properties")),
    responses(
        (status = 200, description = "the policy, or for a function the operationApprovalPolicySets it answers", body = ref("#/components/schemas/OperationApprovalPolicyOrSets"))
    )
)]
async fn policy_segment(
    State(app): State<AppState>,
    Caller(principal): Caller,
    Path(segment): Path<String>,
    uri: OriginalUri,
) -> GraphResult<Response> {
    let ctx = Ctx::new(&app, &uri);
    match segment.as_str() {
        "retrieveApprovableOperations()" | "getApprovableOperations()" => {
            parse_query(&ctx.query, NO_OPTIONS)?;
            let value =
                policies::approvable_profile_types(&app, &principal).await?.into_iter().map(policy_set).collect();
            Ok(collection(&ctx, "Collection(microsoft.graph.operationApprovalPolicySet)", value, None))
        }
        "retrieveOperationsRequiringApproval()" | "getOperationsRequiringApproval()" => {
            parse_query(&ctx.query, NO_OPTIONS)?;
            let value = policies::protected_profile_types(&app).await?.into_iter().map(policy_set).collect();
            Ok(collection(&ctx, "Collection(microsoft.graph.operationApprovalPolicySet)", value, None))
        }
        id => {
            let q = parse_query(&ctx.query, POLICY_QUERY)?;
            let policy = policies::get(&app, &principal, id).await?.policy;
            let fragment = Ctx::fragment_with_select("deviceManagement/operationApprovalPolicies", q.select.as_deref());
            Ok(entity(&ctx, &format!("{fragment}/$entity"), select(render_policy(&policy), q.select.as_deref())))
        }
    }
}

const POLICY_WRITABLE: &[&str] = &[
    "id",
    "displayName",
    "description",
    "lastModifiedDateTime",
    "policyType",
    "policyPlatform",
    "policySet",
    "approverGroupIds",
    "justification",
];

/// The profile type a policy body names (`policyType`, or `policySet.policyType`), checking
/// the platform.
fn body_profile_type(body: &Body) -> GraphResult<Option<ProfileType>> {
    let set = body.0.get("policySet").and_then(Value::as_object);
    let set_type = set.and_then(|s| s.get("policyType")).and_then(Value::as_str);
    let graph = body.string("policyType")?.or(set_type.map(str::to_owned));
    for platform in [
        body.string("policyPlatform")?,
        set.and_then(|s| s.get("policyPlatform")).and_then(Value::as_str).map(str::to_owned),
    ]
    .into_iter()
    .flatten()
    {
        mapping::check_platform(&platform).map_err(|e| GraphError(ApiError::validation(e)))?;
    }
    graph.map(|g| mapping::profile_type_of(&g).map_err(|e| GraphError(ApiError::validation(e)))).transpose()
}

/// A held policy change: 202 with the new request's `Location`.
async fn held(app: &AppState, ctx: &Ctx, outcome: Outcome) -> GraphResult<Response> {
    match outcome {
        Outcome::Held(record) => {
            Ok((StatusCode::ACCEPTED, [(header::LOCATION, ctx.request_location(&record.id))]).into_response())
        }
        // R9 holds every access-policy change; these arms only answer honestly if it did not.
        Outcome::Applied { id, .. } | Outcome::Unchanged { id, .. } => {
            let policy = existing(app, &id).await?.policy;
            Ok(entity(ctx, "deviceManagement/operationApprovalPolicies/$entity", render_policy(&policy)))
        }
    }
}

/// `POST operationApprovalPolicies`: held (R9).
#[utoipa::path(
    post,
    path = "/operationApprovalPolicies",
    tag = "graph",
    summary = "Propose an operationApprovalPolicy (always held, R9)",
    request_body(content = ref("#/components/schemas/GraphPolicyBody"), description = "Graph's JSON members (`@odata.*` annotations are ignored)"),
    responses(
        (status = 202, description = "held (R9): no body; Location names the new operationApprovalRequest", headers(("Location" = String, description = "the request")))
    )
)]
async fn create(
    State(app): State<AppState>,
    Caller(principal): Caller,
    headers: HeaderMap,
    uri: OriginalUri,
    body: Body,
) -> GraphResult<Response> {
    let ctx = Ctx::new(&app, &uri);
    body.only("microsoft.graph.operationApprovalPolicy", POLICY_WRITABLE)?;
    let profile_type =
        body_profile_type(&body)?.ok_or_else(|| GraphError(ApiError::validation("policyType is required")))?;
    let input = PolicyInput {
        display_name: body.string("displayName")?.unwrap_or_default(),
        description: body.string("description")?,
        profile_type: profile_type.as_str().to_owned(),
        approver_group_ids: body.strings("approverGroupIds")?.unwrap_or_default(),
        ..PolicyInput::default()
    };
    let justification = justification(body.string("justification")?, &headers);
    let outcome = create_policy(&app, &principal, &input, justification).await?;
    held(&app, &ctx, outcome).await
}

/// `PATCH operationApprovalPolicies/{id}`: the named properties change, the rest stay; held (R9).
#[utoipa::path(
    patch,
    path = "/operationApprovalPolicies/{id}",
    tag = "graph",
    summary = "Propose changing the named properties of an operationApprovalPolicy (held, R9)",
    params(("id" = String, Path, description = "the policy's id")),
    request_body(content = ref("#/components/schemas/GraphPolicyBody"), description = "Graph's JSON members (`@odata.*` annotations are ignored)"),
    responses(
        (status = 200, description = "nothing to change: the policy as it is", body = ref("#/components/schemas/OperationApprovalPolicy")),
        (status = 202, description = "held (R9): no body; Location names the new operationApprovalRequest", headers(("Location" = String, description = "the request")))
    )
)]
async fn update(
    State(app): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: OriginalUri,
    body: Body,
) -> GraphResult<Response> {
    let ctx = Ctx::new(&app, &uri);
    body.only("microsoft.graph.operationApprovalPolicy", POLICY_WRITABLE)?;
    principal.require(Permission::AccessPoliciesUpdate)?;
    let current = existing(&app, &id).await?.policy;
    let profile_type = body_profile_type(&body)?.unwrap_or(current.profile_type);
    let input = PolicyInput {
        display_name: body.string("displayName")?.unwrap_or(current.display_name),
        description: if body.0.contains_key("description") {
            body.string("description")?
        } else {
            Some(current.description)
        },
        profile_type: profile_type.as_str().to_owned(),
        approver_group_ids: body.strings("approverGroupIds")?.unwrap_or(current.approver_group_ids),
        required_approvals: Some(current.required_approvals),
        completion: Some(current.completion.as_str().to_owned()),
        request_ttl: Some(format_duration(current.request_ttl_ms)),
        // Graph has no such property: a Graph client's change keeps what the policy says.
        protect_assigned_groups: Some(current.protect_assigned_groups),
        step_up: Some(current.step_up.as_str().to_owned()),
    };
    let justification = justification(body.string("justification")?, &headers);
    let outcome = update_policy(&app, &principal, &id, &input, justification).await?;
    held(&app, &ctx, outcome).await
}

/// `DELETE operationApprovalPolicies/{id}`: held (R9); the justification comes in the
/// `X-Justification` header (or a `justification` body member).
#[utoipa::path(
    delete,
    path = "/operationApprovalPolicies/{id}",
    tag = "graph",
    summary = "Propose deleting an operationApprovalPolicy (held, R9; justification in X-Justification or the body)",
    params(("id" = String, Path, description = "the policy's id")),
    request_body(content = ref("#/components/schemas/GraphJustificationBody"), description = "Graph's JSON members (`@odata.*` annotations are ignored)"),
    responses(
        (status = 202, description = "held (R9): no body; Location names the new operationApprovalRequest", headers(("Location" = String, description = "the request")))
    )
)]
async fn delete(
    State(app): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: OriginalUri,
    body: Body,
) -> GraphResult<Response> {
    let ctx = Ctx::new(&app, &uri);
    body.only("delete", &["justification"])?;
    let justification = justification(body.string("justification")?, &headers);
    let outcome = delete_policy(&app, &principal, &id, justification).await?;
    held(&app, &ctx, outcome).await
}

// ---- operationApprovalRequests ----

/// One page of the caller's requests in `view`, over every status `$filter` selects (merged
/// newest first, keyset-paged by id).
async fn page(
    app: &AppState,
    principal: &Principal,
    view: &str,
    q: &odata::QueryOptions,
) -> GraphResult<(Vec<RequestRecord>, Option<String>)> {
    let limit = q.top.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE);
    let cursor = q.skiptoken.as_deref().map(parse_id).transpose().map_err(|_| bad_request("Invalid $skiptoken"))?;
    let base = ListQuery { view: Some(view.to_owned()), cursor, limit: Some(limit), ..ListQuery::default() };
    let statuses: Vec<Option<RequestStatus>> = match &q.statuses {
        None => vec![None],
        Some(list) => list.iter().copied().map(Some).collect(),
    };
    let mut records = Vec::new();
    let mut more = false;
    for status in statuses {
        let query = ListQuery { status: status.map(|s| s.as_str().to_owned()), ..base.clone() };
        let Paged { items: found, next_cursor: next } = list_records(app, principal, &query).await?;
        more |= next.is_some();
        records.extend(found);
    }
    records.sort_by(|a, b| b.id.cmp(&a.id));
    records.dedup_by(|a, b| a.id == b.id);
    more |= records.len() as i64 > limit;
    records.truncate(limit as usize);
    let next = if more { records.last().map(|r| r.id.clone()) } else { None };
    Ok((records, next))
}

async fn list_view(
    app: &AppState,
    principal: &Principal,
    ctx: &Ctx,
    view: &str,
    fragment: &str,
) -> GraphResult<Response> {
    let q = parse_query(&ctx.query, REQUEST_LIST)?;
    let (records, next) = page(app, principal, view, &q).await?;
    let mut renderer = Renderer::new(app);
    let mut value = Vec::with_capacity(records.len());
    for record in &records {
        value.push(select(renderer.render(record).await?, q.select.as_deref()));
    }
    Ok(collection(ctx, &Ctx::fragment_with_select(fragment, q.select.as_deref()), value, next))
}

/// `GET operationApprovalRequests`: every request the caller may see.
#[utoipa::path(
    get,
    path = "/operationApprovalRequests",
    tag = "graph",
    summary = "List the operationApprovalRequests the caller may see",
    params(("$select" = Option<String>, Query, description = "comma-separated properties"), ("$filter" = Option<String>, Query, description = "status eq '…', joined by or"), ("$top" = Option<i64>, Query), ("$orderby" = Option<String>, Query, description = "only requestDateTime desc"), ("$skiptoken" = Option<String>, Query)),
    responses(
        (status = 200, description = "a page of requests", body = ref("#/components/schemas/OperationApprovalRequestCollection"))
    )
)]
async fn list_requests(
    State(app): State<AppState>,
    Caller(principal): Caller,
    uri: OriginalUri,
) -> GraphResult<Response> {
    let ctx = Ctx::new(&app, &uri);
    list_view(&app, &principal, &ctx, "all", "deviceManagement/operationApprovalRequests").await
}

/// `id='…'` of `retrieveMyRequestById(id='…')`.
fn function_id<'a>(segment: &'a str, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|name| segment.strip_prefix(name)?.strip_prefix("(id='")?.strip_suffix("')"))
}

/// `GET operationApprovalRequests/{id}` and the functions bound to the collection.
#[utoipa::path(
    get,
    path = "/operationApprovalRequests/{segment}",
    tag = "graph",
    summary = "One operationApprovalRequest, or the caller's own requests",
    params(("segment" = String, Path, description = "a request id, retrieveMyRequests(), retrieveMyRequestById(id='…') (or getMyRequests(), getMyRequestById(id='…'))"), ("$select" = Option<String>, Query, description = "comma-separated properties"), ("$filter" = Option<String>, Query, description = "status eq '…', joined by or"), ("$top" = Option<i64>, Query), ("$orderby" = Option<String>, Query, description = "only requestDateTime desc"), ("$skiptoken" = Option<String>, Query)),
    responses(
        (status = 200, description = "the request, or for retrieveMyRequests() a page of the caller's requests", body = ref("#/components/schemas/OperationApprovalRequestOrCollection"))
    )
)]
async fn request_segment(
    State(app): State<AppState>,
    Caller(principal): Caller,
    Path(segment): Path<String>,
    uri: OriginalUri,
) -> GraphResult<Response> {
    let ctx = Ctx::new(&app, &uri);
    if matches!(segment.as_str(), "retrieveMyRequests()" | "getMyRequests()") {
        return list_view(&app, &principal, &ctx, "mine", "Collection(microsoft.graph.operationApprovalRequest)").await;
    }
    let (id, mine) = match function_id(&segment, &["retrieveMyRequestById", "getMyRequestById"]) {
        Some(id) => (id, true),
        None => (segment.as_str(), false),
    };
    let q = parse_query(&ctx.query, REQUEST_ONE)?;
    let record = visible_request(&app, &principal, id).await?;
    if mine && record.requested_by != principal.account.id {
        return Err(GraphError(ApiError::not_found(format!("you have no request {id}"))));
    }
    let mut item = Renderer::new(&app).render(&record).await?;
    let dependencies = app.store.dependencies_now(&record.dependencies).await.map_err(ApiError::from)?;
    item[DEPENDENCIES_EXTENSION] = render_dependencies(&dependencies);
    item[CHANGE_DIGEST_EXTENSION] = Value::from(record.change_digest());
    let mut item = select(item, q.select.as_deref());
    // R16, as an instance annotation (Graph clients keep what they do not know aside): every
    // member of the approver groups, and whether they are independent of this requester.
    if let Some(object) = item.as_object_mut() {
        let approvers = approvers_of(&app, &principal, &record).await?;
        object
            .insert("@countersign.approvers".into(), Value::Array(approvers.iter().map(approver_annotation).collect()));
    }
    let fragment = if mine {
        "microsoft.graph.operationApprovalRequest".to_owned()
    } else {
        format!(
            "{}/$entity",
            Ctx::fragment_with_select("deviceManagement/operationApprovalRequests", q.select.as_deref())
        )
    };
    Ok(entity(&ctx, &fragment, item))
}

/// `POST operationApprovalRequests/cancelMyRequest` and `…/retrieveRequestStatus`.
#[utoipa::path(
    post,
    path = "/operationApprovalRequests/{segment}",
    tag = "graph",
    summary = "cancelMyRequest or retrieveRequestStatus (getRequestStatus)",
    params(("segment" = String, Path, description = "cancelMyRequest, retrieveRequestStatus or getRequestStatus")),
    request_body(content = ref("#/components/schemas/GraphRequestFunctionBody"), description = "Graph's JSON members (`@odata.*` annotations are ignored)"),
    responses(
        (status = 204, description = "cancelMyRequest: cancelled"),
        (status = 200, description = "retrieveRequestStatus: the object's latest request", body = ref("#/components/schemas/OperationApprovalRequestEntityStatus"))
    )
)]
async fn request_function(
    State(app): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    uri: OriginalUri,
    body: Body,
) -> GraphResult<Response> {
    let ctx = Ctx::new(&app, &uri);
    parse_query(&ctx.query, NO_OPTIONS)?;
    match name.as_str() {
        "cancelMyRequest" => {
            body.only("cancelMyRequest", &["id"])?;
            let id = body.string("id")?.ok_or_else(|| GraphError(ApiError::validation("id is required")))?;
            let record = visible_request(&app, &principal, &id).await?;
            if record.requested_by != principal.account.id {
                return Err(GraphError(ApiError::new(
                    ErrorCode::NotTheRequester,
                    "only the requester can cancel their request",
                )));
            }
            act(&app, &principal, &id, Action::Cancel).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "retrieveRequestStatus" | "getRequestStatus" => {
            body.only("retrieveRequestStatus", &["entityId", "entityType"])?;
            let entity_id =
                body.string("entityId")?.ok_or_else(|| GraphError(ApiError::validation("entityId is required")))?;
            let resource_type = body
                .string("entityType")?
                .filter(|t| !t.is_empty())
                .map(|t| mapping::resource_type_of_entity(&t))
                .transpose()
                .map_err(|e| GraphError(ApiError::validation(e)))?;
            let mut latest = None;
            for view in ["all", "mine"] {
                let query = ListQuery {
                    view: Some(view.into()),
                    object_id: Some(entity_id.clone()),
                    resource_type: resource_type.map(|t| t.as_str().to_owned()),
                    since: Some(format(0)),
                    limit: Some(1),
                    ..ListQuery::default()
                };
                let found = list_records(&app, &principal, &query).await?.items;
                if let Some(record) = found.into_iter().next() {
                    latest = Some(record);
                    break;
                }
            }
            let status = latest.as_ref().map(|r| r.state().effective_status(app.now()));
            let item = json!({
                "@odata.type": "#microsoft.graph.operationApprovalRequestEntityStatus",
                "requestId": latest.as_ref().map(|r| r.id.clone()),
                "requestExpirationDateTime": latest.as_ref().map(|r| format(r.expires_at)),
                "requestStatus": status.map_or("unknown", graph_status),
                "entityLocked": status.is_some_and(RequestStatus::is_open),
            });
            Ok(entity(&ctx, "microsoft.graph.operationApprovalRequestEntityStatus", item))
        }
        _ => Err(GraphError(ApiError::not_found(format!("'{name}' is not an action of operationApprovalRequests")))),
    }
}

/// `POST operationApprovalRequests/{id}/approve|reject|cancelApproval`
/// `{"justification", "approvalSource"}` → `{"value": <the request's status>}`.
#[utoipa::path(
    post,
    path = "/operationApprovalRequests/{id}/{action}",
    tag = "graph",
    summary = "Approve, reject or cancel (cancelApproval) a request",
    params(("id" = String, Path, description = "the request's id"), ("action" = String, Path, description = "approve, reject or cancelApproval")),
    request_body(content = ref("#/components/schemas/GraphDecisionBody"), description = "Graph's JSON members (`@odata.*` annotations are ignored)"),
    responses(
        (status = 200, description = "the request's new status", body = ref("#/components/schemas/GraphStatusValue"))
    )
)]
async fn request_action(
    State(app): State<AppState>,
    Caller(principal): Caller,
    Path((id, name)): Path<(String, String)>,
    uri: OriginalUri,
    body: Body,
) -> GraphResult<Response> {
    let ctx = Ctx::new(&app, &uri);
    parse_query(&ctx.query, NO_OPTIONS)?;
    body.only(&name, &["justification", "approvalSource", CHANGE_DIGEST_EXTENSION])?;
    if let Some(source) = body.string("approvalSource")? {
        if !mapping::APPROVAL_SOURCES.contains(&source.as_str()) {
            return Err(GraphError(ApiError::validation(format!("'{source}' is not an operationApprovalSource"))));
        }
    }
    let notes = body.string("justification")?.filter(|j| !j.trim().is_empty());
    let seen_digest = body.string(CHANGE_DIGEST_EXTENSION)?;
    let action = match name.as_str() {
        "approve" => Action::Decide { decision: Decision::Approve, notes, seen_digest, step_up: None },
        "reject" => Action::Decide { decision: Decision::Reject, notes, seen_digest, step_up: None },
        "cancelApproval" => Action::Cancel,
        _ => {
            return Err(GraphError(ApiError::not_found(format!(
                "'{name}' is not an action of operationApprovalRequest"
            ))))
        }
    };
    let record = act(&app, &principal, &id, action).await?;
    let status = graph_status(record.state().effective_status(app.now()));
    Ok(Json(json!({"@odata.context": ctx.context("Edm.String"), "value": status})).into_response())
}
