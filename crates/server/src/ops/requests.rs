//! Approval requests: lists, one request as its caller sees it, the decisions, and the events
//! the live stream sends.

use super::Paged;
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, Principal};
use crate::AppState;
use countersign_core::audit::AuditRecord;
use countersign_core::capabilities::{awaits_decision_from, capabilities, Capabilities};
use countersign_core::eligibility::ineligibility;
use countersign_core::error::ErrorCode;
use countersign_core::list_window::listed_since;
use countersign_core::permission::read_permission;
use countersign_core::policy::AccessPolicy;
use countersign_core::profile::ResourceType;
use countersign_core::request::{Decision, RequestStatus};
use countersign_core::step_up::{
    step_up_challenge_text, Decision as SignedDecision, StepUp, StepUpAssertion, StepUpContext,
};
use countersign_store::{DependencyNow, RequestFilter, RequestRecord, RequestView};
use countersign_store::{StepUpInput, StepUpIntent};

/// A request as one caller sees it: its status now, and what this caller may do with it.
pub struct RequestForCaller {
    pub record: RequestRecord,
    /// The status at this moment (an open request past its time is expired, R11).
    pub status: RequestStatus,
    pub can_approve: bool,
    pub can_cancel: bool,
    pub can_complete: bool,
    /// On the request's own page: every member of its approver groups, judged for it.
    pub approvers: Option<Vec<ApproverStanding>>,
    /// R17: what the change depends on, frozen at submission beside what it is now; read for
    /// one request at a time (its page, an action's answer), `None` in lists.
    pub dependencies: Option<Vec<DependencyNow>>,
    /// R21: what a decision on it must carry; read for one request at a time, `None` in lists.
    pub step_up: Option<StepUp>,
}

/// One member of a request's approver groups, as R2 and R16 judge them for this request now.
pub struct ApproverStanding {
    pub account_id: String,
    pub username: String,
    pub display_name: String,
    /// R2: may approve requests of this type at all; else why not.
    pub eligible: bool,
    pub reasons: Vec<String>,
    /// R16: independent of the requester and of the approvals already counted; else the link.
    pub independent: bool,
    pub link: Option<String>,
}

/// Reads requests for one caller: whether they may see each one, and what they may do.
pub struct RequestReader<'a> {
    app: &'a AppState,
    principal: &'a Principal,
    /// Read on first need, once per page: most requests (the requester's own, a decided one)
    /// never need a policy (countersign-bench, lifecycle profile).
    policies: tokio::sync::OnceCell<Vec<AccessPolicy>>,
}

impl<'a> RequestReader<'a> {
    pub fn new(app: &'a AppState, principal: &'a Principal) -> Self {
        RequestReader { app, principal, policies: tokio::sync::OnceCell::new() }
    }

    async fn approver_groups(&self, record: &RequestRecord) -> ApiResult<Vec<String>> {
        let policies = self.policies.get_or_try_init(|| self.app.store.policies()).await?;
        let live = record.policy_id.as_ref().and_then(|id| policies.iter().find(|p| &p.id == id));
        match live {
            Some(policy) => Ok(policy.approver_group_ids.clone()),
            None => Ok(self.app.store.approver_groups_of(record).await?),
        }
    }

    /// Whether the caller may see this request at all.
    pub async fn visible(&self, record: &RequestRecord) -> ApiResult<bool> {
        let viewer = self.principal.viewer();
        if viewer.sees_directly(&record.requested_by, record.resource_type) {
            return Ok(true);
        }
        Ok(viewer.sees_as_approver(&self.approver_groups(record).await?))
    }

    /// The request with its status now and the caller's capabilities.
    pub async fn view(&self, record: RequestRecord) -> ApiResult<RequestForCaller> {
        let now = self.app.now();
        let state = record.state();
        let me = &self.principal.account.id;
        let mut eligible = awaits_decision_from(&state, me, now)
            && ineligibility(&self.principal.candidate(), &self.approver_groups(&record).await?, record.resource_type)
                .is_empty();
        if eligible {
            // R16: the buttons appear only where the decision would be counted.
            eligible = independence(self.app, &record, &[me.as_str()]).await?.remove(me).is_none();
        }
        let Capabilities { can_approve, can_cancel, can_complete } = capabilities(&state, me, eligible, now);
        Ok(RequestForCaller {
            status: state.effective_status(now),
            can_approve,
            can_cancel,
            can_complete,
            approvers: None,
            dependencies: None,
            step_up: None,
            record,
        })
    }

    /// Every member of the request's approver groups: R2's verdict and R16's, for this request.
    pub async fn approvers(&self, record: &RequestRecord) -> ApiResult<Vec<ApproverStanding>> {
        let groups = self.approver_groups(record).await?;
        let mut rows = self.app.store.approver_eligibility(&groups, record.resource_type).await?;
        // A member of several approver groups is one approver.
        rows.sort_by(|a, b| a.username.cmp(&b.username).then(b.eligible.cmp(&a.eligible)));
        rows.dedup_by(|a, b| a.account_id == b.account_id);
        let ids: Vec<&str> = rows.iter().map(|r| r.account_id.as_str()).collect();
        let mut links = independence(self.app, record, &ids).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let link = links.remove(&row.account_id);
                ApproverStanding {
                    independent: link.is_none(),
                    link,
                    account_id: row.account_id,
                    username: row.username,
                    display_name: row.display_name,
                    eligible: row.eligible,
                    reasons: row.reasons,
                }
            })
            .collect())
    }

    /// Every record, viewed.
    pub async fn view_all(&self, records: Vec<RequestRecord>) -> ApiResult<Vec<RequestForCaller>> {
        let mut views = Vec::with_capacity(records.len());
        for record in records {
            views.push(self.view(record).await?);
        }
        Ok(views)
    }
}

/// Which requests to list; every field is optional, and an empty one means "any".
#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    /// `mine` (the default), `received` or `all`.
    pub view: Option<String>,
    pub status: Option<String>,
    pub resource_type: Option<String>,
    pub object_id: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// One page of requests for the caller, newest first, and the cursor of the next page.
pub async fn list(app: &AppState, principal: &Principal, q: &ListQuery) -> ApiResult<Paged<RequestRecord>> {
    let now = app.now();
    // Exact on read (R11): nothing past its time is listed as open.
    app.store.expire_due(now).await?;
    let view = match q.view.as_deref().unwrap_or("mine") {
        "mine" => RequestView::Mine(principal.account.id.clone()),
        "received" => RequestView::Received(principal.group_ids.clone()),
        "all" => RequestView::All,
        other => return Err(ApiError::validation(format!("view must be mine, received or all, not '{other}'"))),
    };
    let resource_types = matches!(view, RequestView::All)
        .then(|| ResourceType::ALL.into_iter().filter(|t| principal.has(read_permission(*t))).collect::<Vec<_>>());
    let given = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let status = given(&q.status).map(|s| s.parse::<RequestStatus>()).transpose().map_err(ApiError::validation)?;
    let resource_type =
        given(&q.resource_type).map(|s| s.parse::<ResourceType>()).transpose().map_err(ApiError::validation)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::validation("limit must be between 1 and 200"));
    }
    let filter = RequestFilter {
        view,
        status,
        resource_type,
        object_id: q.object_id.as_deref().map(parse_id).transpose()?,
        resource_types,
        since: listed_since(q.since.as_deref().map(crate::time::parse).transpose()?, now),
        until: q.until.as_deref().map(crate::time::parse).transpose()?,
        before_id: given(&q.cursor).as_deref().map(parse_id).transpose()?,
        limit,
    };
    let page = app.store.requests(&filter).await?;
    Ok(Paged { items: page.records, next_cursor: page.next_before })
}

/// [`list`], each request viewed by the caller.
pub async fn list_viewed(app: &AppState, principal: &Principal, q: &ListQuery) -> ApiResult<Paged<RequestForCaller>> {
    let Paged { items, next_cursor } = list(app, principal, q).await?;
    let items = RequestReader::new(app, principal).view_all(items).await?;
    Ok(Paged { items, next_cursor })
}

/// A request the caller may see, or 404 (its existence is not revealed).
pub async fn visible_request(app: &AppState, principal: &Principal, id: &str) -> ApiResult<RequestRecord> {
    let id = parse_id(id)?;
    let record = app.store.request(&id).await?;
    if !RequestReader::new(app, principal).visible(&record).await? {
        return Err(ApiError::not_found(format!("request {id} does not exist")));
    }
    Ok(record)
}

/// R16 for each of `candidates`: why they are not independent of the request's requester or of
/// the approvals already counted (absent: independent).
async fn independence(
    app: &AppState,
    record: &RequestRecord,
    candidates: &[&str],
) -> ApiResult<std::collections::HashMap<String, String>> {
    let counted: Vec<&str> =
        record.approvals.iter().filter(|a| a.decision == Decision::Approve).map(|a| a.approver_id.as_str()).collect();
    let control = app.store.request_control(record, candidates, app.now()).await?;
    let mut links = std::collections::HashMap::new();
    for candidate in candidates {
        if *candidate == record.requested_by {
            links.insert((*candidate).to_owned(), "is the requester, who never decides their own request".to_owned());
            continue;
        }
        let others: Vec<&str> = counted.iter().copied().filter(|c| c != candidate).collect();
        if let Err(refused) = control.ensure_independent(candidate, &record.requested_by, &others) {
            links.insert((*candidate).to_owned(), refused.to_string());
        }
    }
    Ok(links)
}

/// One request the caller may see, viewed, with its approvers' standing.
pub async fn get(app: &AppState, principal: &Principal, id: &str) -> ApiResult<RequestForCaller> {
    let record = visible_request(app, principal, id).await?;
    let approvers = RequestReader::new(app, principal).approvers(&record).await?;
    let step_up = Some(app.store.step_up_of(record.policy_id.as_deref()).await?);
    Ok(RequestForCaller { approvers: Some(approvers), step_up, ..view(app, principal, record).await? })
}

/// The standing of every member of a visible request's approver groups (R2, R16).
pub async fn approvers_of(
    app: &AppState,
    principal: &Principal,
    record: &RequestRecord,
) -> ApiResult<Vec<ApproverStanding>> {
    RequestReader::new(app, principal).approvers(record).await
}

/// A request the caller already has (just made or acted on), viewed, with its dependencies
/// as they are now (R17: approvers see them by name, groups with their current members).
pub async fn view(app: &AppState, principal: &Principal, record: RequestRecord) -> ApiResult<RequestForCaller> {
    let dependencies = app.store.dependencies_now(&record.dependencies).await?;
    let mut viewed = RequestReader::new(app, principal).view(record).await?;
    viewed.dependencies = Some(dependencies);
    Ok(viewed)
}

/// The latest 20 requests about one object, of any age (the object's page: its caller may
/// already read the object, and so every request about it).
pub async fn history_of(app: &AppState, resource_type: ResourceType, object_id: &str) -> ApiResult<Vec<RequestRecord>> {
    let filter = RequestFilter {
        view: RequestView::All,
        status: None,
        resource_type: Some(resource_type),
        object_id: Some(object_id.to_owned()),
        resource_types: None,
        since: 0,
        until: None,
        before_id: None,
        limit: 20,
    };
    Ok(app.store.requests(&filter).await?.records)
}

/// What the caller does to a request.
pub enum Action {
    /// R12: `seen_digest` is the `changeDigest` the approver reviewed, when the client sends it.
    Decide {
        decision: Decision,
        notes: Option<String>,
        seen_digest: Option<String>,
        /// R21: the passkey assertion the decision is confirmed with, and its nonce.
        step_up: Option<StepUpSent>,
    },
    Cancel,
    Complete,
}

/// Approve, reject, cancel or complete a request the caller can see (the rules are the store's).
pub async fn act(app: &AppState, principal: &Principal, id: &str, action: Action) -> ApiResult<RequestRecord> {
    let id = parse_id(id)?;
    let now = app.now();
    let actor = principal.actor();
    // The store decides, under the request's lock, whether the caller may see it at all.
    let viewer = principal.viewer();
    let done = match action {
        Action::Decide { decision, notes, seen_digest, step_up } => {
            let input = step_up.as_ref().map(|sent| StepUpInput {
                nonce: &sent.nonce,
                assertion: &sent.assertion,
                relying_party: &app.webauthn.party,
            });
            let decided = app
                .store
                .decide_with_step_up(
                    &actor,
                    viewer,
                    &id,
                    decision,
                    notes.as_deref(),
                    seen_digest.as_deref(),
                    input,
                    now,
                )
                .await
                .map_err(|e| with_step_up_link(app, &id, decision, e.into()))?;
            app.metrics.observe_decision((now - decided.requested_at) as f64 / 1000.0);
            decided
        }
        Action::Cancel => app.store.cancel(&actor, viewer, &id, now).await?,
        Action::Complete => app.store.complete(&actor, viewer, &id, now).await?,
    };
    Ok(done)
}

/// R21: a decision's confirmation, as the browser made it.
#[derive(Debug, Clone)]
pub struct StepUpSent {
    pub nonce: String,
    pub assertion: StepUpAssertion,
}

/// R21 for callers without a browser (API, CLI, Graph with a bearer token): `step_up_required`
/// carries a link to the request's page, where the approver confirms with their passkey
/// (a hand-off bound to this request and decision; the page signs its current digest).
fn with_step_up_link(app: &AppState, id: &str, decision: Decision, error: ApiError) -> ApiError {
    if error.code != ErrorCode::StepUpRequired {
        return error;
    }
    let link = format!("{}/requests/{id}?decide={}", app.config.public_url.trim_end_matches('/'), decision.as_str());
    let mut error = error;
    error.detail = format!("{} Confirm it here: {link}", error.detail);
    error.extra = Some(serde_json::json!({ "link": link }));
    error
}

/// The options for `navigator.credentials.get` that confirm a decision (R21).
pub struct StepUpBegun {
    pub nonce: String,
    pub options: serde_json::Value,
}

/// How long a step-up may take, from its options to the decision.
pub const STEP_UP_TTL: countersign_core::Millis = 5 * 60 * 1000;

/// Begins confirming a decision on a request the caller may see (R21): a nonce issued to the
/// caller for this request and decision, and the challenge derived from it and the request's
/// `changeDigest` as it is now, for the caller's passkeys.
pub async fn begin_step_up(
    app: &AppState,
    principal: &Principal,
    id: &str,
    decision: Decision,
) -> ApiResult<StepUpBegun> {
    let record = visible_request(app, principal, id).await?;
    let passkeys = app.store.passkeys_of(&principal.account.id).await?;
    if passkeys.is_empty() {
        return Err(ApiError::validation(
            "you have no passkey to confirm decisions with: add one on your account page first",
        ));
    }
    let nonce = crate::auth::random_secret();
    let digest = record.change_digest();
    let signed = match decision {
        Decision::Approve => SignedDecision::Approve,
        Decision::Reject => SignedDecision::Reject,
    };
    let context = StepUpContext { request_id: &record.id, change_digest: &digest, decision: signed, nonce: &nonce };
    let challenge = step_up_challenge_text(&context);
    let now = app.now();
    let intent = StepUpIntent { request_id: record.id.clone(), decision: signed.as_str().to_owned() };
    app.store.begin_step_up(&nonce, &principal.account.id, &intent, now, now + STEP_UP_TTL).await?;
    let allow: Vec<serde_json::Value> =
        passkeys.iter().map(|p| serde_json::json!({ "type": "public-key", "id": p.record.credential_id })).collect();
    let options = serde_json::json!({
        "publicKey": {
            "challenge": challenge,
            "rpId": app.webauthn.party.id,
            "allowCredentials": allow,
            "userVerification": "required",
            "timeout": STEP_UP_TTL,
        }
    });
    Ok(StepUpBegun { nonce, options })
}

/// Something that happened to a request the caller may see.
pub struct RequestEvent {
    pub entry: AuditRecord,
    pub record: RequestRecord,
    /// The request's status now.
    pub status: RequestStatus,
}

/// Where a caller's event stream starts when it does not resume: after the newest entry.
pub async fn event_stream_start(app: &AppState) -> ApiResult<i64> {
    Ok(app.store.audit_head_seq().await?)
}

/// Request events after `seq` that the caller may see (at most 100 entries read), and the new
/// cursor. The stream tails the audit log, which every replica shares.
pub async fn events_after(app: &AppState, principal: &Principal, seq: i64) -> ApiResult<(Vec<RequestEvent>, i64)> {
    let entries = app.store.request_events_after(seq, 100).await?;
    let mut cursor = seq;
    let mut events = Vec::new();
    let reader = RequestReader::new(app, principal);
    for entry in entries {
        cursor = entry.seq;
        let Some(request_id) = &entry.target_id else { continue };
        let Ok(record) = app.store.request(request_id).await else { continue };
        if !reader.visible(&record).await? {
            continue;
        }
        let status = record.state().effective_status(app.now());
        events.push(RequestEvent { entry, record, status });
    }
    Ok((events, cursor))
}
