//! Every error the API returns, mapped in one place to RFC 9457 `application/problem+json`
//! `{type, title, status, detail, code}` with a stable `code`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use countersign_core::DomainError;
use countersign_store::StoreError;
use serde_json::{json, Value};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Extra members of the problem object, such as the open request's id.
    pub extra: Option<Value>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError { status, code, detail: detail.into(), extra: None, retry_after: None }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn validation(detail: impl Into<String>) -> Self {
        Self::bad_request("validation_failed", detail)
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "an internal error occurred; it has been logged")
    }

    fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let status = match &e {
            DomainError::SelfApprovalForbidden
            | DomainError::NotAnApprover(_)
            | DomainError::NotTheRequester(_)
            | DomainError::MissingPermission(_) => StatusCode::FORBIDDEN,
            DomainError::InvalidTransition { .. } | DomainError::AlreadyApproved => StatusCode::CONFLICT,
            DomainError::NoEligibleApprover(_) => StatusCode::UNPROCESSABLE_ENTITY,
            DomainError::JustificationRequired
            | DomainError::JustificationTooLong(_)
            | DomainError::NotesTooLong(_)
            | DomainError::Validation(_) => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(d) => d.into(),
            StoreError::NotFound(detail) => ApiError::not_found(detail),
            StoreError::RequestOpen { ref request_id, .. } => {
                let mut err = ApiError::conflict("request_open_for_object", e.to_string());
                err.extra = Some(json!({ "requestId": request_id }));
                err
            }
            StoreError::Stale(detail) => ApiError::conflict("stale_object", detail),
            StoreError::Conflict(detail) => ApiError::conflict("conflict", detail),
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                let mut err = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is unavailable; nothing was changed, try again",
                );
                err.retry_after = Some(1);
                err
            }
            StoreError::Database(_) | StoreError::Corrupt(_) | StoreError::Config(_) => {
                tracing::error!(error = %e, "internal error");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": format!("https://countersign.dev/problems/{}", self.code.replace('_', "-")),
            "title": self.title(),
            "status": self.status.as_u16(),
            "detail": self.detail,
            "code": self.code,
        });
        if let (Some(Value::Object(extra)), Value::Object(map)) = (self.extra, &mut body) {
            map.extend(extra);
        }
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"countersign\""));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_core::request::RequestStatus;

    #[test]
    fn each_rule_error_has_its_status_and_code() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (DomainError::JustificationRequired.into(), 400, "justification_required"),
            (DomainError::SelfApprovalForbidden.into(), 403, "self_approval_forbidden"),
            (DomainError::NotAnApprover("x".into()).into(), 403, "not_an_approver"),
            (
                DomainError::InvalidTransition { from: RequestStatus::Completed, to: RequestStatus::Approved }.into(),
                409,
                "invalid_transition",
            ),
            (
                StoreError::RequestOpen { request_id: "r".into(), object: "o".into() }.into(),
                409,
                "request_open_for_object",
            ),
            (StoreError::Stale("s".into()).into(), 409, "stale_object"),
            (StoreError::NotFound("n".into()).into(), 404, "not_found"),
            (StoreError::Unavailable("u".into()).into(), 503, "unavailable"),
            (StoreError::Corrupt("secret detail".into()).into(), 500, "internal_error"),
        ];
        for (err, status, code) in cases {
            assert_eq!((err.status.as_u16(), err.code), (status, code));
            assert!(!err.detail.contains("secret detail"), "internal details are not shown");
        }
    }
}
