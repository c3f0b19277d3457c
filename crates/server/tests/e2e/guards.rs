//! Who may decide, and the guards of the guards: R2, R3, R4, R9, R14, and permissions first.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

backend_tests!(r3_the_requester_in_the_approver_group_cannot_approve);
async fn r3_the_requester_in_the_approver_group_cannot_approve(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let id = app.create_app("Zoom").await;
        let (_, request) = app.update_app(&app.dave, &id, "2.0").await;
        let rid = request["id"].as_str().unwrap();
        let (_, received) = app.get(&app.dave, "/api/v1/requests?view=received").await;
        let own = received["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == rid)
            .expect("dave sees his own request in Received");
        assert_eq!(own["canApprove"], false);
        for action in ["approve", "reject"] {
            let (s, body) = app.post(&app.dave, &format!("/api/v1/requests/{rid}/{action}"), json!({})).await;
            assert_problem(s, &body, 403, "self_approval_forbidden");
        }
        let (_, unchanged) = app.get(&app.dave, &format!("/api/v1/requests/{rid}")).await;
        assert_eq!(unchanged["status"], "needsApproval");
        assert!(unchanged["approvals"].as_array().unwrap().is_empty());
    })
    .await;
}

backend_tests!(r2_a_service_account_submits_but_never_decides);
async fn r2_a_service_account_submits_but_never_decides(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let id = app.create_app("Zoom").await;
        let (s, by_service) = app.update_app(&app.svc, &id, "2.0").await;
        assert_eq!(s, StatusCode::ACCEPTED, "automation is held like anyone: {by_service}");
        let other = app.create_app("Teams").await;
        let (_, request) = app.update_app(&app.alice, &other, "2.0").await;
        let rid = request["id"].as_str().unwrap();
        for action in ["approve", "reject"] {
            let (s, body) = app.post(&app.svc, &format!("/api/v1/requests/{rid}/{action}"), json!({})).await;
            assert_problem(s, &body, 403, "not_an_approver");
            assert!(body["detail"].as_str().unwrap().contains("service accounts never approve"), "{body}");
        }
    })
    .await;
}

backend_tests!(r2_accounts_outside_the_approver_groups_or_without_the_permission_cannot_decide);
async fn r2_accounts_outside_the_approver_groups_or_without_the_permission_cannot_decide(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let id = app.create_app("Zoom").await;
        let (_, request) = app.update_app(&app.dave, &id, "2.0").await;
        let rid = request["id"].as_str().unwrap();
        // alice holds Administrator (so maa.approve) but is not in the approver group.
        let (s, body) = app.post(&app.alice, &format!("/api/v1/requests/{rid}/approve"), json!({})).await;
        assert_problem(s, &body, 403, "not_an_approver");
        assert!(body["detail"].as_str().unwrap().contains("not a member of an approver group"));
    })
    .await;
}

backend_tests!(r4_a_second_submission_for_the_object_names_the_open_request);
async fn r4_a_second_submission_for_the_object_names_the_open_request(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let id = app.create_app("Zoom").await;
        let (_, first) = app.update_app(&app.alice, &id, "2.0").await;
        let before = app.audit_len().await;
        let (s, second) = app.update_app(&app.dave, &id, "3.0").await;
        assert_problem(s, &second, 409, "request_open_for_object");
        assert_eq!(second["requestId"], first["id"]);
        assert!(second["detail"].as_str().unwrap().contains(first["id"].as_str().unwrap()), "{second}");
        let (s, assign) = app
            .post(
                &app.alice,
                &format!("/api/v1/resources/app/{id}/assign"),
                json!({"groupIds": [], "justification": "x"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "an assignment that changes nothing is not a request: {assign}");
        let (s, delete) = app
            .call(
                &app.alice,
                Method::DELETE,
                &format!("/api/v1/resources/app/{id}"),
                Some(json!({"justification": "x"})),
            )
            .await;
        assert_problem(s, &delete, 409, "request_open_for_object");
        assert_eq!(app.audit_len().await, before, "refusals write nothing");
    })
    .await;
}

backend_tests!(r9_adding_yourself_to_an_approver_group_is_held);
async fn r9_adding_yourself_to_an_approver_group_is_held(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let (_, group) = app.get(&app.alice, &format!("/api/v1/groups/{}", app.approvers_group)).await;
        let mut members: Vec<String> =
            group["members"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect();
        members.push(app.alice.id.clone());
        let (s, request) = app
            .put(
                &app.alice,
                &format!("/api/v1/groups/{}/members", app.approvers_group),
                json!({"members": members, "justification": "I want to approve"}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{request}");
        assert_eq!(request["profileType"], "operationApprovalPolicy");
        let (_, group) = app.get(&app.alice, &format!("/api/v1/groups/{}", app.approvers_group)).await;
        assert!(
            group["members"].as_array().unwrap().iter().all(|m| m["id"] != app.alice.id.as_str()),
            "not a member yet"
        );
        let (_, me) = app.get(&app.alice, "/api/v1/me").await;
        assert!(!me["groupIds"].as_array().unwrap().iter().any(|g| g == app.approvers_group.as_str()));
    })
    .await;
}

backend_tests!(r9_approver_group_membership_is_held_even_without_any_policy_of_its_own_type);
async fn r9_approver_group_membership_is_held_even_without_any_policy_of_its_own_type(backend: TestBackend) {
    // Only an app policy exists: no operationApprovalPolicy, no role policy.
    let setup = Setup::only(&[(
        countersign_core::profile::ProfileType::App,
        1,
        countersign_core::policy::Completion::Requester,
    )]);
    with_app(backend, setup, |app| async move {
        let (s, request) = app
            .put(
                &app.admin,
                &format!("/api/v1/groups/{}/members", app.approvers_group),
                json!({"members": [app.admin.id], "justification": "replace the approvers"}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{request}");
        let rid = request["id"].as_str().unwrap();
        // The current approvers decide, so the admin's puppet plan needs bob or carol.
        let (s, body) = app.post(&app.dave, &format!("/api/v1/requests/{rid}/approve"), json!({})).await;
        assert_eq!(s, StatusCode::OK, "dave is a current approver: {body}");
        let (s, _) = app
            .put(&app.admin, &format!("/api/v1/groups/{}/members", app.empty_group), json!({"members": [app.admin.id]}))
            .await;
        assert_eq!(s, StatusCode::OK, "a group no policy names is not protected");
    })
    .await;
}

backend_tests!(r9_resetting_or_disabling_an_approver_is_held);
async fn r9_resetting_or_disabling_an_approver_is_held(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let path = format!("/api/v1/accounts/{}", app.bob.id);
        let (s, reset) = app
            .call(
                &app.admin,
                Method::PATCH,
                &path,
                Some(json!({"password": "attacker controlled", "justification": "forgot"})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{reset}");
        assert_eq!(reset["after"]["password"], "changed", "approvers see that it changes, never the hash");
        assert!(!reset.to_string().contains("argon2"), "{reset}");
        let (s, _) = app.get(&app.bob, "/api/v1/me").await;
        assert_eq!(s, StatusCode::OK, "bob's credentials are untouched while held");
        let login = app
            .http
            .post(format!("{}/api/v1/auth/login", app.base))
            .json(&json!({"username": "bob", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), StatusCode::OK, "the old password still works");
        app.post(&app.admin, &format!("/api/v1/requests/{}/cancel", reset["id"].as_str().unwrap()), json!({})).await;
        let (s, disable) = app
            .call(&app.admin, Method::PATCH, &path, Some(json!({"enabled": false, "justification": "offboarding"})))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{disable}");
        let (s, delete) = app
            .call(
                &app.admin,
                Method::PATCH,
                &format!("/api/v1/accounts/{}", app.alice.id),
                Some(json!({"enabled": false})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "alice is not an approver: {delete}");
    })
    .await;
}

backend_tests!(r9_access_policy_changes_are_held_without_any_policy_and_decided_by_the_proposed_approvers);
async fn r9_access_policy_changes_are_held_without_any_policy_and_decided_by_the_proposed_approvers(
    backend: TestBackend,
) {
    with_app(backend, Setup::unprotected(), |app| async move {
        let (s, request) = app
            .post(&app.admin, "/api/v1/accessPolicies", json!({"displayName": "Apps", "profileType": "app", "approverGroupIds": [app.approvers_group], "justification": "turn on MAA"}))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{request}");
        assert!(app.store.policies().await.unwrap().is_empty());
        let rid = request["id"].as_str().unwrap();
        app.approve(&app.bob, rid).await;
        let (s, done) = app.post(&app.admin, &format!("/api/v1/requests/{rid}/complete"), json!({})).await;
        assert_eq!(s, StatusCode::OK, "{done}");
        let policy_id = done["objectId"].as_str().unwrap();
        let (_, policy) = app.get(&app.admin, &format!("/api/v1/accessPolicies/{policy_id}")).await;
        assert_eq!(policy["profileType"], "app");
        let (s, body) = app.post(&app.alice, "/api/v1/resources/app", json!({"name": "x", "document": {}})).await;
        assert_problem(s, &body, 400, "justification_required");
        let (s, held) = app.post(&app.alice, "/api/v1/resources/app", json!({"name": "x", "document": {}, "justification": "now protected"})).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{held}");
        // Deleting the policy is itself held, decided by its current approvers.
        let (s, delete) = app.call(&app.admin, Method::DELETE, &format!("/api/v1/accessPolicies/{policy_id}"), Some(json!({"justification": "off"}))).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{delete}");
        assert_eq!(app.store.policies().await.unwrap().len(), 1);
    })
    .await;
}

backend_tests!(r14_a_policy_nobody_else_could_satisfy_is_refused_saying_why);
async fn r14_a_policy_nobody_else_could_satisfy_is_refused_saying_why(backend: TestBackend) {
    with_app(backend, Setup::unprotected(), |app| async move {
        let before = app.audit_len().await;
        let (s, body) = app
            .post(&app.admin, "/api/v1/accessPolicies", json!({"displayName": "Apps", "profileType": "app", "approverGroupIds": [app.empty_group], "justification": "lock it"}))
            .await;
        assert_problem(s, &body, 422, "no_eligible_approver");
        assert!(body["detail"].as_str().unwrap().contains("no members"), "{body}");
        // Three eligible approvers (bob, carol, dave); svc never counts.
        let (s, body) = app
            .post(&app.admin, "/api/v1/accessPolicies", json!({"displayName": "Apps", "profileType": "app", "approverGroupIds": [app.approvers_group], "requiredApprovals": 4, "justification": "x"}))
            .await;
        assert_problem(s, &body, 422, "no_eligible_approver");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("4 eligible approver(s) needed, 3 found"), "{detail}");
        assert!(detail.contains("svc: service accounts never approve"), "{detail}");
        // dave, saving it, does not count himself.
        let (s, body) = app
            .post(&app.dave, "/api/v1/accessPolicies", json!({"displayName": "Apps", "profileType": "app", "approverGroupIds": [app.approvers_group], "requiredApprovals": 3, "justification": "x"}))
            .await;
        assert_problem(s, &body, 422, "no_eligible_approver");
        assert!(body["detail"].as_str().unwrap().contains("dave: is the account saving the policy"), "{body}");
        assert_eq!(app.audit_len().await, before, "nothing written");
    })
    .await;
}

backend_tests!(r2_r14_the_policy_page_lists_each_approver_with_eligibility_and_reasons);
async fn r2_r14_the_policy_page_lists_each_approver_with_eligibility_and_reasons(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let (_, list) = app.get(&app.admin, "/api/v1/accessPolicies").await;
        let apps = list["value"].as_array().unwrap().iter().find(|p| p["profileType"] == "app").unwrap().clone();
        let (s, policy) =
            app.get(&app.admin, &format!("/api/v1/accessPolicies/{}", apps["id"].as_str().unwrap())).await;
        assert_eq!(s, StatusCode::OK, "{policy}");
        let approvers = policy["approvers"].as_array().unwrap();
        let find = |name: &str| approvers.iter().find(|a| a["username"] == name).unwrap().clone();
        assert_eq!(find("bob")["eligible"], true);
        assert_eq!(find("dave")["eligible"], true);
        assert_eq!(find("svc")["eligible"], false);
        assert_eq!(find("svc")["reasons"], json!(["service accounts never approve"]));
        assert_eq!(policy["eligibleApproverCount"], 3);
    })
    .await;
}

backend_tests!(permissions_come_before_maa);
async fn permissions_come_before_maa(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        // bob holds the Approver role: reads everything, writes nothing.
        let (s, body) = app
            .post(&app.bob, "/api/v1/resources/app", json!({"name": "x", "document": {}, "justification": "j"}))
            .await;
        assert_problem(s, &body, 403, "forbidden");
        assert!(body["detail"].as_str().unwrap().contains("apps.write"));
        let (s, body) = app
            .put(
                &app.bob,
                &format!("/api/v1/groups/{}/members", app.approvers_group),
                json!({"members": [], "justification": "j"}),
            )
            .await;
        assert_problem(s, &body, 403, "forbidden");
        let (s, body) = app.call(&app.bob, Method::DELETE, &format!("/api/v1/accounts/{}", app.alice.id), None).await;
        assert_problem(s, &body, 403, "forbidden");
        assert!(body["detail"].as_str().unwrap().contains("accounts.write"));
    })
    .await;
}

backend_tests!(r9_a_puppet_cannot_approve_the_first_operation_approval_policy);
/// The puppet attack: an admin makes an account they control eligible in a group of their own,
/// then proposes the first operationApprovalPolicy policy naming it, to govern every policy.
async fn r9_a_puppet_cannot_approve_the_first_operation_approval_policy(backend: TestBackend) {
    let setup = Setup::only(&[(
        countersign_core::profile::ProfileType::App,
        1,
        countersign_core::policy::Completion::Requester,
    )]);
    with_app(backend, setup, |app| async move {
        let a = &app.admin;
        let (s, puppet) = app
            .post(a, "/api/v1/accounts", json!({"username": "puppet", "displayName": "Puppet", "kind": "human", "password": "puppet password 1"}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{puppet}");
        let (_, puppets) = app.post(a, "/api/v1/groups", json!({"displayName": "Puppets"})).await;
        let puppets = puppets["id"].as_str().unwrap().to_owned();
        // A group of puppets alone is refused at once: R14 counts only approvers independent of
        // the saver (R16), and the puppet's password is admin's.
        let (s, _) = app.put(a, &format!("/api/v1/groups/{puppets}/members"), json!({"members": [puppet["id"]]})).await;
        assert_eq!(s, StatusCode::OK, "a group no policy names is not protected");
        let (s, refused) = app
            .post(a, "/api/v1/accessPolicies", json!({"displayName": "Guards", "profileType": "operationApprovalPolicy", "approverGroupIds": [puppets], "justification": "take over"}))
            .await;
        assert_problem(s, &refused, 422, "no_eligible_approver");
        assert!(refused["detail"].as_str().unwrap().contains("puppet: is not independent of you"), "{refused}");
        // With one honest member beside the puppet it is held, and decided by the current approvers.
        let (s, _) = app
            .put(a, &format!("/api/v1/groups/{puppets}/members"), json!({"members": [puppet["id"], app.carol.id]}))
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = app
            .post(a, "/api/v1/roleAssignments", json!({"roleId": "00000000-0000-7000-8000-000000000006", "groupIds": [puppets]}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "no role policy: RBAC is not protected");
        let (s, request) = app
            .post(a, "/api/v1/accessPolicies", json!({"displayName": "Guards", "profileType": "operationApprovalPolicy", "approverGroupIds": [puppets], "justification": "take over"}))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{request}");
        let rid = request["id"].as_str().unwrap();

        let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let login: serde_json::Value = client
            .post(format!("{}/api/v1/auth/login", app.base))
            .json(&json!({"username": "puppet", "password": "puppet password 1"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let csrf = login["csrfToken"].as_str().unwrap();
        let changed = client
            .post(format!("{}/api/v1/me/password", app.base))
            .header("X-CSRF-Token", csrf)
            .json(&json!({"currentPassword": "puppet password 1", "newPassword": "puppet password 2"}))
            .send()
            .await
            .unwrap();
        assert_eq!(changed.status(), StatusCode::NO_CONTENT);
        let approve = client
            .post(format!("{}/api/v1/requests/{rid}/approve", app.base))
            .header("X-CSRF-Token", csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(approve.status(), StatusCode::FORBIDDEN);
        assert_eq!(approve.json::<serde_json::Value>().await.unwrap()["code"], "not_an_approver");
        let (s, _) = app.post(&app.bob, &format!("/api/v1/requests/{rid}/approve"), json!({})).await;
        assert_eq!(s, StatusCode::OK, "the current approvers decide");
    })
    .await;
}

backend_tests!(role_member_groups_are_protected_when_a_role_policy_exists);
async fn role_member_groups_are_protected_when_a_role_policy_exists(backend: TestBackend) {
    use countersign_core::policy::Completion;
    use countersign_core::profile::ProfileType;
    with_app(backend, Setup::only(&[(ProfileType::Role, 1, Completion::Requester)]), |app| async move {
        let path = format!("/api/v1/groups/{}/members", app.operators_group);
        let (s, request) =
            app.put(&app.admin, &path, json!({"members": [app.admin.id], "justification": "tidy up"})).await;
        assert_eq!(s, StatusCode::ACCEPTED, "operators hold a role assignment: {request}");
        assert_eq!(request["profileType"], "role");
        let (s, role) = app
            .post(
                &app.admin,
                "/api/v1/roles",
                json!({"displayName": "R", "permissions": ["apps.read"], "justification": "j"}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{role}");
        let (s, _) = app
            .put(&app.admin, &format!("/api/v1/groups/{}/members", app.empty_group), json!({"members": [app.alice.id]}))
            .await;
        assert_eq!(s, StatusCode::OK, "a group without a role assignment is not protected");
    })
    .await;
    with_app(backend, Setup::unprotected(), |app| async move {
        let (s, _) = app
            .put(
                &app.admin,
                &format!("/api/v1/groups/{}/members", app.operators_group),
                json!({"members": [app.admin.id]}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "without a role policy RBAC is not protected");
    })
    .await;
}

backend_tests!(a_request_the_caller_may_not_see_cannot_be_acted_on_and_does_not_exist_for_them);
async fn a_request_the_caller_may_not_see_cannot_be_acted_on_and_does_not_exist_for_them(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let id = app.create_app("Zoom").await;
        let (_, request) = app.update_app(&app.alice, &id, "2.0").await;
        let rid = request["id"].as_str().unwrap();
        // eve has an account but no role and no group: she may see no request at all.
        let (s, eve) = app
            .post(
                &app.admin,
                "/api/v1/accounts",
                json!({"username": "eve", "displayName": "Eve", "kind": "human", "password": PASSWORD}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{eve}");
        let eve = Session::first_sign_in(&app, "eve").await;
        for action in ["approve", "reject", "cancel", "complete"] {
            let (status, body) = eve.call(Method::POST, &format!("/api/v1/requests/{rid}/{action}"), json!({})).await;
            assert_problem(status, &body, 404, "not_found");
        }
        let (_, unchanged) = app.get(&app.alice, &format!("/api/v1/requests/{rid}")).await;
        assert_eq!(unchanged["status"], "needsApproval");
        assert!(unchanged["approvals"].as_array().unwrap().is_empty());
    })
    .await;
}

backend_tests!(r19_an_account_manager_cannot_take_over_an_account_that_holds_more_than_they_do);
async fn r19_an_account_manager_cannot_take_over_an_account_that_holds_more_than_they_do(backend: TestBackend) {
    use countersign_core::policy::Completion;
    use countersign_core::profile::ProfileType;
    let setup = Setup::only(&[(ProfileType::App, 1, Completion::Requester)]);
    with_app(backend, setup, |app| async move {
        // mallory may manage accounts, and nothing else.
        let account = |username: &str| {
            json!({"username": username, "displayName": username, "kind": "human", "password": PASSWORD})
        };
        let (_, mallory) = app.post(&app.admin, "/api/v1/accounts", account("mallory")).await;
        let (_, eve) = app.post(&app.admin, "/api/v1/accounts", account("eve")).await;
        let (_, role) = app
            .post(
                &app.admin,
                "/api/v1/roles",
                json!({"displayName": "Account managers", "permissions": ["accounts.read", "accounts.write"]}),
            )
            .await;
        let (_, group) = app.post(&app.admin, "/api/v1/groups", json!({"displayName": "Account managers"})).await;
        let group_id = group["id"].as_str().unwrap();
        let (s, _) = app
            .put(&app.admin, &format!("/api/v1/groups/{group_id}/members"), json!({"members": [mallory["id"]]}))
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, assigned) =
            app.post(&app.admin, "/api/v1/roleAssignments", json!({"roleId": role["id"], "groupIds": [group_id]})).await;
        assert_eq!(s, StatusCode::CREATED, "{assigned}");

        let mallory = Session::first_sign_in(&app, "mallory").await;
        let new_password = json!({"password": "mallory owns this now"});
        for (method, target, body) in [
            (Method::PATCH, &app.admin.id, new_password.clone()),
            (Method::PATCH, &app.alice.id, new_password.clone()),
            (Method::PATCH, &app.alice.id, json!({"enabled": false})),
            (Method::DELETE, &app.alice.id, json!({})),
        ] {
            let (status, body) = mallory.call(method, &format!("/api/v1/accounts/{target}"), body).await;
            assert_problem(status, &body, 403, "would_escalate");
        }
        let (s, _) = app.get(&app.admin, "/api/v1/me").await;
        assert_eq!(s, StatusCode::OK, "the Administrator's credentials were not touched");
        // Over an account holding no more than mallory, and over what is not a credential, she may.
        let eve_id = eve["id"].as_str().unwrap();
        let (s, body) = mallory.call(Method::PATCH, &format!("/api/v1/accounts/{eve_id}"), new_password).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let (s, body) = mallory
            .call(Method::PATCH, &format!("/api/v1/accounts/{}", app.alice.id), json!({"displayName": "Alice Example"}))
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    })
    .await;
}

backend_tests!(a_second_policy_for_a_protected_profile_type_is_refused_at_once_not_held);
async fn a_second_policy_for_a_protected_profile_type_is_refused_at_once_not_held(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let audit_before = app.audit_len().await;
        let (s, body) = app
            .post(
                &app.admin,
                "/api/v1/accessPolicies",
                json!({"displayName": "Apps again", "profileType": "app", "approverGroupIds": [app.approvers_group], "justification": "a second one"}),
            )
            .await;
        assert_problem(s, &body, 409, "conflict");
        assert_eq!(app.audit_len().await, audit_before, "no request was held");
    })
    .await;
}
