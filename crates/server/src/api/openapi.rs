//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 description of every endpoint, built with
//! utoipa from one table that sits beside the router (a test checks each entry is routed).

use axum::Json;
use utoipa::openapi::path::{OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, HttpMethod, InfoBuilder, ObjectBuilder, OpenApi, OpenApiBuilder, PathItem,
    PathsBuilder, Ref, Required, ResponseBuilder, ResponsesBuilder, Type,
};

/// `(method, path, tag, summary, has a JSON body)` for every endpoint.
pub const ENDPOINTS: &[(&str, &str, &str, &str, bool)] = &[
    (
        "POST",
        "/api/v1/auth/login",
        "auth",
        "Sign in with username and password; sets the session cookie and returns the CSRF token",
        true,
    ),
    ("POST", "/api/v1/auth/logout", "auth", "End this session", false),
    ("GET", "/api/v1/me", "auth", "Who am I, with permissions and groups", false),
    ("POST", "/api/v1/me/password", "auth", "Change my own password (with the current one)", true),
    ("GET", "/api/v1/me/notifications", "notifications", "My e-mail address and notification opt-outs", false),
    (
        "PUT",
        "/api/v1/me/notifications",
        "notifications",
        "Set my e-mail address and opt-outs (applied and failed changes are always told)",
        true,
    ),
    ("GET", "/api/v1/tokens", "auth", "My personal API tokens", false),
    ("POST", "/api/v1/tokens", "auth", "Create a personal API token (shown once)", true),
    ("DELETE", "/api/v1/tokens/{id}", "auth", "Revoke one of my tokens", false),
    ("GET", "/api/v1/accounts", "directory", "List accounts", false),
    (
        "POST",
        "/api/v1/accounts",
        "directory",
        "Create a human or service account (a service account's token is shown once)",
        true,
    ),
    ("GET", "/api/v1/accounts/{id}", "directory", "One account", false),
    (
        "PATCH",
        "/api/v1/accounts/{id}",
        "directory",
        "Change an account; password or enabled changes to approvers are held (R9)",
        true,
    ),
    ("DELETE", "/api/v1/accounts/{id}", "directory", "Delete an account; held if it is an approver (R9)", false),
    ("GET", "/api/v1/groups", "directory", "List groups", false),
    ("POST", "/api/v1/groups", "directory", "Create a group", true),
    ("GET", "/api/v1/groups/{id}", "directory", "One group with its members", false),
    ("PATCH", "/api/v1/groups/{id}", "directory", "Rename or describe a group", true),
    ("DELETE", "/api/v1/groups/{id}", "directory", "Delete a group", false),
    (
        "PUT",
        "/api/v1/groups/{id}/members",
        "directory",
        "Replace a group's members; held for approver groups (R9)",
        true,
    ),
    ("GET", "/api/v1/roles", "rbac", "List roles (built-in ones have builtIn: true)", false),
    ("POST", "/api/v1/roles", "rbac", "Create a custom role", true),
    ("GET", "/api/v1/roles/{id}", "rbac", "One role", false),
    ("PUT", "/api/v1/roles/{id}", "rbac", "Change a custom role", true),
    ("DELETE", "/api/v1/roles/{id}", "rbac", "Delete a custom role", false),
    ("GET", "/api/v1/roleAssignments", "rbac", "List role assignments", false),
    ("POST", "/api/v1/roleAssignments", "rbac", "Assign a role to groups", true),
    ("GET", "/api/v1/roleAssignments/{id}", "rbac", "One role assignment", false),
    ("PUT", "/api/v1/roleAssignments/{id}", "rbac", "Change a role assignment", true),
    ("DELETE", "/api/v1/roleAssignments/{id}", "rbac", "Delete a role assignment", false),
    (
        "GET",
        "/api/v1/resources/{type}",
        "resources",
        "List apps, scripts, compliance or configuration policies, or device categories",
        false,
    ),
    ("POST", "/api/v1/resources/{type}", "resources", "Create a resource (202 with the request when protected)", true),
    ("GET", "/api/v1/resources/{type}/{id}", "resources", "One resource", false),
    (
        "PUT",
        "/api/v1/resources/{type}/{id}",
        "resources",
        "Replace a resource (202 with the request when protected)",
        true,
    ),
    (
        "DELETE",
        "/api/v1/resources/{type}/{id}",
        "resources",
        "Delete a resource (202 with the request when protected)",
        false,
    ),
    ("POST", "/api/v1/resources/{type}/{id}/assign", "resources", "Set the groups a resource is assigned to", true),
    ("GET", "/api/v1/devices", "devices", "List devices", false),
    ("POST", "/api/v1/devices", "devices", "Enrol a device (not protected)", true),
    ("GET", "/api/v1/devices/{id}", "devices", "One device", false),
    ("POST", "/api/v1/devices/{id}/wipe", "devices", "Wipe a device", true),
    ("POST", "/api/v1/devices/{id}/retire", "devices", "Retire a device", true),
    ("POST", "/api/v1/devices/{id}/delete", "devices", "Delete a device", true),
    ("GET", "/api/v1/accessPolicies", "policies", "List access policies", false),
    ("POST", "/api/v1/accessPolicies", "policies", "Propose an access policy (always held, R9)", true),
    ("GET", "/api/v1/accessPolicies/{id}", "policies", "One access policy with each approver's eligibility", false),
    ("PUT", "/api/v1/accessPolicies/{id}", "policies", "Propose a change to an access policy (always held, R9)", true),
    ("DELETE", "/api/v1/accessPolicies/{id}", "policies", "Propose deleting an access policy (always held, R9)", false),
    (
        "GET",
        "/api/v1/requests",
        "requests",
        "List approval requests: view=mine|received|all, status, type, since, until, cursor",
        false,
    ),
    ("GET", "/api/v1/requests/{id}", "requests", "One request with before, after, diff and approvals", false),
    ("POST", "/api/v1/requests/{id}/approve", "requests", "Approve, with optional approver notes", true),
    ("POST", "/api/v1/requests/{id}/reject", "requests", "Reject, with optional approver notes", true),
    ("POST", "/api/v1/requests/{id}/cancel", "requests", "Cancel my request", false),
    (
        "POST",
        "/api/v1/requests/{id}/complete",
        "requests",
        "Complete my approved request: the change is applied",
        false,
    ),
    (
        "GET",
        "/api/v1/audit",
        "audit",
        "The audit log, newest first: category, actor, action, target, since, until, cursor",
        false,
    ),
    ("GET", "/api/v1/audit/verify", "audit", "Verify the audit log's hash chain", false),
    ("GET", "/api/v1/openapi.json", "ops", "This document", false),
    ("GET", "/healthz", "ops", "Liveness", false),
    ("GET", "/readyz", "ops", "Readiness: the database answers", false),
    ("GET", "/metrics", "ops", "Prometheus metrics", false),
];

fn method(name: &str) -> HttpMethod {
    match name {
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

fn json_content() -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(ObjectBuilder::new().schema_type(Type::Object).build())).build()
}

fn problem() -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description("RFC 9457 problem details with a stable `code`")
        .content(
            "application/problem+json",
            ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
        )
        .build()
}

pub fn build() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for (verb, path, tag, summary, has_body) in ENDPOINTS {
        let mut responses = ResponsesBuilder::new()
            .response(
                "200",
                ResponseBuilder::new().description("OK").content("application/json", json_content()).build(),
            )
            .response("4XX", problem());
        if *verb != "GET" {
            responses = responses.response(
                "202",
                ResponseBuilder::new()
                    .description("Held for approval (R1): the approval request, with a Location header")
                    .content("application/json", json_content())
                    .build(),
            );
        }
        let mut operation = OperationBuilder::new().tag(*tag).summary(Some(*summary)).responses(responses.build());
        for segment in path.split('/').filter(|s| s.starts_with('{')) {
            let name = segment.trim_matches(|c| c == '{' || c == '}');
            operation = operation.parameter(
                ParameterBuilder::new().name(name).parameter_in(ParameterIn::Path).required(Required::True).build(),
            );
        }
        if *has_body {
            operation = operation
                .request_body(Some(RequestBodyBuilder::new().content("application/json", json_content()).build()));
        }
        paths = paths.path(*path, PathItem::new(method(verb), operation.build()));
    }
    let problem_schema = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("type", ObjectBuilder::new().schema_type(Type::String))
        .property("title", ObjectBuilder::new().schema_type(Type::String))
        .property("status", ObjectBuilder::new().schema_type(Type::Integer))
        .property("detail", ObjectBuilder::new().schema_type(Type::String))
        .property("code", ObjectBuilder::new().schema_type(Type::String))
        .required("code")
        .build();
    let components = ComponentsBuilder::new()
        .schema("Problem", problem_schema)
        .security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()))
        .security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::extract::SESSION_COOKIE))),
        )
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Countersign")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("Multi Admin Approval: every protected change is held until a different, eligible administrator approves it."))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components))
        .build()
}

pub async fn document() -> Json<OpenApi> {
    Json(build())
}
