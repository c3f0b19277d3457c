//! The tenant a case starts from: `Setup::protected()` (a policy for every profile type, the
//! Approvers group approves), and on top of it, each change made through the API and approved by
//! bob: mallory with its built-in role (and in the Approvers group when the case says so), and
//! the sample app assigned to a Pilot group (whose membership then decides who the app reaches).
//! A Helpdesk group (carol) exists, so that property 2 may widen the app policy to it.

use crate::actions::Pick;
use crate::harness::{TestApp, PASSWORD};
use crate::http::{self, Answer, Credential, Session};
use crate::oracle::Approved;
use countersign_core::permission::{BuiltInRole, BUILT_IN_ROLES};
use countersign_core::profile::{ProfileType, ResourceType};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The password admin gives mallory, and the one mallory replaces it with at first sign-in.
const FIRST_PASSWORD: &str = "mallory's first password";
pub const OWN_PASSWORD: &str = "mallory's own password";

pub struct Tenant {
    pub mallory: String,
    /// mallory's token, made in its own session after it replaced its first password.
    pub mallory_token: String,
    /// The group that gives mallory its role.
    pub role_group: String,
    /// The group the sample app is assigned to.
    pub pilot: String,
    /// A group no policy names yet: carol.
    pub helpdesk: String,
    pub role: &'static BuiltInRole,
    /// bob, the honest approver, signed in with his own password.
    bob: Session,
}

fn sample(app: &TestApp, resource_type: ResourceType) -> String {
    app.samples.iter().find(|(t, _)| *t == resource_type).map(|(_, id)| id.clone()).expect("a sample of every type")
}

pub fn sample_device(app: &TestApp) -> String {
    sample(app, ResourceType::Device)
}

async fn as_bob(app: &TestApp, bob: &Session, method: Method, path: &str, body: Option<Value>) -> Answer {
    let credential = Credential::Session(bob.clone());
    http::send(&app.base, &app.http, &credential, method, path, body.as_ref()).await
}

/// A held change of admin's: bob approves it, admin completes it.
async fn approved_by_bob(app: &TestApp, bob: &Session, (status, held): (StatusCode, Value)) {
    assert_eq!(status, StatusCode::ACCEPTED, "set-up: the change is held: {held}");
    let request = held["id"].as_str().expect("a request id");
    let approved = as_bob(
        app,
        bob,
        Method::POST,
        &format!("/api/v1/requests/{request}/approve"),
        Some(json!({"notes": "set-up"})),
    )
    .await;
    assert_eq!(approved.status, StatusCode::OK, "set-up: bob approves: {}", approved.body);
    let (status, done) = app.post(&app.admin, &format!("/api/v1/requests/{request}/complete"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "set-up: admin completes: {done}");
    assert_eq!(done["status"], "completed", "set-up: {done}");
}

async fn created(app: &TestApp, path: &str, body: Value) -> String {
    let (status, created) = app.post(&app.admin, path, body).await;
    assert_eq!(status, StatusCode::CREATED, "set-up: {path}: {created}");
    created["id"].as_str().expect("an id").to_owned()
}

async fn set_members(app: &TestApp, group: &str, members: &[&str]) -> (StatusCode, Value) {
    let body = json!({"members": members, "justification": "set-up"});
    app.put(&app.admin, &format!("/api/v1/groups/{group}/members"), body).await
}

/// Builds the tenant for one case: mallory with `BUILT_IN_ROLES[role]`, in the Approvers group
/// when `approver`.
pub async fn prepare(app: &TestApp, role: usize, approver: bool) -> Tenant {
    let role = &BUILT_IN_ROLES[role];
    let bob = http::sign_in(&app.base, "bob", PASSWORD).await.unwrap_or_else(|a| panic!("set-up: bob signs in: {a:?}"));

    let mallory = created(
        app,
        "/api/v1/accounts",
        json!({"username": "mallory", "displayName": "Mallory", "kind": "human", "password": FIRST_PASSWORD}),
    )
    .await;
    let role_group = created(app, "/api/v1/groups", json!({"displayName": "Mallory's role"})).await;
    let (status, body) = set_members(app, &role_group, &[&mallory]).await;
    assert_eq!(status, StatusCode::OK, "set-up: {body}");
    let assignment = json!({"roleId": role.id, "groupIds": [role_group], "justification": "set-up"});
    approved_by_bob(app, &bob, app.post(&app.admin, "/api/v1/roleAssignments", assignment).await).await;
    if approver {
        let mut approvers: Vec<String> =
            app.store.group_members(&app.approvers_group).await.unwrap().into_iter().map(|a| a.id).collect();
        approvers.push(mallory.clone());
        let approvers: Vec<&str> = approvers.iter().map(String::as_str).collect();
        approved_by_bob(app, &bob, set_members(app, &app.approvers_group, &approvers).await).await;
    }
    let pilot = created(app, "/api/v1/groups", json!({"displayName": "Pilot"})).await;
    let (status, body) = set_members(app, &pilot, &[&app.alice.id]).await;
    assert_eq!(status, StatusCode::OK, "set-up: {body}");
    let app_id = sample(app, ResourceType::App);
    let assign = json!({"groupIds": [pilot], "justification": "set-up"});
    approved_by_bob(app, &bob, app.post(&app.admin, &format!("/api/v1/resources/app/{app_id}/assign"), assign).await)
        .await;

    let helpdesk = created(app, "/api/v1/groups", json!({"displayName": "Helpdesk"})).await;
    let (status, body) = set_members(app, &helpdesk, &[&app.carol.id]).await;
    assert_eq!(status, StatusCode::OK, "set-up: {body}");

    // mallory replaces the password admin gave it, then makes itself a token.
    let session = http::sign_in(&app.base, "mallory", FIRST_PASSWORD)
        .await
        .unwrap_or_else(|a| panic!("set-up: mallory signs in: {a:?}"));
    let session = Credential::Session(session);
    let change = json!({"currentPassword": FIRST_PASSWORD, "newPassword": OWN_PASSWORD});
    let changed = http::send(&app.base, &app.http, &session, Method::POST, "/api/v1/me/password", Some(&change)).await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "set-up: mallory's own password: {}", changed.body);
    let session = Credential::Session(
        http::sign_in(&app.base, "mallory", OWN_PASSWORD).await.unwrap_or_else(|a| panic!("set-up: {a:?}")),
    );
    let token = json!({"displayName": "mallory's token"});
    let made = http::send(&app.base, &app.http, &session, Method::POST, "/api/v1/tokens", Some(&token)).await;
    assert_eq!(made.status, StatusCode::CREATED, "set-up: mallory's token: {}", made.body);
    let mallory_token = made.body["token"].as_str().expect("the token").to_owned();
    Tenant { mallory, mallory_token, role_group, pilot, helpdesk, role, bob }
}

/// A change that looks harmless to an approver, and is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Benign {
    /// A clearer description of the sample app or script.
    Describe(ResourceType),
    RetireDevice,
    /// Let the Helpdesk group (carol) approve app requests too.
    WidenAppPolicy,
}

/// The benign changes a built-in role can propose.
fn benign_changes(role: &str) -> Vec<Benign> {
    match role {
        "Administrator" => vec![Benign::Describe(ResourceType::App), Benign::WidenAppPolicy],
        "Application Manager" => vec![Benign::Describe(ResourceType::App)],
        "Policy and Profile Manager" => vec![Benign::Describe(ResourceType::Script)],
        "Help Desk Operator" => vec![Benign::RetireDevice],
        _ => vec![],
    }
}

const DESCRIPTION: &str = "benign: a clearer description";

impl Tenant {
    /// Property 2's one approval: mallory proposes a benign change its role allows (`pick`
    /// chooses which), bob reads the request, checks that it is exactly that, and approves it.
    pub async fn approve_one_benign_request(&self, app: &TestApp, pick: Pick) -> Result<Approved, String> {
        let changes = benign_changes(self.role.display_name);
        let benign =
            *pick.of(&changes).ok_or_else(|| format!("set-up: {} proposes nothing", self.role.display_name))?;
        let mallory = Credential::Token(self.mallory_token.clone());
        let app_policy = app
            .store
            .policies()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|p| p.profile_type == ProfileType::App)
            .ok_or("set-up: an app policy")?;
        let (method, path, body) = match benign {
            Benign::Describe(resource_type) => {
                let id = sample(app, resource_type);
                let body = json!({
                    "name": format!("sample {resource_type}"), "description": DESCRIPTION,
                    "document": {"v": 1}, "justification": "benign",
                });
                (Method::PUT, format!("/api/v1/resources/{resource_type}/{id}"), body)
            }
            Benign::RetireDevice => {
                let device = sample_device(app);
                (Method::POST, format!("/api/v1/devices/{device}/retire"), json!({"justification": "benign"}))
            }
            Benign::WidenAppPolicy => {
                let mut groups = app_policy.approver_group_ids.clone();
                groups.push(self.helpdesk.clone());
                let body = json!({"displayName": app_policy.display_name, "profileType": "app",
                    "approverGroupIds": groups, "justification": "benign"});
                (Method::PUT, format!("/api/v1/accessPolicies/{}", app_policy.id), body)
            }
        };
        let held = http::send(&app.base, &app.http, &mallory, method, &path, Some(&body)).await;
        if held.status != StatusCode::ACCEPTED {
            return Err(format!("set-up: the benign change is held: {held:?}"));
        }
        let request = held.id().ok_or("set-up: a request id")?;

        // bob reads the request and approves only what he expects to see.
        let seen = as_bob(app, &self.bob, Method::GET, &format!("/api/v1/requests/{request}"), None).await;
        let (before, after) = (&seen.body["before"], &seen.body["after"]);
        let mut expected = before.clone();
        let mut shown = after.clone();
        match benign {
            Benign::Describe(_) => expected["description"] = json!(DESCRIPTION),
            Benign::RetireDevice => expected["state"] = json!("retired"),
            Benign::WidenAppPolicy => {
                // Group ids are a set: compared sorted.
                let mut groups: Vec<String> = app_policy.approver_group_ids.clone();
                groups.push(self.helpdesk.clone());
                groups.sort();
                expected["approverGroupIds"] = json!(groups);
                let mut seen_groups: Vec<String> =
                    serde_json::from_value(after["approverGroupIds"].clone()).unwrap_or_default();
                seen_groups.sort();
                shown["approverGroupIds"] = json!(seen_groups);
            }
        }
        if seen.status != StatusCode::OK || shown != expected {
            return Err(format!("set-up: bob sees another change than the benign one: {}", seen.body));
        }
        let approve = Some(json!({"notes": "ok"}));
        let approved =
            as_bob(app, &self.bob, Method::POST, &format!("/api/v1/requests/{request}/approve"), approve).await;
        if approved.status != StatusCode::OK || approved.body["status"] != "approved" {
            return Err(format!("set-up: bob approves the benign change: {approved:?}"));
        }
        let record = app.store.request(&request).await.map_err(|e| e.to_string())?;
        let key = match benign {
            Benign::WidenAppPolicy => format!("access policy {}", record.object_id),
            _ => format!("{} {}", record.resource_type, record.object_id),
        };
        let what = match benign {
            Benign::Describe(resource_type) => format!("a clearer description of the sample {resource_type}"),
            Benign::RetireDevice => "retiring the sample device".into(),
            Benign::WidenAppPolicy => "letting group Helpdesk (carol) approve app requests too".into(),
        };
        Ok(Approved { what, request, key, after: after.clone(), before_version: record.before_version })
    }
}
