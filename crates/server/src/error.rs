//! Every error the API returns, mapped in one place to RFC 9457 `application/problem+json`
//! `{type, title, status, detail, code}` with a stable `code`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use countersign_core::error::ErrorCode;
use countersign_core::DomainError;
use countersign_store::StoreError;
use serde_json::{json, Value};

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: String,
    /// Extra members of the problem object, such as the open request's id.
    pub extra: Option<Value>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError { code, detail: detail.into(), extra: None, retry_after: None }
    }

    pub fn validation(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationFailed, detail)
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, detail)
    }

    fn internal() -> Self {
        Self::new(ErrorCode::InternalError, "an internal error occurred; it has been logged")
    }

    /// The HTTP status, from the code's row in `ErrorCode`'s table.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let mut err = ApiError::new(e.code(), e.to_string());
        if let DomainError::InputLimit(limit) = &e {
            err.extra = Some(json!({ "limit": limit.name() }));
        }
        err
    }
}

impl From<countersign_core::limits::InputLimit> for ApiError {
    fn from(e: countersign_core::limits::InputLimit) -> Self {
        DomainError::from(e).into()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(d) => d.into(),
            StoreError::NotFound(detail) => ApiError::not_found(detail),
            StoreError::RequestOpen { ref request_id, .. } => {
                let mut err = ApiError::new(ErrorCode::RequestOpenForObject, e.to_string());
                err.extra = Some(json!({ "requestId": request_id }));
                err
            }
            StoreError::Unreadable { ref id, .. } => {
                let mut err = ApiError::new(ErrorCode::RequestUnreadable, e.to_string());
                err.extra = Some(json!({ "requestId": id }));
                err
            }
            StoreError::Stale(detail) => ApiError::new(ErrorCode::StaleObject, detail),
            StoreError::Conflict(detail) => ApiError::new(ErrorCode::Conflict, detail),
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                let mut err = ApiError::new(
                    ErrorCode::Unavailable,
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
        let status = self.status();
        let mut body = json!({
            "type": format!("https://countersign.dev/problems/{}", self.code.as_str().replace('_', "-")),
            "title": self.code.title(),
            "status": status.as_u16(),
            "detail": self.detail,
            "code": self.code,
        });
        if let (Some(Value::Object(extra)), Value::Object(map)) = (self.extra, &mut body) {
            map.extend(extra);
        }
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
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
            (StoreError::Unreadable { id: "r".into(), reason: "x".into() }.into(), 409, "request_unreadable"),
            (countersign_core::limits::InputLimit::Size { bytes: 1 }.into(), 400, "input_limit"),
            (StoreError::NotFound("n".into()).into(), 404, "not_found"),
            (StoreError::Unavailable("u".into()).into(), 503, "unavailable"),
            (StoreError::Corrupt("secret detail".into()).into(), 500, "internal_error"),
        ];
        for (err, status, code) in cases {
            assert_eq!((err.status().as_u16(), err.code.as_str()), (status, code));
            assert!(!err.detail.contains("secret detail"), "internal details are not shown");
        }
    }

    #[test]
    fn every_code_has_a_real_http_status() {
        for code in ErrorCode::ALL {
            let status = StatusCode::from_u16(code.http_status()).map(|s| s.canonical_reason());
            assert!(matches!(status, Ok(Some(_))), "{code}");
        }
    }
}
