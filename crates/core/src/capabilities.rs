//! What the caller may do with a request now: the `canApprove`, `canCancel` and `canComplete` of
//! every request view. [`RequestState`]'s transitions enforce the rules; this says beforehand
//! which of them would succeed, so an interface offers only those.

use crate::request::{RequestState, RequestStatus};
use crate::Millis;

/// The actions open to one caller on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    pub can_approve: bool,
    pub can_cancel: bool,
    pub can_complete: bool,
}

/// Whether the request waits for a decision that this caller could give: it needs approval, the
/// caller did not request it (R3) and has not decided it yet (R7). Eligibility (R2) is the
/// remaining question, and it needs the approver groups, so it is asked only when this holds.
pub fn awaits_decision_from(request: &RequestState, caller_id: &str, now: Millis) -> bool {
    request.effective_status(now) == RequestStatus::NeedsApproval
        && request.requested_by != caller_id
        && !request.approvals.iter().any(|a| a.approver_id == caller_id)
}

/// The caller's capabilities; `eligible` is whether R2 finds the caller an eligible approver, and
/// counts only where [`awaits_decision_from`] holds.
pub fn capabilities(request: &RequestState, caller_id: &str, eligible: bool, now: Millis) -> Capabilities {
    let status = request.effective_status(now);
    let is_requester = request.requested_by == caller_id;
    Capabilities {
        can_approve: eligible && awaits_decision_from(request, caller_id, now),
        can_cancel: is_requester && status.is_open(),
        can_complete: is_requester && status == RequestStatus::Approved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Completion;
    use crate::request::{Approval, Decision};

    const DAY: Millis = crate::MILLIS_PER_DAY;

    fn request(status: RequestStatus, approvals: &[&str]) -> RequestState {
        RequestState {
            status,
            requested_by: "alice".into(),
            required_approvals: 2,
            completion: Completion::Requester,
            approvals: approvals
                .iter()
                .map(|id| Approval { approver_id: (*id).into(), decision: Decision::Approve, notes: None, at: 0 })
                .collect(),
            expires_at: 30 * DAY,
            ttl_ms: 30 * DAY,
        }
    }

    #[test]
    fn an_eligible_approver_who_has_not_decided_may_approve() {
        let r = request(RequestStatus::NeedsApproval, &["carol"]);
        assert!(capabilities(&r, "bob", true, 0).can_approve);
        assert!(!capabilities(&r, "bob", false, 0).can_approve, "R2: only an eligible approver");
        assert!(!capabilities(&r, "carol", true, 0).can_approve, "R7: each approver counts once");
        assert!(!capabilities(&r, "alice", true, 0).can_approve, "R3: never one's own request");
        assert!(!capabilities(&r, "bob", true, 31 * DAY).can_approve, "an expired request takes no decision");
        assert!(!capabilities(&request(RequestStatus::Approved, &[]), "bob", true, 0).can_approve);
    }

    #[test]
    fn only_the_requester_cancels_an_open_request_and_completes_an_approved_one() {
        let open = request(RequestStatus::NeedsApproval, &[]);
        assert_eq!(
            capabilities(&open, "alice", false, 0),
            Capabilities { can_approve: false, can_cancel: true, can_complete: false }
        );
        assert!(!capabilities(&open, "bob", true, 0).can_cancel, "only the requester cancels");
        let approved = request(RequestStatus::Approved, &["bob", "carol"]);
        assert_eq!(
            capabilities(&approved, "alice", false, 0),
            Capabilities { can_approve: false, can_cancel: true, can_complete: true }
        );
        assert_eq!(capabilities(&approved, "bob", false, 0), Capabilities::default());
        assert_eq!(capabilities(&approved, "alice", false, 31 * DAY), Capabilities::default(), "expired");
    }
}
