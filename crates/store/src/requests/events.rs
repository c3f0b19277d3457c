//! The notification outbox rows a request event writes, in the same transaction as the event
//! (so a committed change is never left untold); `notify` delivers them.

use super::RequestRecord;
use crate::approvers::approver_groups;
use crate::directory::{account_by_id, members_as_candidates};
use crate::notify::username_of;
use crate::rows::{json, text};
use crate::{new_id, Result, WriteTx};
use countersign_core::eligibility::ineligibility;
use countersign_core::notify::{recipients, Audience, EventKind, Notice, NoticeActor, NoticeRequest};
use countersign_core::request::{Decision, RequestStatus};
use countersign_core::Millis;
use serde_json::json;

/// The event as every channel receives it: a stable `id` receivers can dedupe on. R20: the
/// requester, and the approver of a decision, are named with their usernames.
async fn event_notice(
    tx: &mut WriteTx,
    event_id: &str,
    kind: EventKind,
    record: &RequestRecord,
    status: RequestStatus,
    notes: Option<&str>,
    now: Millis,
) -> Result<Notice> {
    let requested_by = NoticeActor {
        id: record.requested_by.clone(),
        display_name: record.requested_by_name.clone(),
        username: username_of(tx.conn(), &record.requested_by).await?,
    };
    // The decision being told of is the one just recorded: the last approval.
    let decided_by = match (kind, record.approvals.last()) {
        (EventKind::ApprovalRecorded | EventKind::Approved | EventKind::Rejected, Some(last)) => Some(NoticeActor {
            id: last.approver_id.clone(),
            display_name: last.approver_name.clone(),
            username: username_of(tx.conn(), &last.approver_id).await?,
        }),
        _ => None,
    };
    let approvals = record.approvals.iter().filter(|a| a.decision == Decision::Approve).count();
    Ok(Notice {
        id: event_id.to_owned(),
        kind: kind.as_str().to_owned(),
        headline: kind.headline().to_owned(),
        occurred_at: now,
        request: Some(NoticeRequest {
            id: record.id.clone(),
            object_name: record.object_name.clone(),
            resource_type: record.resource_type,
            operation: record.operation,
            status,
            justification: record.justification.clone(),
            requested_by,
            decided_by,
            approvals: i64::try_from(approvals).unwrap_or(i64::MAX),
            required_approvals: record.required_approvals,
            notes: notes.map(str::to_owned),
            expires_at: record.expires_at,
            failure_reason: record.failure_reason.clone(),
        }),
    })
}

/// Queues `kind` for `record` on every enabled channel, inside the caller's transaction.
pub(crate) async fn enqueue(
    tx: &mut WriteTx,
    record: &RequestRecord,
    status: RequestStatus,
    kind: EventKind,
    notes: Option<&str>,
    now: Millis,
) -> Result<()> {
    let channels = sqlx::query("SELECT id, kind FROM notification_channels WHERE enabled = 1 ORDER BY id")
        .fetch_all(tx.conn())
        .await?;
    if channels.is_empty() {
        return Ok(());
    }
    let event_id = new_id();
    let payload = json!(event_notice(tx, &event_id, kind, record, status, notes, now).await?).to_string();
    let mut emails: Option<Vec<String>> = None;
    for channel in &channels {
        let channel_id = text(channel, "id")?;
        let targets = if text(channel, "kind")? == "email" {
            if emails.is_none() {
                emails = Some(email_recipients(tx, record, kind).await?);
            }
            emails.clone().unwrap_or_default().into_iter().map(Some).collect::<Vec<_>>()
        } else {
            vec![None]
        };
        for recipient in targets {
            sqlx::query(
                "INSERT INTO notification_outbox (id, event_id, event_type, request_id, channel_id, recipient, payload, \
                 status, attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8)",
            )
            .bind(new_id())
            .bind(&event_id)
            .bind(kind.as_str())
            .bind(&record.id)
            .bind(&channel_id)
            .bind(recipient)
            .bind(&payload)
            .bind(now)
            .execute(tx.conn())
            .await?;
        }
    }
    Ok(())
}

/// E-mail addresses of who hears of `kind`: the approvers eligible now (never the requester),
/// or the requester.
async fn email_recipients(tx: &mut WriteTx, record: &RequestRecord, kind: EventKind) -> Result<Vec<String>> {
    let eligible = if kind.audience() == Audience::Approvers {
        let groups = approver_groups(tx.conn(), record.policy_id.as_deref(), &record.id).await?;
        members_as_candidates(tx.conn(), &groups)
            .await?
            .into_iter()
            .filter(|(candidate, _, _)| ineligibility(candidate, &groups, record.resource_type).is_empty())
            .map(|(candidate, _, _)| candidate.id)
            .collect()
    } else {
        vec![]
    };
    let mut addresses = Vec::new();
    for id in recipients(kind, &record.requested_by, &eligible) {
        let Some(account) = account_by_id(tx.conn(), &id).await? else { continue };
        let opted_out =
            kind.can_opt_out(record.profile_type) && opt_outs(tx, &id).await?.iter().any(|k| k == kind.as_str());
        if let (Some(email), false) = (account.email, opted_out) {
            if !addresses.contains(&email) {
                addresses.push(email);
            }
        }
    }
    Ok(addresses)
}

async fn opt_outs(tx: &mut WriteTx, account_id: &str) -> Result<Vec<String>> {
    let row = sqlx::query("SELECT notification_opt_outs FROM accounts WHERE id = $1")
        .bind(account_id)
        .fetch_one(tx.conn())
        .await?;
    json(&row, "notification_opt_outs")
}
