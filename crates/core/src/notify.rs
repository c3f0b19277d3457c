//! Notifications: which events there are, who hears of each, and what they are told.

use crate::profile::{Operation, ResourceType};
use crate::request::RequestStatus;
use crate::Millis;
use serde::{Deserialize, Serialize};

crate::named_enum! {
    /// Something that happened to a request, worth telling people about.
    pub enum EventKind: "event kind" {
        Created = "request.created",
        ApprovalRecorded = "request.approvalRecorded",
        Approved = "request.approved",
        Rejected = "request.rejected",
        Cancelled = "request.cancelled",
        Completed = "request.completed",
        Failed = "request.failed",
        Expired = "request.expired",
        /// A reminder to approvers before an open request expires.
        ExpiringSoon = "request.expiringSoon",
    }
}

impl EventKind {
    /// A short headline for people: "New approval request", "Request rejected", …
    pub fn headline(self) -> &'static str {
        match self {
            EventKind::Created => "New approval request",
            EventKind::ApprovalRecorded => "Approval recorded",
            EventKind::Approved => "Request approved",
            EventKind::Rejected => "Request rejected",
            EventKind::Cancelled => "Request cancelled",
            EventKind::Completed => "Change applied",
            EventKind::Failed => "Change failed",
            EventKind::Expired => "Request expired",
            EventKind::ExpiringSoon => "Request expiring soon",
        }
    }

    /// Whether a person may opt out of e-mails of this kind about `profile_type`. A change that
    /// was applied or failed, and anything about who may approve (access policies, approver
    /// groups and accounts, RBAC), is security-relevant: everyone concerned always hears of it.
    pub fn can_opt_out(self, profile_type: crate::profile::ProfileType) -> bool {
        use crate::profile::ProfileType;
        let guards = matches!(profile_type, ProfileType::OperationApprovalPolicy | ProfileType::Role);
        !guards && !matches!(self, EventKind::Completed | EventKind::Failed)
    }

    /// Approvers hear of new requests; the requester hears of every status change of their own.
    pub fn audience(self) -> Audience {
        match self {
            EventKind::Created | EventKind::ExpiringSoon => Audience::Approvers,
            _ => Audience::Requester,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Approvers,
    Requester,
}

/// Who receives an e-mail about `kind`: the eligible approvers (never the requester) or the
/// requester. Inputs are account ids; the result keeps the given order without duplicates.
pub fn recipients(kind: EventKind, requester: &str, eligible_approvers: &[String]) -> Vec<String> {
    match kind.audience() {
        Audience::Requester => vec![requester.to_owned()],
        Audience::Approvers => {
            let mut out: Vec<String> = Vec::new();
            for id in eligible_approvers {
                if id != requester && !out.contains(id) {
                    out.push(id.clone());
                }
            }
            out
        }
    }
}

crate::named_enum! {
    /// Where a message in the outbox is: waiting for its next attempt, delivered, or given up on.
    pub enum DeliveryStatus: "delivery status" {
        Pending = "pending",
        Delivered = "delivered",
        Dead = "dead",
    }
}

/// A notification as the outbox keeps it and every channel receives it (webhooks as JSON; chat
/// and e-mail rendered from it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notice {
    /// Stable across retries, so receivers can dedupe.
    pub id: String,
    /// An [`EventKind`]'s name, or `test` for a channel's test message.
    #[serde(rename = "type")]
    pub kind: String,
    pub headline: String,
    pub occurred_at: Millis,
    /// The request the event is about; none for a test message.
    pub request: Option<NoticeRequest>,
}

/// What a notice says about its request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NoticeRequest {
    pub id: String,
    pub object_name: String,
    pub resource_type: ResourceType,
    pub operation: Operation,
    pub status: RequestStatus,
    pub justification: String,
    pub requested_by: NoticeActor,
    /// R20: who gave the decision this notice is about (an approval or a rejection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<NoticeActor>,
    /// Approvals counted so far, against `required_approvals`.
    pub approvals: i64,
    pub required_approvals: i64,
    /// The approver's notes of a decision.
    pub notes: Option<String>,
    pub expires_at: Millis,
    pub failure_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NoticeActor {
    pub id: String,
    pub display_name: String,
    /// R20: the immutable username, shown beside the display name. Empty in notices queued
    /// before it was recorded.
    #[serde(default)]
    pub username: String,
}

impl NoticeActor {
    /// R20: "Display Name (@username)", as every channel names a person. Raw: each channel
    /// escapes it for its markup.
    pub fn named(&self) -> String {
        if self.username.is_empty() {
            self.display_name.clone()
        } else {
            format!("{} (@{})", self.display_name, self.username)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approvers_hear_of_new_requests_never_the_requester() {
        let approvers = vec!["bob".to_string(), "alice".to_string(), "bob".to_string(), "carol".to_string()];
        assert_eq!(recipients(EventKind::Created, "alice", &approvers), vec!["bob", "carol"]);
    }

    #[test]
    fn security_relevant_events_cannot_be_opted_out_of() {
        use crate::profile::ProfileType;
        assert!(EventKind::ApprovalRecorded.can_opt_out(ProfileType::App));
        assert!(EventKind::Created.can_opt_out(ProfileType::Script));
        assert!(!EventKind::Completed.can_opt_out(ProfileType::App), "an applied change is always told");
        assert!(!EventKind::Failed.can_opt_out(ProfileType::App));
        assert!(!EventKind::Created.can_opt_out(ProfileType::OperationApprovalPolicy), "guards are always told");
        assert!(!EventKind::ApprovalRecorded.can_opt_out(ProfileType::Role));
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>(), Ok(kind));
        }
    }

    #[test]
    fn people_are_named_with_their_username() {
        let actor = NoticeActor { id: "a1".into(), display_name: "Alice Example".into(), username: "alice".into() };
        assert_eq!(actor.named(), "Alice Example (@alice)");
        // A notice queued before usernames were recorded still reads back, naming who it can.
        let old: NoticeActor = serde_json::from_str(r#"{"id":"a1","displayName":"Alice"}"#).unwrap();
        assert_eq!(old.named(), "Alice");
    }

    #[test]
    fn reminders_go_to_the_approvers() {
        assert_eq!(recipients(EventKind::ExpiringSoon, "alice", &["bob".to_string()]), vec!["bob"]);
    }

    #[test]
    fn the_requester_hears_of_every_status_change() {
        for kind in
            [EventKind::Approved, EventKind::Rejected, EventKind::Completed, EventKind::Failed, EventKind::Expired]
        {
            assert_eq!(recipients(kind, "alice", &["bob".to_string()]), vec!["alice"]);
        }
        assert_eq!(serde_json::to_string(&EventKind::Rejected).unwrap(), "\"request.rejected\"");
    }
}
