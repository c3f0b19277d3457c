//! Who a protected object reaches, and where approval requests go: R18, and R9 for an
//! approver's e-mail address and display name. Each test is written as the attack.

use crate::harness::*;
use countersign_core::profile::{ProfileType, ResourceType};
use reqwest::redirect::Policy;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The sample object of `resource_type`, assigned to `group` through an approved request.
async fn assign_sample(app: &TestApp, resource_type: ResourceType, group: &str) -> String {
    let id = app.samples.iter().find(|(t, _)| *t == resource_type).map(|(_, id)| id.clone()).unwrap();
    let (s, held) = app
        .post(
            &app.alice,
            &format!("/api/v1/resources/{resource_type}/{id}/assign"),
            json!({"groupIds": [group], "justification": "roll out to the group"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{held}");
    let rid = held["id"].as_str().unwrap();
    assert_eq!(app.approve(&app.bob, rid).await["status"], "approved");
    let (s, done) = app.post(&app.alice, &format!("/api/v1/requests/{rid}/complete"), json!({})).await;
    assert_eq!((s, done["status"].as_str()), (StatusCode::OK, Some("completed")), "{done}");
    id
}

/// A new group with these members, made while it reaches nothing (so not protected).
async fn new_group(app: &TestApp, name: &str, members: &[&str]) -> String {
    let (s, group) = app.post(&app.admin, "/api/v1/groups", json!({"displayName": name})).await;
    assert_eq!(s, StatusCode::CREATED, "{group}");
    let id = group["id"].as_str().unwrap().to_owned();
    let (s, body) = app.put(&app.admin, &format!("/api/v1/groups/{id}/members"), json!({"members": members})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    id
}

async fn member_ids(app: &TestApp, group: &str) -> Vec<String> {
    let (_, group) = app.get(&app.admin, &format!("/api/v1/groups/{group}")).await;
    group["members"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect()
}

async fn policy_of(app: &TestApp, profile_type: ProfileType) -> Value {
    let (_, page) = app.get(&app.admin, "/api/v1/accessPolicies").await;
    page["value"].as_array().unwrap().iter().find(|p| p["profileType"] == profile_type.as_str()).unwrap().clone()
}

async fn cancel(app: &TestApp, user: &User, request: &Value) {
    let rid = request["id"].as_str().unwrap();
    let (s, body) = app.post(user, &format!("/api/v1/requests/{rid}/cancel"), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

backend_tests!(r18_joining_the_group_an_approved_script_is_assigned_to_is_held_under_the_scripts_policy);
async fn r18_joining_the_group_an_approved_script_is_assigned_to_is_held_under_the_scripts_policy(
    backend: TestBackend,
) {
    with_app(backend, Setup::protected(), |app| async move {
        assign_sample(&app, ResourceType::Script, &app.empty_group).await;
        let scripts = policy_of(&app, ProfileType::Script).await;
        let members_path = format!("/api/v1/groups/{}/members", app.empty_group);
        // The attacker widens the approved deployment to themself...
        let (s, joined) =
            app.put(&app.alice, &members_path, json!({"members": [app.alice.id], "justification": "me too"})).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{joined}");
        assert_eq!((&joined["profileType"], &joined["policyId"]), (&json!("script"), &scripts["id"]));
        assert!(member_ids(&app, &app.empty_group).await.is_empty(), "held, not applied");
        cancel(&app, &app.alice, &joined).await;
        // ...or to a puppet account of their own making.
        let (s, puppet) = app
            .post(
                &app.alice,
                "/api/v1/accounts",
                json!({"username": "puppet", "displayName": "Puppet", "kind": "human", "password": "puppet password 1"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{puppet}");
        let (s, widened) = app
            .put(&app.alice, &members_path, json!({"members": [puppet["id"]], "justification": "a new colleague"}))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{widened}");
        assert_eq!(widened["policyId"], scripts["id"]);
        // The scripts policy's approvers decide, like any change to the script.
        let rid = widened["id"].as_str().unwrap();
        app.approve(&app.bob, rid).await;
        let (_, done) = app.post(&app.alice, &format!("/api/v1/requests/{rid}/complete"), json!({})).await;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(member_ids(&app, &app.empty_group).await, vec![puppet["id"].as_str().unwrap().to_owned()]);
    })
    .await;
}

backend_tests!(r18_removing_members_from_or_deleting_the_group_an_approved_app_is_assigned_to_is_held);
async fn r18_removing_members_from_or_deleting_the_group_an_approved_app_is_assigned_to_is_held(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let sales = new_group(&app, "Sales", &[&app.carol.id, &app.alice.id]).await;
        assign_sample(&app, ResourceType::App, &sales).await;
        let (s, narrowed) = app
            .put(
                &app.alice,
                &format!("/api/v1/groups/{sales}/members"),
                json!({"members": [app.alice.id], "justification": "carol does not need it"}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{narrowed}");
        assert_eq!(narrowed["profileType"], "app");
        assert_eq!(member_ids(&app, &sales).await.len(), 2, "held, not applied");
        cancel(&app, &app.alice, &narrowed).await;
        let (s, deleted) = app
            .call(
                &app.alice,
                Method::DELETE,
                &format!("/api/v1/groups/{sales}"),
                Some(json!({"justification": "tidy"})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{deleted}");
        assert_eq!(deleted["profileType"], "app");
        let (s, _) = app.get(&app.admin, &format!("/api/v1/groups/{sales}")).await;
        assert_eq!(s, StatusCode::OK, "the group is still there");
    })
    .await;
}

backend_tests!(r18_every_assignable_type_protects_the_groups_it_is_assigned_to);
async fn r18_every_assignable_type_protects_the_groups_it_is_assigned_to(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        for resource_type in
            [ResourceType::App, ResourceType::Script, ResourceType::CompliancePolicy, ResourceType::ConfigurationPolicy]
        {
            let group = new_group(&app, &format!("Reached by {resource_type}"), &[]).await;
            assign_sample(&app, resource_type, &group).await;
            let (s, joined) = app
                .put(
                    &app.alice,
                    &format!("/api/v1/groups/{group}/members"),
                    json!({"members": [app.alice.id], "justification": "me too"}),
                )
                .await;
            assert_eq!(s, StatusCode::ACCEPTED, "{resource_type}: {joined}");
            assert_eq!(joined["profileType"], resource_type.profile_type().as_str());
        }
        // A group nothing protected is assigned to is still the administrators' to change.
        let (s, body) = app
            .put(&app.alice, &format!("/api/v1/groups/{}/members", app.empty_group), json!({"members": [app.alice.id]}))
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    })
    .await;
}

backend_tests!(r18_opting_out_is_itself_held_and_then_the_assigned_groups_change_at_once);
async fn r18_opting_out_is_itself_held_and_then_the_assigned_groups_change_at_once(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let scripts = policy_of(&app, ProfileType::Script).await;
        assert_eq!(scripts["protectAssignedGroups"], true, "protected by default");
        let path = format!("/api/v1/accessPolicies/{}", scripts["id"].as_str().unwrap());
        let body = json!({
            "displayName": scripts["displayName"], "profileType": "script",
            "approverGroupIds": scripts["approverGroupIds"], "protectAssignedGroups": false,
            "justification": "script targeting is managed elsewhere",
        });
        let (s, opt_out) = app.put(&app.alice, &path, body).await;
        assert_eq!(s, StatusCode::ACCEPTED, "an R9 change: {opt_out}");
        assert_eq!(
            (&opt_out["before"]["protectAssignedGroups"], &opt_out["after"]["protectAssignedGroups"]),
            (&json!(true), &json!(false))
        );
        assert!(opt_out["diffText"].as_str().unwrap().contains("protectAssignedGroups"), "{opt_out}");
        assert_eq!(policy_of(&app, ProfileType::Script).await["protectAssignedGroups"], true, "held, not applied");
        let rid = opt_out["id"].as_str().unwrap();
        app.approve(&app.bob, rid).await;
        let (_, done) = app.post(&app.alice, &format!("/api/v1/requests/{rid}/complete"), json!({})).await;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(policy_of(&app, ProfileType::Script).await["protectAssignedGroups"], false);

        assign_sample(&app, ResourceType::Script, &app.empty_group).await;
        let (s, joined) = app
            .put(&app.alice, &format!("/api/v1/groups/{}/members", app.empty_group), json!({"members": [app.alice.id]}))
            .await;
        assert_eq!(s, StatusCode::OK, "the policy opted out: {joined}");
        assert_eq!(member_ids(&app, &app.empty_group).await, vec![app.alice.id.clone()]);
    })
    .await;
}

backend_tests!(r9_redirecting_an_approvers_email_or_renaming_them_is_held);
async fn r9_redirecting_an_approvers_email_or_renaming_them_is_held(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let bob = format!("/api/v1/accounts/{}", app.bob.id);
        let (s, redirect) = app
            .call(
                &app.admin,
                Method::PATCH,
                &bob,
                Some(json!({"email": "bob@attacker.test", "justification": "new mailbox"})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{redirect}");
        assert_eq!(redirect["profileType"], "operationApprovalPolicy");
        assert_eq!(redirect["after"]["email"], "bob@attacker.test", "approvers see where the mail would go");
        let (_, account) = app.get(&app.admin, &bob).await;
        assert_eq!(account["email"], Value::Null, "held, not applied: {account}");
        cancel(&app, &app.admin, &redirect).await;
        let (s, renamed) = app
            .call(&app.admin, Method::PATCH, &bob, Some(json!({"displayName": "Robert", "justification": "typo"})))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{renamed}");
        let (_, account) = app.get(&app.admin, &bob).await;
        assert_eq!(account["displayName"], "bob", "held, not applied: {account}");
        // An account in no approver group is changed at once.
        let (s, body) = app
            .call(
                &app.admin,
                Method::PATCH,
                &format!("/api/v1/accounts/{}", app.alice.id),
                Some(json!({"email": "alice@example.test", "displayName": "Alice"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    })
    .await;
}

backend_tests!(r9_an_approvers_email_is_held_without_any_operation_approval_policy);
async fn r9_an_approvers_email_is_held_without_any_operation_approval_policy(backend: TestBackend) {
    let setup = Setup::only(&[(ProfileType::App, 1, countersign_core::policy::Completion::Requester)]);
    with_app(backend, setup, |app| async move {
        let (s, redirect) = app
            .call(
                &app.admin,
                Method::PATCH,
                &format!("/api/v1/accounts/{}", app.bob.id),
                Some(json!({"email": "bob@attacker.test", "justification": "new mailbox"})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{redirect}");
        let (s, body) = app
            .post(&app.carol, &format!("/api/v1/requests/{}/approve", redirect["id"].as_str().unwrap()), json!({}))
            .await;
        assert_eq!(s, StatusCode::OK, "the app policy's current approvers decide: {body}");
    })
    .await;
}

backend_tests!(the_web_policy_form_carries_the_assigned_groups_switch);
async fn the_web_policy_form_carries_the_assigned_groups_switch(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let client = reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap();
        app.web_sign_in(&client, "admin", PASSWORD).await;
        let scripts = policy_of(&app, ProfileType::Script).await;
        let id = scripts["id"].as_str().unwrap();
        let edit = client.get(format!("{}/policies/{id}/edit", app.base)).send().await.unwrap().text().await.unwrap();
        let field = r#"name="csrf" value=""#;
        let at = edit.find(field).unwrap() + field.len();
        let csrf = edit[at..].split('"').next().unwrap().to_owned();
        // The approvers step sends a hidden "false", then "true" only when the box is ticked.
        for (sent, approvals, expected) in [(vec!["false"], "1", false), (vec!["false", "true"], "2", true)] {
            let mut form = vec![
                ("csrf", csrf.as_str()),
                ("policy_id", id),
                ("step", "create"),
                ("display_name", "Scripts"),
                ("profile_type", "script"),
                ("approver_group_ids", app.approvers_group.as_str()),
                ("required_approvals", approvals),
                ("completion", "requester"),
                ("request_ttl", "P30D"),
                ("justification", "set the switch"),
            ];
            form.extend(sent.iter().map(|v| ("protect_assigned_groups", *v)));
            let saved = client.post(format!("{}/policies/new", app.base)).form(&form).send().await.unwrap();
            assert_eq!(saved.status(), StatusCode::OK);
            assert!(saved.text().await.unwrap().contains("Approval needed"));
            let (_, mine) = app.get(&app.admin, "/api/v1/requests?view=mine").await;
            let held = mine["value"].as_array().unwrap().iter().find(|r| r["objectId"] == id).unwrap().clone();
            assert_eq!(held["after"]["protectAssignedGroups"], expected, "{sent:?}: {held}");
            cancel(&app, &app.admin, &held).await;
        }
        let page = client.get(format!("{}/policies/{id}", app.base)).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("assigned to need approval"), "the policy page says what the switch does");
    })
    .await;
}
