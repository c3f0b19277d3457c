use crate::permission::{MissingPermission, Permission};
use crate::profile::ProfileType;
use crate::request::RequestStatus;
use crate::state::DeviceLifecycle;

/// Declares [`ErrorCode`] from one table: each code's stable name, the HTTP status an adapter
/// answers with, and the problem's title.
macro_rules! error_codes {
    ( $( $(#[$meta:meta])* $variant:ident = $name:literal, $status:literal, $title:literal; )+ ) => {
        crate::named_enum! {
            /// The stable `code` of every error Countersign answers with (problem+json `code`).
            pub enum ErrorCode: "error code" {
                $( $(#[$meta])* $variant = $name ),+
            }
        }

        impl ErrorCode {
            /// The HTTP status that goes with the code.
            pub const fn http_status(self) -> u16 {
                match self {
                    $( ErrorCode::$variant => $status ),+
                }
            }

            /// The problem's title: the same for every occurrence of the code (RFC 9457).
            pub const fn title(self) -> &'static str {
                match self {
                    $( ErrorCode::$variant => $title ),+
                }
            }
        }
    };
}

/// A code equals its name, so a test can say `assert_eq!(error.code(), "invalid_transition")`.
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

error_codes! {
    MalformedJson = "malformed_json", 400, "Malformed JSON";
    MalformedBody = "malformed_body", 400, "Malformed body";
    InvalidId = "invalid_id", 400, "Invalid id";
    InvalidQuery = "invalid_query", 400, "Invalid query";
    ValidationFailed = "validation_failed", 400, "Validation failed";
    JustificationRequired = "justification_required", 400, "Justification required";
    JustificationTooLong = "justification_too_long", 400, "Justification too long";
    NotesTooLong = "notes_too_long", 400, "Notes too long";
    /// A value or text beyond `core::limits` (the problem's `limit` names which one).
    InputLimit = "input_limit", 400, "Input limit";
    /// A notification channel's URL reaches an internal address the operator has not allowed.
    AddressNotAllowed = "address_not_allowed", 400, "Address not allowed";
    Unauthenticated = "unauthenticated", 401, "Unauthenticated";
    /// Single sign-on did not prove who the person is: a forged, replayed or expired sign-in
    /// state, a wrong nonce, a token the provider did not sign, or the provider said no.
    SsoFailed = "sso_failed", 401, "Single sign-on failed";
    Forbidden = "forbidden", 403, "Forbidden";
    CsrfFailed = "csrf_failed", 403, "CSRF check failed";
    WrongPassword = "wrong_password", 403, "Wrong password";
    SelfApprovalForbidden = "self_approval_forbidden", 403, "Self-approval forbidden";
    NotAnApprover = "not_an_approver", 403, "Not an approver";
    NotTheRequester = "not_the_requester", 403, "Not the requester";
    BuiltInRole = "built_in_role", 403, "Built-in role";
    WouldEscalate = "would_escalate", 403, "Would escalate";
    NotIndependent = "not_independent", 403, "Not independent";
    PasswordChangeRequired = "password_change_required", 403, "Password change required";
    /// R21: the policy asks each decision for a fresh passkey assertion; the problem's `link`
    /// is the request's page, where the browser makes one.
    StepUpRequired = "step_up_required", 403, "Step-up required";
    /// R21: the assertion sent is not one this decision accepts (replayed, made for another
    /// request, digest or decision, not user-verified, or not signed by the caller's passkey).
    StepUpRejected = "step_up_rejected", 403, "Step-up rejected";
    /// Issue 17: adding or removing one's own passkey needs a fresh proof of an existing
    /// credential (the current password, or a passkey sign-in within the last minutes).
    ReauthenticationRequired = "reauthentication_required", 403, "Reauthentication required";
    /// A provider's identity that is linked to no account here, where the provider does not
    /// create accounts (an account is never matched by e-mail address).
    SsoNotLinked = "sso_not_linked", 403, "Identity not linked";
    NotFound = "not_found", 404, "Not found";
    UnknownType = "unknown_type", 404, "Unknown resource type";
    MethodNotAllowed = "method_not_allowed", 405, "Method not allowed";
    Conflict = "conflict", 409, "Conflict";
    DisplayNameTaken = "display_name_taken", 409, "Display name taken";
    /// The provider's identity is already linked to another account.
    SsoIdentityTaken = "sso_identity_taken", 409, "Identity already linked";
    StaleObject = "stale_object", 409, "Stale object";
    RequestOpenForObject = "request_open_for_object", 409, "Request open for object";
    /// A stored request that this server cannot read; lists leave it out (see the store).
    RequestUnreadable = "request_unreadable", 409, "Request unreadable";
    InvalidTransition = "invalid_transition", 409, "Invalid transition";
    AlreadyApproved = "already_approved", 409, "Already approved";
    ChangeDigestMismatch = "change_digest_mismatch", 409, "Change digest mismatch";
    InvalidDeviceState = "invalid_device_state", 409, "Invalid device state";
    PayloadTooLarge = "payload_too_large", 413, "Payload too large";
    /// A JSON endpoint sent a body that is not `application/json` (what a cross-site form sends).
    UnsupportedMediaType = "unsupported_media_type", 415, "Unsupported media type";
    NoEligibleApprover = "no_eligible_approver", 422, "No eligible approver";
    TooManyAttempts = "too_many_attempts", 429, "Too many attempts";
    InternalError = "internal_error", 500, "Internal error";
    Unavailable = "unavailable", 503, "Unavailable";
    /// Every password check slot and its queue are taken; try again shortly.
    ServerBusy = "server_busy", 503, "Server busy";
}

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
    /// Issue 15: past one of the input limits of `core::limits`.
    #[error("input limit ({}): {}", .0.name(), .0)]
    InputLimit(#[from] crate::limits::InputLimit),
    #[error(transparent)]
    MissingPermission(#[from] MissingPermission),
    #[error("the device is {0}; only an active device can be wiped or retired")]
    InvalidDeviceState(DeviceLifecycle),
    #[error("an access policy for {} already exists", .0.display_name())]
    ProfileTypeTaken(ProfileType),
    #[error(
        "changing another account's credentials, enabled state or existence needs every permission it holds; you lack {0}"
    )]
    WouldEscalate(Permission),
    #[error("{0}")]
    NotIndependent(String),
    #[error("your password was set by someone else; choose your own before you do anything else")]
    PasswordChangeRequired,
    /// R21: `policy` asks for a passkey on every decision and none was sent.
    #[error(
        "this request's policy asks every decision for a fresh passkey confirmation (stepUp: passkey); \
         open the request in a browser to approve or reject it with your passkey"
    )]
    StepUpRequired,
    #[error("the passkey confirmation is refused: {0}")]
    StepUpRejected(String),
    #[error("{0}")]
    ReauthenticationRequired(String),
    #[error("you reviewed change {seen}, but this request holds change {current}; reload it and review it again")]
    ChangeDigestMismatch { seen: String, current: String },
    /// R20: a display name (or a new username) that a screen would show like another account's
    /// name. `name` is the proposed name, `holder` the username of the account it is too like.
    #[error(
        "{} is too like {} of account '{holder}'; choose a name nobody could mistake for theirs",
        crate::text::quoted(name),
        taken.describe()
    )]
    NameTaken { name: String, holder: String, taken: crate::lookalike::TakenName },
}

impl DomainError {
    pub fn code(&self) -> ErrorCode {
        match self {
            DomainError::JustificationRequired => ErrorCode::JustificationRequired,
            DomainError::JustificationTooLong(_) => ErrorCode::JustificationTooLong,
            DomainError::NotesTooLong(_) => ErrorCode::NotesTooLong,
            DomainError::InvalidTransition { .. } => ErrorCode::InvalidTransition,
            DomainError::SelfApprovalForbidden => ErrorCode::SelfApprovalForbidden,
            DomainError::NotAnApprover(_) => ErrorCode::NotAnApprover,
            DomainError::AlreadyApproved => ErrorCode::AlreadyApproved,
            DomainError::NotTheRequester(_) | DomainError::MissingPermission(_) => ErrorCode::Forbidden,
            DomainError::NoEligibleApprover(_) => ErrorCode::NoEligibleApprover,
            DomainError::Validation(_) => ErrorCode::ValidationFailed,
            DomainError::InputLimit(_) => ErrorCode::InputLimit,
            DomainError::InvalidDeviceState(_) => ErrorCode::InvalidDeviceState,
            DomainError::ProfileTypeTaken(_) => ErrorCode::Conflict,
            DomainError::WouldEscalate(_) => ErrorCode::WouldEscalate,
            DomainError::NotIndependent(_) => ErrorCode::NotIndependent,
            DomainError::PasswordChangeRequired => ErrorCode::PasswordChangeRequired,
            DomainError::ChangeDigestMismatch { .. } => ErrorCode::ChangeDigestMismatch,
            DomainError::StepUpRequired => ErrorCode::StepUpRequired,
            DomainError::StepUpRejected(_) => ErrorCode::StepUpRejected,
            DomainError::ReauthenticationRequired(_) => ErrorCode::ReauthenticationRequired,
            DomainError::NameTaken { .. } => ErrorCode::DisplayNameTaken,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clients depend on these pairs: a change here is a breaking change of the API.
    const CODES_AND_STATUSES: &[(&str, u16)] = &[
        ("malformed_json", 400),
        ("malformed_body", 400),
        ("invalid_id", 400),
        ("invalid_query", 400),
        ("validation_failed", 400),
        ("justification_required", 400),
        ("justification_too_long", 400),
        ("notes_too_long", 400),
        ("input_limit", 400),
        ("address_not_allowed", 400),
        ("unauthenticated", 401),
        ("sso_failed", 401),
        ("forbidden", 403),
        ("csrf_failed", 403),
        ("wrong_password", 403),
        ("self_approval_forbidden", 403),
        ("not_an_approver", 403),
        ("not_the_requester", 403),
        ("built_in_role", 403),
        ("would_escalate", 403),
        ("not_independent", 403),
        ("password_change_required", 403),
        ("step_up_required", 403),
        ("step_up_rejected", 403),
        ("reauthentication_required", 403),
        ("sso_not_linked", 403),
        ("not_found", 404),
        ("unknown_type", 404),
        ("method_not_allowed", 405),
        ("conflict", 409),
        ("display_name_taken", 409),
        ("sso_identity_taken", 409),
        ("stale_object", 409),
        ("request_open_for_object", 409),
        ("request_unreadable", 409),
        ("invalid_transition", 409),
        ("already_approved", 409),
        ("change_digest_mismatch", 409),
        ("invalid_device_state", 409),
        ("payload_too_large", 413),
        ("unsupported_media_type", 415),
        ("no_eligible_approver", 422),
        ("too_many_attempts", 429),
        ("internal_error", 500),
        ("unavailable", 503),
        ("server_busy", 503),
    ];

    #[test]
    fn every_code_keeps_its_name_and_status() {
        let pinned: Vec<(&str, u16)> = ErrorCode::ALL.iter().map(|c| (c.as_str(), c.http_status())).collect();
        assert_eq!(pinned, CODES_AND_STATUSES);
        for code in ErrorCode::ALL {
            assert!(!code.title().is_empty(), "{code}");
        }
    }

    #[test]
    fn rule_errors_carry_their_codes() {
        assert_eq!(DomainError::JustificationRequired.code(), ErrorCode::JustificationRequired);
        assert_eq!(DomainError::NotTheRequester("cancel").code(), ErrorCode::Forbidden);
        assert_eq!(DomainError::Validation("x".into()).code().http_status(), 400);
        assert_eq!(DomainError::NoEligibleApprover("x".into()).code().http_status(), 422);
    }
}
