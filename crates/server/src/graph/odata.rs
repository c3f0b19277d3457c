//! Graph's error shape, the caller and body extractors that answer in it, and the OData query
//! options automation uses (`$filter`, `$top`, `$orderby`, `$select`, `$skiptoken`).

use super::mapping::parse_status_filter;
use crate::error::ApiError;
use crate::extract::{OptionalJson, Principal};
use crate::AppState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use countersign_core::error::ErrorCode;
use countersign_core::request::RequestStatus;
use countersign_core::Clock;
use serde_json::{json, Map, Value};

/// An error in Graph's shape: `{"error": {"code", "message", "innerError": {…}}}`; the native
/// API's stable code is kept as `innerError.code`.
#[derive(Debug)]
pub struct GraphError(pub ApiError);

impl From<ApiError> for GraphError {
    fn from(e: ApiError) -> Self {
        GraphError(e)
    }
}

pub type GraphResult<T> = Result<T, GraphError>;

pub fn bad_request(message: impl Into<String>) -> GraphError {
    GraphError(ApiError::new(ErrorCode::InvalidQuery, message))
}

/// Graph's code for an HTTP status (the codes of Graph's error reference).
pub fn graph_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 413 | 422 => "invalidRequest",
        401 => "unauthenticated",
        403 => "accessDenied",
        404 => "itemNotFound",
        405 => "notAllowed",
        409 => "conflict",
        429 => "activityLimitReached",
        503 => "serviceNotAvailable",
        _ => "generalException",
    }
}

impl GraphError {
    pub fn body(&self) -> Value {
        let mut inner = json!({
            "code": self.0.code,
            "date": crate::time::format(crate::time::SystemClock.now()),
            "request-id": uuid::Builder::from_random_bytes(rand::random()).into_uuid().to_string(),
        });
        if let (Some(Value::Object(extra)), Value::Object(map)) = (&self.0.extra, &mut inner) {
            map.extend(extra.clone());
        }
        json!({"error": {"code": graph_code(self.0.status()), "message": self.0.detail, "innerError": inner}})
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let mut response = (self.0.status(), self.body().to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(seconds) = self.0.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.0.status() == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"countersign\""));
        }
        response
    }
}

/// The authenticated caller (the native API's bearer token or session), with Graph errors.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = GraphError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, GraphError> {
        Principal::from_request_parts(parts, app).await.map(Caller).map_err(GraphError)
    }
}

/// A JSON object body (or none): its members, without OData annotations (`@odata.type`).
pub struct Body(pub Map<String, Value>);

impl FromRequest<AppState> for Body {
    type Rejection = GraphError;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, GraphError> {
        let OptionalJson(value) = OptionalJson::<Value>::from_request(req, app).await.map_err(GraphError)?;
        match value {
            Value::Null => Ok(Body(Map::new())),
            Value::Object(mut map) => {
                map.retain(|k, _| !k.starts_with("@odata."));
                Ok(Body(map))
            }
            _ => Err(GraphError(ApiError::validation("the request body must be a JSON object"))),
        }
    }
}

impl Body {
    /// Refuses members other than `known`, as Graph does for properties a type does not have.
    pub fn only(&self, type_name: &str, known: &[&str]) -> Result<(), GraphError> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(GraphError(ApiError::validation(format!(
                "the property '{k}' does not exist on type '{type_name}'"
            )))),
            None => Ok(()),
        }
    }

    /// A string member (absent or null is `None`).
    pub fn string(&self, name: &str) -> Result<Option<String>, GraphError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(GraphError(ApiError::validation(format!("'{name}' must be a string")))),
        }
    }

    pub fn strings(&self, name: &str) -> Result<Option<Vec<String>>, GraphError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v.clone())
                .map(Some)
                .map_err(|_| GraphError(ApiError::validation(format!("'{name}' must be a list of strings")))),
        }
    }
}

/// The OData query options of a request, checked against what the endpoint supports.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct QueryOptions {
    /// `$filter` on status: the statuses selected (`None`: no filter).
    pub statuses: Option<Vec<RequestStatus>>,
    pub top: Option<i64>,
    pub select: Option<Vec<String>>,
    pub skiptoken: Option<String>,
}

/// What an endpoint accepts.
#[derive(Clone, Copy)]
pub struct Supports {
    pub filter: bool,
    pub paging: bool,
    pub select: &'static [&'static str],
}

fn decode(raw: &str) -> Result<String, GraphError> {
    let spaced = raw.replace('+', " ");
    let bytes = spaced.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let byte =
                hex.and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or_else(|| bad_request("bad query string"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad_request("bad query string"))
}

/// The decoded `(name, value)` pairs of a query string.
pub fn pairs(query: &str) -> Result<Vec<(String, String)>, GraphError> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// Parses the query options; anything an endpoint does not support is a 400, as in Graph.
pub fn parse_query(query: &str, supports: Supports) -> Result<QueryOptions, GraphError> {
    let mut options = QueryOptions::default();
    for (name, value) in pairs(query)? {
        // Graph accepts the system query options with or without the `$`.
        let option = name.strip_prefix('$').unwrap_or(&name);
        match option {
            "filter" if supports.filter => {
                options.statuses =
                    Some(parse_status_filter(&value).map_err(|e| bad_request(format!("Invalid $filter: {e}")))?);
            }
            "top" if supports.paging => {
                let top = value.trim().parse::<i64>().ok().filter(|t| *t >= 1);
                options.top =
                    Some(top.ok_or_else(|| bad_request(format!("Invalid $top '{value}': give a positive integer")))?);
            }
            "skiptoken" if supports.paging => options.skiptoken = Some(value),
            "orderby" if supports.paging => {
                let normal = value.split_whitespace().collect::<Vec<_>>().join(" ");
                if normal != "requestDateTime desc" {
                    return Err(bad_request(format!(
                        "Invalid $orderby '{value}': requests are ordered by 'requestDateTime desc' only"
                    )));
                }
            }
            "select" if !supports.select.is_empty() => {
                let fields: Vec<String> =
                    value.split(',').map(|f| f.trim().to_owned()).filter(|f| !f.is_empty()).collect();
                if let Some(unknown) = fields.iter().find(|f| !supports.select.contains(&f.as_str())) {
                    return Err(bad_request(format!("Invalid $select: '{unknown}' is not a property of this type")));
                }
                options.select = Some(fields);
            }
            "filter" | "top" | "skiptoken" | "orderby" | "select" | "count" | "expand" | "search" | "skip"
            | "format" | "apply" | "compute" => {
                return Err(bad_request(format!("The query option '${option}' is not supported on this endpoint")))
            }
            _ if name.starts_with('$') => return Err(bad_request(format!("'{name}' is not an OData query option"))),
            // Other parameters are not OData's; Graph ignores them.
            _ => {}
        }
    }
    Ok(options)
}

/// Keeps only the selected properties (and the object's `@odata.type`).
pub fn select(item: Value, fields: Option<&[String]>) -> Value {
    match (item, fields) {
        (Value::Object(map), Some(fields)) => Value::Object(
            map.into_iter().filter(|(k, _)| k == "@odata.type" || fields.iter().any(|f| f == k)).collect(),
        ),
        (item, _) => item,
    }
}

/// Where this server is, for `@odata.context`, `@odata.nextLink` and `Location`: the
/// configured `public_url`, never the request's `Host` or `X-Forwarded-*` headers, which the
/// client chooses (a forged Host would otherwise send the next page, or a new object's
/// address, wherever it liked).
pub fn origin(app: &AppState) -> String {
    app.config.public_url.trim_end_matches('/').to_owned()
}

/// The same query with `$skiptoken` replaced by `token`.
pub fn with_skiptoken(query: &str, token: &str) -> String {
    let mut kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let key = p.split_once('=').map_or(*p, |(k, _)| k);
            !matches!(decode(key).as_deref(), Ok("$skiptoken") | Ok("skiptoken"))
        })
        .collect();
    let token = format!("$skiptoken={token}");
    kept.push(&token);
    kept.join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUESTS: Supports = Supports { filter: true, paging: true, select: &["id", "status"] };
    const PLAIN: Supports = Supports { filter: false, paging: false, select: &[] };

    #[test]
    fn query_options_parse() {
        let q = parse_query(
            "%24filter=status%20eq%20%27needsApproval%27&%24top=2&%24select=id,status&$orderby=requestDateTime+desc&api=1",
            REQUESTS,
        )
        .unwrap();
        assert_eq!(q.statuses, Some(vec![RequestStatus::NeedsApproval]));
        assert_eq!(q.top, Some(2));
        assert_eq!(q.select, Some(vec!["id".to_owned(), "status".to_owned()]));
        assert_eq!(parse_query("top=3", REQUESTS).unwrap().top, Some(3));
    }

    #[test]
    fn unsupported_query_options_are_refused() {
        let message = |q: &str, s: Supports| parse_query(q, s).unwrap_err().0.detail;
        assert!(message("$top=0", REQUESTS).contains("Invalid $top"));
        assert!(message("$top=x", REQUESTS).contains("Invalid $top"));
        assert!(message("$orderby=requestDateTime asc", REQUESTS).contains("requestDateTime desc"));
        assert!(message("$select=id,bogus", REQUESTS).contains("'bogus'"));
        assert!(message("$filter=status eq 'x'", REQUESTS).contains("Invalid $filter"));
        assert!(message("$expand=approver", REQUESTS).contains("'$expand' is not supported"));
        assert!(message("$filter=status eq 'approved'", PLAIN).contains("'$filter' is not supported"));
        assert!(message("$bogus=1", PLAIN).contains("not an OData query option"));
        assert!(message("$filter=%zz", REQUESTS).contains("bad query string"));
    }

    #[test]
    fn skiptoken_is_replaced() {
        assert_eq!(with_skiptoken("%24top=2&%24skiptoken=a", "b"), "%24top=2&$skiptoken=b");
        assert_eq!(with_skiptoken("", "b"), "$skiptoken=b");
    }

    #[test]
    fn errors_have_graphs_shape() {
        let body = GraphError(ApiError::forbidden("no")).body();
        assert_eq!(body["error"]["code"], "accessDenied");
        assert_eq!(body["error"]["message"], "no");
        assert_eq!(body["error"]["innerError"]["code"], "forbidden");
        assert!(body["error"]["innerError"]["request-id"].is_string());
        assert!(body["error"]["innerError"]["date"].is_string());
    }
}
