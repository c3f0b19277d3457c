//! R17, the approved context is frozen: each test is an attack that changes what a change
//! depends on (a group it names, an account it adds, a role it assigns) between its approval
//! and its completion, and completion must then apply nothing and name what moved.

use crate::harness::*;
use countersign_core::permission::BUILT_IN_ROLES;
use reqwest::redirect::Policy;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

impl TestApp {
    /// A group the admin makes, with these members; not protected, since it approves nothing
    /// and holds no role.
    async fn group_with(&self, name: &str, members: &[&str]) -> String {
        let (status, group) = self.post(&self.admin, "/api/v1/groups", json!({"displayName": name})).await;
        assert_eq!(status, StatusCode::CREATED, "{group}");
        let id = group["id"].as_str().unwrap().to_owned();
        let (status, body) = self.set_members(&self.admin, &id, members).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        id
    }

    async fn set_members(&self, user: &User, group: &str, members: &[&str]) -> (StatusCode, Value) {
        self.put(user, &format!("/api/v1/groups/{group}/members"), json!({"members": members, "justification": "j"}))
            .await
    }

    /// A person the admin makes, in no group.
    async fn new_account(&self, username: &str) -> String {
        let (status, account) = self
            .post(
                &self.admin,
                "/api/v1/accounts",
                json!({"username": username, "displayName": username, "kind": "human", "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{account}");
        account["id"].as_str().unwrap().to_owned()
    }

    /// The takeover step: `user` sets another account's password, which is not held while that
    /// account is in no approver group.
    async fn reset_password(&self, user: &User, account: &str) {
        let (status, body) = self
            .call(
                user,
                Method::PATCH,
                &format!("/api/v1/accounts/{account}"),
                Some(json!({"password": "a password I know"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "applied at once: {body}");
    }

    /// alice proposes that `groups` approve app changes (held, R9), and bob approves; the
    /// request id.
    async fn approved_app_policy_update(&self, groups: &[&str]) -> String {
        let policy = self.app_policy().await;
        let (status, request) = self
            .put(
                &self.alice,
                &format!("/api/v1/accessPolicies/{policy}"),
                json!({"displayName": "app policy", "profileType": "app", "approverGroupIds": groups, "justification": "more approvers"}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{request}");
        let id = request["id"].as_str().unwrap().to_owned();
        assert_eq!(self.approve(&self.bob, &id).await["status"], "approved");
        id
    }

    async fn app_policy(&self) -> String {
        let (_, list) = self.get(&self.admin, "/api/v1/accessPolicies").await;
        let policy = list["value"].as_array().unwrap().iter().find(|p| p["profileType"] == "app").unwrap();
        policy["id"].as_str().unwrap().to_owned()
    }

    /// alice proposes a held change at `path`, bob approves, and alice completes it; the id of
    /// the object.
    async fn through_approval(&self, method: Method, path: &str, body: Value) -> String {
        let (status, request) = self.call(&self.alice, method, path, Some(body)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{request}");
        let id = request["id"].as_str().unwrap();
        self.approve(&self.bob, id).await;
        let done = self.complete(&self.alice, id).await;
        assert_eq!(done["status"], "completed", "{done}");
        done["objectId"].as_str().unwrap().to_owned()
    }

    async fn complete(&self, user: &User, request: &str) -> Value {
        let (status, done) = self.post(user, &format!("/api/v1/requests/{request}/complete"), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{done}");
        done
    }
}

/// The request failed, applied nothing, and says that `what` moved.
fn assert_failed_naming(done: &Value, what: &str) {
    assert_eq!(done["status"], "failed", "{done}");
    let reason = done["failureReason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("Nothing was applied: "), "{reason}");
    assert!(reason.contains(&format!("{what} changed after the request was submitted")), "{reason}");
}

fn role_named(name: &str) -> &'static str {
    BUILT_IN_ROLES.iter().find(|r| r.display_name == name).map(|r| r.id).unwrap()
}

fn dependency<'a>(request: &'a Value, name: &str) -> &'a Value {
    request["dependencies"]
        .as_array()
        .unwrap_or_else(|| panic!("dependencies: {request}"))
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {}", request["dependencies"]))
}

fn usernames(dependency: &Value) -> Vec<&str> {
    dependency["members"].as_array().unwrap().iter().map(|m| m["username"].as_str().unwrap()).collect()
}

backend_tests!(r17_joining_a_group_after_it_was_approved_as_an_approver_group_fails_completion);
/// Attack 1: "add Helpdesk (members: carol) as an approver group" is approved; the requester
/// then joins Helpdesk (not yet an approver group, so not held) and completes.
async fn r17_joining_a_group_after_it_was_approved_as_an_approver_group_fails_completion(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let helpdesk = app.group_with("Helpdesk", &[&app.carol.id]).await;
        let request = app.approved_app_policy_update(&[&app.approvers_group, &helpdesk]).await;
        let (status, joined) = app.set_members(&app.alice, &helpdesk, &[&app.carol.id, &app.alice.id]).await;
        assert_eq!(status, StatusCode::OK, "applied at once: {joined}");
        let done = app.complete(&app.alice, &request).await;
        assert_failed_naming(&done, "group 'Helpdesk'");
        let policy = app.app_policy().await;
        let (_, policy) = app.get(&app.admin, &format!("/api/v1/accessPolicies/{policy}")).await;
        assert_eq!(policy["approverGroupIds"], json!([app.approvers_group]), "nothing applied");
    })
    .await;
}

backend_tests!(r17_taking_over_a_member_of_a_group_about_to_approve_fails_completion);
/// Attack 1 with a puppet: after the approval, the requester resets the password of erin, a
/// member of the group about to become an approver group (not yet protected by R9), and
/// completes: erin would approve as the requester's puppet.
async fn r17_taking_over_a_member_of_a_group_about_to_approve_fails_completion(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let erin = app.new_account("erin").await;
        let helpdesk = app.group_with("Helpdesk", &[&erin]).await;
        let request = app.approved_app_policy_update(&[&app.approvers_group, &helpdesk]).await;
        app.reset_password(&app.alice, &erin).await;
        let done = app.complete(&app.alice, &request).await;
        assert_failed_naming(&done, "account 'erin'");
    })
    .await;
}

backend_tests!(r17_joining_a_group_after_a_role_grant_to_it_was_approved_fails_completion);
/// Attack 2: "grant Help Desk Operator to Helpdesk" is approved; the requester then joins
/// Helpdesk (it holds no role yet, so that is not held) and completes.
async fn r17_joining_a_group_after_a_role_grant_to_it_was_approved_fails_completion(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let helpdesk = app.group_with("Helpdesk", &[&app.carol.id]).await;
        let (status, request) = app
            .post(
                &app.alice,
                "/api/v1/roleAssignments",
                json!({"roleId": role_named("Help Desk Operator"), "groupIds": [helpdesk], "justification": "helpdesk"}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{request}");
        let request = request["id"].as_str().unwrap();
        app.approve(&app.bob, request).await;
        let (status, joined) = app.set_members(&app.alice, &helpdesk, &[&app.carol.id, &app.alice.id]).await;
        assert_eq!(status, StatusCode::OK, "applied at once: {joined}");
        let done = app.complete(&app.alice, request).await;
        assert_failed_naming(&done, "group 'Helpdesk'");
        let (_, assignments) = app.get(&app.admin, "/api/v1/roleAssignments").await;
        let granted = assignments["value"].as_array().unwrap().iter().any(|a| a["groupIds"] == json!([helpdesk]));
        assert!(!granted, "nothing applied: {assignments}");
    })
    .await;
}

backend_tests!(r17_a_role_whose_permissions_changed_after_its_grant_was_submitted_fails_completion);
/// A grant of Helpers is approved; then Helpers gains `accounts.write` (through a request of
/// its own) before the grant is completed: the approver approved the role as it was.
async fn r17_a_role_whose_permissions_changed_after_its_grant_was_submitted_fails_completion(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let role_body = |permissions: &[&str]| {
            json!({"displayName": "Helpers", "permissions": permissions, "justification": "helpers"})
        };
        let helpers = app.through_approval(Method::POST, "/api/v1/roles", role_body(&["apps.read"])).await;
        let (status, grant) = app
            .post(
                &app.alice,
                "/api/v1/roleAssignments",
                json!({"roleId": helpers, "groupIds": [app.empty_group], "justification": "helpers"}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{grant}");
        let grant = grant["id"].as_str().unwrap();
        app.approve(&app.bob, grant).await;
        app.through_approval(Method::PUT, &format!("/api/v1/roles/{helpers}"), role_body(&["apps.read", "accounts.write"]))
            .await;
        let done = app.complete(&app.alice, grant).await;
        assert_failed_naming(&done, "role 'Helpers'");
    })
    .await;
}

backend_tests!(r17_taking_over_an_account_after_its_joining_an_approver_group_was_approved_fails_completion);
/// Attack 3: "erin joins the approver group" is approved (held under R9); the requester then
/// resets erin's password (erin is in no approver group yet, so that is not held) and
/// completes.
async fn r17_taking_over_an_account_after_its_joining_an_approver_group_was_approved_fails_completion(
    backend: TestBackend,
) {
    with_app(backend, Setup::protected(), |app| async move {
        let erin = app.new_account("erin").await;
        let members = [&app.bob.id, &app.carol.id, &app.dave.id, &app.svc.id, &erin].map(String::as_str);
        let (status, request) = app.set_members(&app.alice, &app.approvers_group, &members).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{request}");
        let request = request["id"].as_str().unwrap();
        app.approve(&app.bob, request).await;
        app.reset_password(&app.alice, &erin).await;
        let done = app.complete(&app.alice, request).await;
        assert_failed_naming(&done, "account 'erin'");
        let (_, group) = app.get(&app.admin, &format!("/api/v1/groups/{}", app.approvers_group)).await;
        assert!(usernames(&group).iter().all(|u| *u != "erin"), "nothing applied: {group}");
    })
    .await;
}

backend_tests!(r17_an_unrelated_change_does_not_fail_completion);
async fn r17_an_unrelated_change_does_not_fail_completion(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let helpdesk = app.group_with("Helpdesk", &[&app.carol.id]).await;
        let other = app.group_with("Other", &[]).await;
        let request = app.approved_app_policy_update(&[&app.approvers_group, &helpdesk]).await;
        let (status, joined) = app.set_members(&app.alice, &other, &[&app.alice.id]).await;
        assert_eq!(status, StatusCode::OK, "{joined}");
        let done = app.complete(&app.alice, &request).await;
        assert_eq!(done["status"], "completed", "{done}");
        let policy = app.app_policy().await;
        let (_, policy) = app.get(&app.admin, &format!("/api/v1/accessPolicies/{policy}")).await;
        assert_eq!(policy["approverGroupIds"], json!([app.approvers_group, helpdesk]));
    })
    .await;
}

backend_tests!(r17_approvers_see_the_dependencies_with_their_current_members_on_every_surface);
async fn r17_approvers_see_the_dependencies_with_their_current_members_on_every_surface(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let helpdesk = app.group_with("Helpdesk", &[&app.carol.id]).await;
        let request = app.approved_app_policy_update(&[&app.approvers_group, &helpdesk]).await;
        let (status, seen) = app.get(&app.bob, &format!("/api/v1/requests/{request}")).await;
        assert_eq!(status, StatusCode::OK, "{seen}");
        let group = dependency(&seen, "Helpdesk");
        assert_eq!(group["resourceType"], "group");
        assert_eq!(group["id"], helpdesk.as_str());
        assert_eq!(usernames(group), ["carol"]);
        assert_eq!(group["changed"], false);
        assert_eq!(group["currentVersion"], group["versionAtSubmission"]);
        assert_eq!(usernames(dependency(&seen, "Approvers")), ["bob", "carol", "dave", "svc"]);
        let carol = dependency(&seen, "carol");
        assert_eq!((carol["resourceType"].as_str(), carol["members"].is_null()), (Some("account"), true));

        app.set_members(&app.alice, &helpdesk, &[&app.carol.id, &app.alice.id]).await;
        let (_, seen) = app.get(&app.bob, &format!("/api/v1/requests/{request}")).await;
        let group = dependency(&seen, "Helpdesk");
        assert_eq!(usernames(group), ["alice", "carol"], "its members now");
        assert_eq!(group["changed"], true);
        assert_eq!(group["currentVersion"], group["versionAtSubmission"].as_i64().unwrap() + 1);
        assert_eq!(dependency(&seen, "Approvers")["changed"], false);

        let (_, mine) = app.get(&app.alice, "/api/v1/requests?view=mine").await;
        assert!(mine["value"][0]["dependencies"].is_null(), "lists leave them out: {mine}");

        let (status, graph) =
            app.get(&app.bob, &format!("/beta/deviceManagement/operationApprovalRequests/{request}")).await;
        assert_eq!(status, StatusCode::OK, "{graph}");
        let extension = graph["countersign_dependencies"].as_array().unwrap_or_else(|| panic!("{graph}"));
        let group = extension.iter().find(|d| d["name"] == "Helpdesk").unwrap();
        assert_eq!((group["changed"].as_bool(), usernames(group)), (Some(true), vec!["alice", "carol"]));

        let web = reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap();
        let signed_in = app.web_sign_in(&web, "bob", PASSWORD).await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        let page = web.get(format!("{}/requests/{request}", app.base)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let page = page.text().await.unwrap();
        assert!(page.contains("Depends on"), "{page}");
        assert!(page.contains(&format!("data-dependency=\"{helpdesk}\"")), "{page}");
        assert!(page.contains("Members: alice, carol"), "{page}");
        assert!(page.contains("id=\"dependencies-changed\"") && page.contains("submitted: Helpdesk."), "{page}");
    })
    .await;
}
