//! The approval request state machine (R3, R6, R7, R8, R10, R11).

use crate::control::ControlGraph;
use crate::eligibility::{describe, Ineligibility};
use crate::policy::Completion;
use crate::{DomainError, Millis};

crate::named_enum! {
    /// Where a request is in its life (DESIGN §3, statuses and transitions).
    pub enum RequestStatus: "status" {
        NeedsApproval = "needsApproval",
        Approved = "approved",
        Completed = "completed",
        Rejected = "rejected",
        Cancelled = "cancelled",
        Expired = "expired",
        Failed = "failed",
    }
}

impl RequestStatus {
    /// R4: an object may have only one request in these statuses.
    pub const OPEN: [RequestStatus; 2] = [RequestStatus::NeedsApproval, RequestStatus::Approved];

    pub fn is_open(self) -> bool {
        Self::OPEN.contains(&self)
    }

    /// The transitions of DESIGN §3; every other one is refused.
    pub fn can_become(self, to: RequestStatus) -> bool {
        use RequestStatus::*;
        matches!(
            (self, to),
            (NeedsApproval, Approved | Rejected | Cancelled | Expired)
                | (Approved, Completed | Failed | Cancelled | Expired)
        )
    }

    pub fn transition(self, to: RequestStatus) -> Result<RequestStatus, DomainError> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(DomainError::InvalidTransition { from: self, to })
        }
    }
}

crate::named_enum! {
    /// An approver's answer (R6).
    pub enum Decision: "decision" {
        Approve = "approve",
        Reject = "reject",
    }
}

impl Decision {
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// The status a decision moves a request to.
    pub fn target(self) -> RequestStatus {
        match self {
            Decision::Approve => RequestStatus::Approved,
            Decision::Reject => RequestStatus::Rejected,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub approver_id: String,
    pub decision: Decision,
    pub notes: Option<String>,
    pub at: Millis,
}

/// The part of a request that the rules act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestState {
    pub status: RequestStatus,
    pub requested_by: String,
    pub required_approvals: i64,
    pub completion: Completion,
    pub approvals: Vec<Approval>,
    pub expires_at: Millis,
    pub ttl_ms: Millis,
}

/// What a decision did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionOutcome {
    /// R7: counted, but the quorum is not reached yet.
    Counted {
        approvals: i64,
        required: i64,
    },
    /// The quorum is reached; with `apply_now` (R8 automatic) the change is applied at once.
    Approved {
        apply_now: bool,
    },
    Rejected,
}

impl RequestState {
    /// R11: a request past its time is expired, even before the sweep has written it.
    pub fn is_due(&self, now: Millis) -> bool {
        self.status.is_open() && now >= self.expires_at
    }

    pub fn effective_status(&self, now: Millis) -> RequestStatus {
        if self.is_due(now) {
            RequestStatus::Expired
        } else {
            self.status
        }
    }

    /// R11: moves a due request to `expired`; true if it did.
    pub fn expire_if_due(&mut self, now: Millis) -> bool {
        if self.is_due(now) {
            self.status = RequestStatus::Expired;
            true
        } else {
            false
        }
    }

    fn refuse_if_due(&self, now: Millis, to: RequestStatus) -> Result<(), DomainError> {
        if self.is_due(now) {
            return Err(DomainError::InvalidTransition { from: RequestStatus::Expired, to });
        }
        Ok(())
    }

    pub fn approval_count(&self) -> i64 {
        self.approvals.iter().filter(|a| a.decision == Decision::Approve).count() as i64
    }

    /// R3, R2, R16, R6, R7: `approver` decides. `ineligible` is R2's verdict on the approver at
    /// this moment (see `eligibility::ineligibility`); `control` is who controls the approver, the
    /// requester and the approvers already counted (R16).
    pub fn decide(
        &mut self,
        approver_id: &str,
        ineligible: &[Ineligibility],
        control: &ControlGraph,
        decision: Decision,
        notes: Option<String>,
        now: Millis,
    ) -> Result<DecisionOutcome, DomainError> {
        let target = decision.target();
        self.refuse_if_due(now, target)?;
        if self.status != RequestStatus::NeedsApproval {
            return Err(DomainError::InvalidTransition { from: self.status, to: target });
        }
        if approver_id == self.requested_by {
            return Err(DomainError::SelfApprovalForbidden);
        }
        if !ineligible.is_empty() {
            return Err(DomainError::NotAnApprover(describe(ineligible)));
        }
        if self.approvals.iter().any(|a| a.approver_id == approver_id) {
            return Err(DomainError::AlreadyApproved);
        }
        // R16: a rejection needs independence from the requester only; an approval counts only
        // if it is also independent of every approval already counted.
        let counted: Vec<&str> = match decision {
            Decision::Approve => self
                .approvals
                .iter()
                .filter(|a| a.decision == Decision::Approve)
                .map(|a| a.approver_id.as_str())
                .collect(),
            Decision::Reject => vec![],
        };
        control.ensure_independent(approver_id, &self.requested_by, &counted)?;
        self.approvals.push(Approval { approver_id: approver_id.to_owned(), decision, notes, at: now });
        // Any action restarts the clock (R11: "sees no action").
        self.expires_at = now.saturating_add(self.ttl_ms);
        match decision {
            Decision::Reject => {
                self.status = self.status.transition(RequestStatus::Rejected)?;
                Ok(DecisionOutcome::Rejected)
            }
            Decision::Approve => {
                let approvals = self.approval_count();
                if approvals < self.required_approvals {
                    return Ok(DecisionOutcome::Counted { approvals, required: self.required_approvals });
                }
                self.status = self.status.transition(RequestStatus::Approved)?;
                Ok(DecisionOutcome::Approved { apply_now: self.completion == Completion::Automatic })
            }
        }
    }

    /// R10: only the requester cancels, while the request is open.
    pub fn cancel(&mut self, actor_id: &str, now: Millis) -> Result<(), DomainError> {
        self.refuse_if_due(now, RequestStatus::Cancelled)?;
        if actor_id != self.requested_by {
            return Err(DomainError::NotTheRequester("cancel"));
        }
        self.status = self.status.transition(RequestStatus::Cancelled)?;
        Ok(())
    }

    /// R8: only the requester completes, and only an approved request. The caller then applies
    /// the change and calls [`RequestState::finish`].
    pub fn check_completable(&self, actor_id: &str, now: Millis) -> Result<(), DomainError> {
        self.refuse_if_due(now, RequestStatus::Completed)?;
        if actor_id != self.requested_by {
            return Err(DomainError::NotTheRequester("complete"));
        }
        self.status.transition(RequestStatus::Completed).map(|_| ())
    }

    /// R8/R12: records the outcome of applying an approved change.
    pub fn finish(&mut self, applied: bool) -> Result<(), DomainError> {
        let to = if applied { RequestStatus::Completed } else { RequestStatus::Failed };
        self.status = self.status.transition(to)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestStatus::*;

    const DAY: Millis = crate::MILLIS_PER_DAY;

    fn request(required: i64, completion: Completion) -> RequestState {
        RequestState {
            status: NeedsApproval,
            requested_by: "alice".into(),
            required_approvals: required,
            completion,
            approvals: vec![],
            expires_at: 30 * DAY,
            ttl_ms: 30 * DAY,
        }
    }

    #[test]
    fn r16_an_approval_counts_only_from_someone_independent_of_the_requester_and_of_counted_approvals() {
        use crate::control::{ControlEdge, CredentialKind};
        let edge = |account: &str, controller: &str| ControlEdge {
            account: account.into(),
            controller: controller.into(),
            via: CredentialKind::Password,
        };
        // mallory set alice's password (alice is mallory's puppet requester), and set eve's.
        let control = ControlGraph::new([edge("alice", "mallory"), edge("eve", "mallory")], Default::default());
        let mut r = request(2, Completion::Requester);
        let err = r.decide("mallory", &[], &control, Decision::Approve, None, 1).unwrap_err();
        assert_eq!(err.code(), "not_independent");
        let err = r.decide("mallory", &[], &control, Decision::Reject, None, 1).unwrap_err();
        assert_eq!(err.code(), "not_independent", "nor may a puppet's controller decide it either way");
        assert!(r.approvals.is_empty(), "a refused decision records nothing");
        // bob is independent of alice and counts; eve, whose password bob set, is bob's.
        r.decide("bob", &[], &control, Decision::Approve, None, 2).unwrap();
        let control = ControlGraph::new([edge("alice", "mallory"), edge("eve", "bob")], Default::default());
        let err = r.decide("eve", &[], &control, Decision::Approve, None, 3).unwrap_err();
        assert_eq!(err.code(), "not_independent", "eve is bob's: one person, one approval");
        assert_eq!(r.status, NeedsApproval);
        assert!(r.decide("carol", &[], &control, Decision::Approve, None, 4).is_ok());
        assert_eq!(r.status, Approved);
    }

    #[test]
    fn every_transition_is_allowed_or_refused_as_designed() {
        let allowed = [
            (NeedsApproval, Approved),
            (NeedsApproval, Rejected),
            (NeedsApproval, Cancelled),
            (NeedsApproval, Expired),
            (Approved, Completed),
            (Approved, Failed),
            (Approved, Cancelled),
            (Approved, Expired),
        ];
        for from in RequestStatus::ALL {
            for to in RequestStatus::ALL {
                let expected = allowed.contains(&(from, to));
                assert_eq!(from.can_become(to), expected, "{from} -> {to}");
                match from.transition(to) {
                    Ok(s) => assert_eq!(s, to),
                    Err(e) => {
                        assert!(!expected);
                        assert_eq!(e.code(), "invalid_transition");
                    }
                }
            }
        }
    }

    #[test]
    fn r3_the_requester_never_decides_even_when_eligible() {
        let mut r = request(1, Completion::Requester);
        for decision in [Decision::Approve, Decision::Reject] {
            assert_eq!(
                r.decide("alice", &[], &ControlGraph::default(), decision, None, 0),
                Err(DomainError::SelfApprovalForbidden)
            );
        }
        assert_eq!(r.status, NeedsApproval);
    }

    #[test]
    fn r2_an_ineligible_account_is_refused_with_its_reasons() {
        let mut r = request(1, Completion::Requester);
        let err = r
            .decide("svc", &[Ineligibility::NotHuman], &ControlGraph::default(), Decision::Approve, None, 0)
            .unwrap_err();
        assert_eq!(err.code(), "not_an_approver");
        assert!(err.to_string().contains("service accounts never approve"));
        assert!(r.approvals.is_empty());
    }

    #[test]
    fn r6_one_rejection_ends_the_request_and_keeps_the_notes() {
        let mut r = request(2, Completion::Requester);
        assert_eq!(
            r.decide("bob", &[], &ControlGraph::default(), Decision::Approve, None, 1).unwrap(),
            DecisionOutcome::Counted { approvals: 1, required: 2 }
        );
        assert_eq!(
            r.decide("carol", &[], &ControlGraph::default(), Decision::Reject, Some("no".into()), 2).unwrap(),
            DecisionOutcome::Rejected
        );
        assert_eq!(r.status, Rejected);
        assert_eq!(r.approvals[1].notes.as_deref(), Some("no"));
        assert_eq!(
            r.decide("dave", &[], &ControlGraph::default(), Decision::Approve, None, 3).unwrap_err().code(),
            "invalid_transition"
        );
    }

    #[test]
    fn r7_quorum_needs_distinct_approvers() {
        let mut r = request(2, Completion::Requester);
        assert!(matches!(
            r.decide("bob", &[], &ControlGraph::default(), Decision::Approve, None, 1),
            Ok(DecisionOutcome::Counted { .. })
        ));
        assert_eq!(
            r.decide("bob", &[], &ControlGraph::default(), Decision::Approve, None, 2),
            Err(DomainError::AlreadyApproved)
        );
        assert_eq!(r.status, NeedsApproval);
        assert_eq!(
            r.decide("carol", &[], &ControlGraph::default(), Decision::Approve, None, 3).unwrap(),
            DecisionOutcome::Approved { apply_now: false }
        );
        assert_eq!(r.status, Approved);
        assert_eq!(r.approval_count(), 2);
    }

    #[test]
    fn r8_automatic_completion_applies_on_the_approving_decision() {
        let mut r = request(1, Completion::Automatic);
        assert_eq!(
            r.decide("bob", &[], &ControlGraph::default(), Decision::Approve, None, 1).unwrap(),
            DecisionOutcome::Approved { apply_now: true }
        );
    }

    #[test]
    fn r8_only_the_requester_completes_an_approved_request() {
        let mut r = request(1, Completion::Requester);
        assert_eq!(r.check_completable("alice", 0).unwrap_err().code(), "invalid_transition");
        r.decide("bob", &[], &ControlGraph::default(), Decision::Approve, None, 1).unwrap();
        assert_eq!(r.check_completable("bob", 2).unwrap_err().code(), "forbidden");
        r.check_completable("alice", 2).unwrap();
        r.finish(true).unwrap();
        assert_eq!(r.status, Completed);
        assert_eq!(r.finish(true).unwrap_err().code(), "invalid_transition", "applied once only");
    }

    #[test]
    fn r12_a_failed_application_ends_as_failed() {
        let mut r = request(1, Completion::Requester);
        r.decide("bob", &[], &ControlGraph::default(), Decision::Approve, None, 1).unwrap();
        r.finish(false).unwrap();
        assert_eq!(r.status, Failed);
    }

    #[test]
    fn r10_only_the_requester_cancels_and_only_while_open() {
        let mut r = request(1, Completion::Requester);
        assert_eq!(r.cancel("bob", 0).unwrap_err().code(), "forbidden");
        r.decide("bob", &[], &ControlGraph::default(), Decision::Approve, None, 1).unwrap();
        r.cancel("alice", 2).unwrap();
        assert_eq!(r.status, Cancelled);
        assert_eq!(r.cancel("alice", 3).unwrap_err().code(), "invalid_transition");
    }

    #[test]
    fn r11_expiry_is_exact_and_any_action_restarts_the_clock() {
        let mut r = request(2, Completion::Requester);
        assert_eq!(r.effective_status(30 * DAY - 1), NeedsApproval);
        r.decide("bob", &[], &ControlGraph::default(), Decision::Approve, None, 20 * DAY).unwrap();
        assert_eq!(r.expires_at, 50 * DAY);
        assert_eq!(r.effective_status(49 * DAY), NeedsApproval);
        assert_eq!(r.effective_status(50 * DAY), Expired);
        let err = r.decide("carol", &[], &ControlGraph::default(), Decision::Approve, None, 50 * DAY).unwrap_err();
        assert_eq!(err, DomainError::InvalidTransition { from: Expired, to: Approved });
        assert_eq!(r.cancel("alice", 50 * DAY).unwrap_err().code(), "invalid_transition");
        assert!(r.expire_if_due(50 * DAY));
        assert_eq!(r.status, Expired);
        assert!(!r.expire_if_due(60 * DAY), "expires once");
    }

    #[test]
    fn r11_an_approved_request_waiting_for_completion_expires_too() {
        let mut r = request(1, Completion::Requester);
        r.decide("bob", &[], &ControlGraph::default(), Decision::Approve, None, DAY).unwrap();
        assert_eq!(r.effective_status(31 * DAY), Expired);
        assert_eq!(r.check_completable("alice", 31 * DAY).unwrap_err().code(), "invalid_transition");
    }
}
