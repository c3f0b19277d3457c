//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 description of every endpoint. Each handler
//! declares its path, parameters, body and answers with `#[utoipa::path]`, and the adapters route
//! through `utoipa_axum`'s `routes!`, so a route cannot exist without its description. This module
//! adds what is common to them: the security schemes, the error answers and the schemas of the
//! answers that are still rendered from JSON object states.

use crate::error::{ApiError, ApiResult};
use axum::{Extension, Json};
use countersign_core::error::ErrorCode;
use countersign_core::profile::ResourceType;
use serde_json::{json, Value};
use std::sync::Arc;
use utoipa::openapi::OpenApi;

/// Every stable problem `code`, from the one table of them (`ErrorCode`).
fn problem_codes() -> Vec<&'static str> {
    ErrorCode::ALL.iter().map(|code| code.as_str()).collect()
}

/// The path prefix of the Graph-compatible API, whose errors have Graph's shape.
const GRAPH_PREFIX: &str = "/beta/";

/// `#/components/schemas/{name}`
fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn names<T: Copy>(all: &[T], as_str: fn(T) -> &'static str) -> Value {
    json!(all.iter().copied().map(as_str).collect::<Vec<_>>())
}

fn string() -> Value {
    json!({"type": "string"})
}

fn nullable_string() -> Value {
    json!({"type": ["string", "null"]})
}

fn time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

fn strings() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}

/// An object whose listed properties are all sent.
fn object(properties: Value) -> Value {
    let required: Vec<String> = properties.as_object().map(|p| p.keys().cloned().collect()).unwrap_or_default();
    json!({"type": "object", "properties": properties, "required": required})
}

/// `{value: [item…], nextCursor}`: a collection (DESIGN §6).
fn page_of(item: &str) -> Value {
    object(json!({"value": {"type": "array", "items": schema_ref(item)}, "nextCursor": nullable_string()}))
}

/// An object as the API shows it: its state (whose members depend on the type, see DESIGN §6)
/// with `id`, `type` and `version`.
fn object_state() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": string(),
            "type": {"type": "string", "enum": names(&ResourceType::ALL, ResourceType::as_str)},
            "version": {"type": "integer"},
        },
        "required": ["id", "type", "version"],
        "additionalProperties": true,
    })
}

fn with(base: Value, extra: Value) -> Value {
    json!({"allOf": [base, extra]})
}

/// Graph's `identitySet`: a `user` or an `application`.
fn identity_set() -> Value {
    let identity = json!({
        "type": "object",
        "properties": {"@odata.type": string(), "id": string(), "displayName": string()},
        "required": ["id", "displayName"],
    });
    json!({
        "type": "object",
        "properties": {"@odata.type": string(), "user": identity, "application": identity},
    })
}

fn graph_policy_set() -> Value {
    json!({
        "type": "object",
        "properties": {"@odata.type": string(), "policyType": string(), "policyPlatform": string()},
    })
}

/// Graph entities answer only the properties `$select` names, so none is required.
fn graph_entity(properties: Value) -> Value {
    json!({"type": "object", "properties": properties})
}

/// A Graph request body: these members and OData annotations (`@odata.type`), nothing else.
fn graph_body(properties: Value) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "patternProperties": {"^@odata\\.": {}},
        "additionalProperties": false,
    })
}

fn graph_collection(item: &str) -> Value {
    json!({
        "type": "object",
        "properties": {
            "@odata.context": string(),
            "@odata.nextLink": string(),
            "value": {"type": "array", "items": schema_ref(item)},
        },
        "required": ["value"],
    })
}

/// The schemas of answers that are rendered from JSON, by name.
fn schemas() -> Vec<(&'static str, Value)> {
    let problem = json!({
        "type": "object",
        "description": "RFC 9457 problem details; `code` is stable, the rest is for people",
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": string(),
            "status": {"type": "integer"},
            "detail": string(),
            "code": {"type": "string", "enum": problem_codes()},
            "requestId": {"type": "string", "description": "with request_open_for_object: the open request; with request_unreadable: the request"},
            "limit": {
                "type": "string",
                "enum": ["depth", "stringLength", "keyLength", "items", "size", "character"],
                "description": "with input_limit: which limit of the input was passed",
            },
        },
        "required": ["type", "title", "status", "detail", "code"],
    });
    let graph_error = object(json!({
        "error": object(json!({
            "code": string(),
            "message": string(),
            "innerError": {
                "type": "object",
                "properties": {
                    "code": {"type": "string", "enum": problem_codes()},
                    "date": time(),
                    "request-id": string(),
                },
                "required": ["code", "date", "request-id"],
            },
        })),
    }));
    vec![
        ("Problem", problem),
        ("GraphError", graph_error),
        ("ObjectState", object_state()),
        ("Resource", with(schema_ref("ObjectState"), object(json!({"createdAt": time(), "lastModifiedAt": time()})))),
        ("ResourcePage", page_of("Resource")),
        ("ObjectStatePage", page_of("ObjectState")),
        (
            "CreatedServiceAccount",
            with(schema_ref("ObjectState"), object(json!({"token": {"type": "string", "description": "shown once"}}))),
        ),
        ("Status", object(json!({"status": string()}))),
        (
            "OperationApprovalPolicy",
            graph_entity(json!({
                "@odata.context": string(),
                "@odata.type": string(),
                "id": string(),
                "displayName": string(),
                "description": string(),
                "lastModifiedDateTime": {"type": ["string", "null"], "format": "date-time"},
                "policyType": string(),
                "policyPlatform": string(),
                "policySet": schema_ref("OperationApprovalPolicySet"),
                "approverGroupIds": strings(),
            })),
        ),
        ("OperationApprovalPolicySet", graph_policy_set()),
        ("OperationApprovalPolicyCollection", graph_collection("OperationApprovalPolicy")),
        ("OperationApprovalPolicySetCollection", graph_collection("OperationApprovalPolicySet")),
        (
            "OperationApprovalRequest",
            graph_entity(json!({
                "@odata.context": string(),
                "@odata.type": string(),
                "id": string(),
                "requestDateTime": time(),
                "expirationDateTime": time(),
                "lastModifiedDateTime": time(),
                "requestor": identity_set(),
                "approver": {"oneOf": [identity_set(), {"type": "null"}]},
                "status": string(),
                "requestJustification": nullable_string(),
                "approvalJustification": nullable_string(),
                "requiredOperationApprovalPolicyTypes": strings(),
                "countersign_changeDigest": string(),
            })),
        ),
        ("OperationApprovalRequestCollection", graph_collection("OperationApprovalRequest")),
        (
            "OperationApprovalRequestEntityStatus",
            graph_entity(json!({
                "@odata.context": string(),
                "@odata.type": string(),
                "requestId": nullable_string(),
                "requestExpirationDateTime": {"type": ["string", "null"], "format": "date-time"},
                "requestStatus": string(),
                "entityLocked": {"type": "boolean"},
            })),
        ),
        (
            "OperationApprovalPolicyOrSets",
            json!({"anyOf": [schema_ref("OperationApprovalPolicy"), schema_ref("OperationApprovalPolicySetCollection")]}),
        ),
        (
            "OperationApprovalRequestOrCollection",
            json!({"anyOf": [schema_ref("OperationApprovalRequest"), schema_ref("OperationApprovalRequestCollection")]}),
        ),
        (
            "GraphPolicyBody",
            graph_body(json!({
                "id": string(),
                "displayName": string(),
                "description": nullable_string(),
                "lastModifiedDateTime": nullable_string(),
                "policyType": string(),
                "policyPlatform": string(),
                "policySet": graph_policy_set(),
                "approverGroupIds": strings(),
                "justification": string(),
            })),
        ),
        ("GraphJustificationBody", graph_body(json!({"justification": string()}))),
        (
            "GraphRequestFunctionBody",
            json!({"anyOf": [
                graph_body(json!({"id": string()})),
                graph_body(json!({"entityId": string(), "entityType": string()})),
            ]}),
        ),
        (
            "GraphDecisionBody",
            graph_body(
                json!({"justification": string(), "approvalSource": string(), "countersign_changeDigest": string()}),
            ),
        ),
        ("GraphStatusValue", object(json!({"@odata.context": string(), "value": string()}))),
    ]
}

fn security_schemes() -> Value {
    json!({
        "bearer": {"type": "http", "scheme": "bearer", "description": "a personal or service-account API token"},
        "session": {"type": "apiKey", "in": "cookie", "name": crate::extract::SESSION_COOKIE},
        "metricsToken": {"type": "http", "scheme": "bearer", "description": "the server's metrics_token setting"},
        "csrf": {
            "type": "apiKey",
            "in": "header",
            "name": "X-CSRF-Token",
            "description": "the csrfToken from sign-in; with the session cookie on every write",
        },
    })
}

/// What an operation without its own `security` accepts: a bearer token, or the session cookie
/// (with the CSRF header on writes).
fn default_security(method: &str) -> Value {
    if method == "get" {
        json!([{"bearer": []}, {"session": []}])
    } else {
        json!([{"bearer": []}, {"session": [], "csrf": []}])
    }
}

fn error_responses(path: &str) -> Value {
    let (media_type, schema) = if path.starts_with(GRAPH_PREFIX) {
        ("application/json", "GraphError")
    } else {
        ("application/problem+json", "Problem")
    };
    let answer = |description: &str| json!({"description": description, "content": {media_type: {"schema": schema_ref(schema)}}});
    json!({
        "4XX": answer("refused, with a stable code"),
        "5XX": answer("the server or its database failed; nothing was changed"),
    })
}

/// The document `routes` describes, with the security schemes, the error answers of every
/// operation and the answers' schemas added.
pub fn complete(routes: &OpenApi) -> serde_json::Result<Value> {
    let mut document = serde_json::to_value(routes)?;
    document["info"] = json!({
        "title": "Countersign",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "Multi Admin Approval: every protected change is held until a different, eligible administrator approves it.",
    });
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else { continue };
            for (method, operation) in item.iter_mut() {
                let Some(operation) = operation.as_object_mut() else { continue };
                operation.entry("security").or_insert_with(|| default_security(method));
                // Handler names repeat across modules (`list`, `get`); the tag makes them unique.
                if let (Some(Value::String(tag)), Some(Value::String(id))) =
                    (operation.get("tags").and_then(|t| t.get(0)).cloned(), operation.get("operationId").cloned())
                {
                    operation.insert("operationId".into(), json!(format!("{tag}_{id}")));
                }
                let responses = operation.entry("responses").or_insert_with(|| json!({}));
                if let (Some(responses), Value::Object(errors)) = (responses.as_object_mut(), error_responses(path)) {
                    for (status, answer) in errors {
                        responses.entry(status).or_insert(answer);
                    }
                }
            }
        }
    }
    let components = document
        .as_object_mut()
        .map(|d| d.entry("components").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut);
    if let Some(components) = components {
        let schemas = components.entry("schemas").or_insert_with(|| json!({}));
        if let Some(schemas) = schemas.as_object_mut() {
            schemas.extend(self::schemas().into_iter().map(|(name, schema)| (name.to_owned(), schema)));
        }
        components.insert("securitySchemes".into(), security_schemes());
    }
    Ok(document)
}

/// The routes' own document, which the router hands to this handler.
pub type RoutesDocument = Arc<OpenApi>;

/// `GET /api/v1/openapi.json`
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "ops",
    summary = "This document",
    security(()),
    responses((status = 200, description = "the OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn document(Extension(routes): Extension<RoutesDocument>) -> ApiResult<Json<Value>> {
    let document = complete(&routes).map_err(|e| {
        tracing::error!(error = %e, "the OpenAPI document does not serialize");
        ApiError::new(ErrorCode::InternalError, "the OpenAPI document does not serialize")
    })?;
    Ok(Json(document))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn referenced(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(name) = map.get("$ref").and_then(Value::as_str) {
                    found.push(name.trim_start_matches("#/components/schemas/").to_owned());
                }
                map.values().for_each(|v| referenced(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| referenced(v, found)),
            _ => {}
        }
    }

    #[test]
    fn every_schema_reference_has_its_schema() {
        // The real routes, since the hand-written schemas refer to ones the handlers derive.
        let (_, routes) =
            crate::api::routes().merge(crate::health::routes()).merge(crate::graph::routes()).split_for_parts();
        let document = complete(&routes).unwrap();
        let mut found = Vec::new();
        referenced(&document, &mut found);
        for name in found {
            assert!(document["components"]["schemas"][&name].is_object(), "{name}");
        }
    }
}
