use crate::permission::MissingPermission;
use crate::request::RequestStatus;

/// A rule said no. Each variant has a stable `code` that the HTTP layer puts in problem+json.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("a business justification is required for a change that needs approval")]
    JustificationRequired,
    #[error("the business justification is {0} characters long; at most 1024 are allowed")]
    JustificationTooLong(usize),
    #[error("approver notes are {0} characters long; at most 1024 are allowed")]
    NotesTooLong(usize),
    #[error("a request that is {from} cannot become {to}")]
    InvalidTransition { from: RequestStatus, to: RequestStatus },
    #[error("the requester cannot approve or reject their own request")]
    SelfApprovalForbidden,
    #[error("you are not an eligible approver for this request: {0}")]
    NotAnApprover(String),
    #[error("you have already approved this request; each approver counts once")]
    AlreadyApproved,
    #[error("only the requester can {0} this request")]
    NotTheRequester(&'static str),
    #[error("no eligible approver other than you could approve changes under this policy: {0}")]
    NoEligibleApprover(String),
    #[error("{0}")]
    Validation(String),
    #[error(transparent)]
    MissingPermission(#[from] MissingPermission),
}

impl DomainError {
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::JustificationRequired => "justification_required",
            DomainError::JustificationTooLong(_) => "justification_too_long",
            DomainError::NotesTooLong(_) => "notes_too_long",
            DomainError::InvalidTransition { .. } => "invalid_transition",
            DomainError::SelfApprovalForbidden => "self_approval_forbidden",
            DomainError::NotAnApprover(_) => "not_an_approver",
            DomainError::AlreadyApproved => "already_approved",
            DomainError::NotTheRequester(_) => "forbidden",
            DomainError::NoEligibleApprover(_) => "no_eligible_approver",
            DomainError::Validation(_) => "validation_failed",
            DomainError::MissingPermission(_) => "forbidden",
        }
    }
}
