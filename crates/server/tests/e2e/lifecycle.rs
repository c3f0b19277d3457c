//! The request lifecycle: R1, R3, R5–R8, R10–R12, R15, and every profile type.

use crate::harness::*;
use countersign_core::policy::Completion;
use countersign_core::profile::ProfileType;
use reqwest::{Method, StatusCode};
use serde_json::json;

backend_tests!(r1_a_protected_change_is_held_then_approved_completed_and_applied_once);
async fn r1_a_protected_change_is_held_then_approved_completed_and_applied_once(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let id = app.create_app("Zoom").await;
        let (status, request) = app.update_app(&app.alice, &id, "2.0").await;
        assert_eq!(status, StatusCode::ACCEPTED, "{request}");
        assert_eq!(request["status"], "needsApproval");
        assert_eq!(request["justification"], "upgrade");
        assert_eq!(request["before"]["document"]["version"], "1.0");
        assert_eq!(request["after"]["document"]["version"], "2.0");
        assert!(request["diffText"].as_str().unwrap().contains("~ /document/version: \"1.0\" → \"2.0\""), "{request}");
        let request_id = request["id"].as_str().unwrap().to_owned();

        let (_, held) = app.get(&app.alice, &format!("/api/v1/resources/app/{id}")).await;
        assert_eq!(held["document"]["version"], "1.0", "R1: not applied while held");

        let (_, received) = app.get(&app.bob, "/api/v1/requests?view=received").await;
        let row = received["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == request_id.as_str())
            .expect("bob receives it")
            .clone();
        assert_eq!(row["canApprove"], true);

        let (status, approved) = app
            .post(
                &app.bob,
                &format!("/api/v1/requests/{request_id}/approve"),
                json!({"notes": "matches the CAB ticket"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{approved}");
        assert_eq!(approved["status"], "approved");
        let (_, mine) = app.get(&app.alice, &format!("/api/v1/requests/{request_id}")).await;
        assert_eq!(mine["approvals"][0]["notes"], "matches the CAB ticket");
        assert_eq!(mine["canComplete"], true);
        let (_, still) = app.get(&app.alice, &format!("/api/v1/resources/app/{id}")).await;
        assert_eq!(still["document"]["version"], "1.0", "R8: approved is not applied until completed");

        let (status, completed) =
            app.post(&app.alice, &format!("/api/v1/requests/{request_id}/complete"), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{completed}");
        assert_eq!(completed["status"], "completed");
        let (_, after) = app.get(&app.alice, &format!("/api/v1/resources/app/{id}")).await;
        assert_eq!(after["document"]["version"], "2.0");
        assert_eq!(after["version"], 2, "created at version 1, the update applied once");
        assert_eq!(app.audit_actions("applied", &id).await, 2, "one applied entry for the create, one for the update");
        let (status, again) = app.post(&app.alice, &format!("/api/v1/requests/{request_id}/complete"), json!({})).await;
        assert_problem(status, &again, 409, "invalid_transition");
    })
    .await;
}

backend_tests!(a_held_change_answers_202_with_a_location);
async fn a_held_change_answers_202_with_a_location(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let response = app
            .http
            .post(format!("{}/api/v1/resources/script", app.base))
            .bearer_auth(&app.alice.token)
            .header("X-Justification", "needed for the rollout")
            .json(&json!({"name": "s", "document": {"content": "echo"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(location, format!("/api/v1/requests/{}", body["id"].as_str().unwrap()));
        assert_eq!(body["justification"], "needed for the rollout", "the header carries the justification");
    })
    .await;
}

backend_tests!(r1_every_profile_type_is_held_when_protected);
/// Every profile type of DESIGN §2, each operation: 202 when protected.
async fn r1_every_profile_type_is_held_when_protected(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let a = &app.alice;
        let j = "change window 42";
        // Unprotected set-up done by the store seeding: a device and a resource of each type.
        let mut held = Vec::new();
        for resource_type in ["app", "script", "compliancePolicy", "configurationPolicy", "deviceCategory"] {
            let (s, b) = app.post(a, &format!("/api/v1/resources/{resource_type}"), json!({"name": "n", "document": {}, "justification": j})).await;
            held.push((format!("create {resource_type}"), s, b));
        }
        let (s, device) = app.post(a, "/api/v1/devices", json!({"name": "PC-1", "os": "Windows 11"})).await;
        assert_eq!(s, StatusCode::CREATED, "enrolment is not protected: {device}");
        let device_id = device["id"].as_str().unwrap();
        let (s, b) = app.post(a, &format!("/api/v1/devices/{device_id}/wipe"), json!({"justification": j})).await;
        held.push(("wipe".into(), s, b.clone()));
        // One open request per object: cancel before the next action on the same device.
        app.post(a, &format!("/api/v1/requests/{}/cancel", b["id"].as_str().unwrap()), json!({})).await;
        let (s, b) = app.post(a, &format!("/api/v1/devices/{device_id}/retire"), json!({"justification": j})).await;
        held.push(("retire".into(), s, b.clone()));
        app.post(a, &format!("/api/v1/requests/{}/cancel", b["id"].as_str().unwrap()), json!({})).await;
        let (s, b) = app.post(a, &format!("/api/v1/devices/{device_id}/delete"), json!({"justification": j})).await;
        held.push(("device delete".into(), s, b));
        let (s, b) = app.post(a, "/api/v1/roles", json!({"displayName": "Auditor", "permissions": ["audit.read"], "justification": j})).await;
        held.push(("role".into(), s, b));
        let (s, b) = app
            .post(a, "/api/v1/roleAssignments", json!({"roleId": "00000000-0000-7000-8000-000000000002", "groupIds": [app.empty_group], "justification": j}))
            .await;
        held.push(("role assignment".into(), s, b));
        let policy = app.store.policies().await.unwrap().into_iter().find(|p| p.profile_type == ProfileType::Script).unwrap();
        let (s, b) = app
            .put(a, &format!("/api/v1/accessPolicies/{}", policy.id), json!({"displayName": "Scripts", "profileType": "script", "approverGroupIds": [app.approvers_group], "requiredApprovals": 2, "justification": j}))
            .await;
        held.push(("access policy".into(), s, b));
        let (s, b) = app.put(a, &format!("/api/v1/groups/{}/members", app.approvers_group), json!({"members": [], "justification": j})).await;
        held.push(("approver group membership".into(), s, b));
        for (what, status, body) in held {
            assert_eq!(status, StatusCode::ACCEPTED, "{what}: {body}");
            assert_eq!(body["status"], "needsApproval", "{what}");
        }
        let (_, wipe_profile) = app.get(a, "/api/v1/requests?view=mine&type=device&status=needsApproval").await;
        assert_eq!(wipe_profile["value"][0]["profileType"], "deviceDelete");
    })
    .await;
}

backend_tests!(r1_every_operation_on_every_protected_type_is_held);
/// Update, assign and delete of every document type, and every device action, are held.
async fn r1_every_operation_on_every_protected_type_is_held(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let a = &app.alice;
        let body = json!({"name": "changed", "document": {"v": 2}, "justification": "j"});
        for (resource_type, id) in app.samples.clone() {
            if resource_type == countersign_core::profile::ResourceType::Device {
                continue;
            }
            let path = format!("/api/v1/resources/{resource_type}/{id}");
            let assign = json!({"groupIds": [app.operators_group], "justification": "j"});
            for operation in ["update", "assign", "delete"] {
                let (status, request) = match operation {
                    "update" => app.put(a, &path, body.clone()).await,
                    "assign" if resource_type.is_assignable() => {
                        app.post(a, &format!("{path}/assign"), assign.clone()).await
                    }
                    "assign" => continue,
                    _ => app.call(a, Method::DELETE, &path, Some(json!({"justification": "j"}))).await,
                };
                assert_eq!(status, StatusCode::ACCEPTED, "{resource_type} {operation}: {request}");
                assert_eq!(request["operation"], operation);
                // One open request per object (R4): cancel before proposing the next change.
                let (s, cancelled) = app
                    .post(a, &format!("/api/v1/requests/{}/cancel", request["id"].as_str().unwrap()), json!({}))
                    .await;
                assert_eq!(s, StatusCode::OK, "{cancelled}");
            }
            let (_, unchanged) = app.get(a, &path).await;
            assert_eq!(unchanged["version"], 1, "{resource_type}: nothing applied");
        }
        let device =
            &app.samples.iter().find(|(t, _)| *t == countersign_core::profile::ResourceType::Device).unwrap().1;
        for (action, profile) in [("wipe", "deviceWipe"), ("retire", "deviceRetire"), ("delete", "deviceDelete")] {
            let (s, request) = app
                .post(a, &format!("/api/v1/devices/{device}/{action}"), json!({"justification": "lost laptop"}))
                .await;
            assert_eq!(s, StatusCode::ACCEPTED, "{action}: {request}");
            assert_eq!(request["profileType"], profile);
            app.post(a, &format!("/api/v1/requests/{}/cancel", request["id"].as_str().unwrap()), json!({})).await;
        }
        let (_, device) = app.get(a, &format!("/api/v1/devices/{device}")).await;
        assert_eq!(device["state"], "active");
    })
    .await;
}

backend_tests!(unprotected_types_apply_at_once);
async fn unprotected_types_apply_at_once(backend: TestBackend) {
    with_app(backend, Setup::unprotected(), |app| async move {
        let a = &app.alice;
        for resource_type in ["app", "script", "compliancePolicy", "configurationPolicy", "deviceCategory"] {
            let (s, created) = app
                .post(a, &format!("/api/v1/resources/{resource_type}"), json!({"name": "n", "document": {"k": 1}}))
                .await;
            assert_eq!(s, StatusCode::CREATED, "{resource_type}: {created}");
            let id = created["id"].as_str().unwrap();
            let (s, updated) = app
                .put(a, &format!("/api/v1/resources/{resource_type}/{id}"), json!({"name": "n2", "document": {"k": 2}}))
                .await;
            assert_eq!(s, StatusCode::OK, "{updated}");
            assert_eq!(updated["document"]["k"], 2);
            let (s, _) = app.call(a, Method::DELETE, &format!("/api/v1/resources/{resource_type}/{id}"), None).await;
            assert_eq!(s, StatusCode::NO_CONTENT);
            let (s, _) = app.get(a, &format!("/api/v1/resources/{resource_type}/{id}")).await;
            assert_eq!(s, StatusCode::NOT_FOUND);
        }
        let app_id = app.create_app("Zoom").await;
        let (s, assigned) = app
            .post(a, &format!("/api/v1/resources/app/{app_id}/assign"), json!({"groupIds": [app.operators_group]}))
            .await;
        assert_eq!(s, StatusCode::OK, "{assigned}");
        assert_eq!(assigned["assignedGroupIds"], json!([app.operators_group]));
        let (_, device) = app.post(a, "/api/v1/devices", json!({"name": "PC", "os": "Windows"})).await;
        let (s, wiped) =
            app.post(a, &format!("/api/v1/devices/{}/wipe", device["id"].as_str().unwrap()), json!({})).await;
        assert_eq!(s, StatusCode::OK, "{wiped}");
        assert_eq!(wiped["state"], "wiped");
        let (s, role) =
            app.post(a, "/api/v1/roles", json!({"displayName": "Auditor", "permissions": ["audit.read"]})).await;
        assert_eq!(s, StatusCode::CREATED, "{role}");
    })
    .await;
}

backend_tests!(r6_a_rejection_ends_the_request_with_notes_for_the_requester);
async fn r6_a_rejection_ends_the_request_with_notes_for_the_requester(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let id = app.create_app("Zoom").await;
        let (_, request) = app.update_app(&app.alice, &id, "9.9").await;
        let rid = request["id"].as_str().unwrap();
        let (s, rejected) = app
            .post(&app.carol, &format!("/api/v1/requests/{rid}/reject"), json!({"notes": "not in the change window"}))
            .await;
        assert_eq!(s, StatusCode::OK, "{rejected}");
        assert_eq!(rejected["status"], "rejected");
        let (_, seen) = app.get(&app.alice, &format!("/api/v1/requests/{rid}")).await;
        assert_eq!(seen["approvals"][0]["notes"], "not in the change window");
        assert_eq!(seen["approvals"][0]["decision"], "reject");
        let (s, body) = app.post(&app.bob, &format!("/api/v1/requests/{rid}/approve"), json!({})).await;
        assert_problem(s, &body, 409, "invalid_transition");
        let (s, body) = app.post(&app.alice, &format!("/api/v1/requests/{rid}/complete"), json!({})).await;
        assert_problem(s, &body, 409, "invalid_transition");
        let (_, current) = app.get(&app.alice, &format!("/api/v1/resources/app/{id}")).await;
        assert_eq!(current["document"]["version"], "1.0");
    })
    .await;
}

backend_tests!(r7_two_approvals_need_two_distinct_approvers);
async fn r7_two_approvals_need_two_distinct_approvers(backend: TestBackend) {
    with_app(backend, Setup::only(&[(ProfileType::App, 2, Completion::Requester)]), |app| async move {
        let id = app.create_app("Zoom").await;
        let (_, request) = app.update_app(&app.alice, &id, "2.0").await;
        let rid = request["id"].as_str().unwrap();
        assert_eq!(request["requiredApprovals"], 2);
        let after_one = app.approve(&app.bob, rid).await;
        assert_eq!(after_one["status"], "needsApproval");
        let (s, twice) = app.post(&app.bob, &format!("/api/v1/requests/{rid}/approve"), json!({})).await;
        assert_problem(s, &twice, 409, "already_approved");
        let (_, still) = app.get(&app.alice, &format!("/api/v1/requests/{rid}")).await;
        assert_eq!(still["status"], "needsApproval");
        assert_eq!(still["approvals"].as_array().unwrap().len(), 1);
        let after_two = app.approve(&app.carol, rid).await;
        assert_eq!(after_two["status"], "approved");
    })
    .await;
}

backend_tests!(r8_automatic_completion_applies_on_approval);
async fn r8_automatic_completion_applies_on_approval(backend: TestBackend) {
    with_app(backend, Setup::only(&[(ProfileType::App, 1, Completion::Automatic)]), |app| async move {
        let id = app.create_app("Zoom").await;
        let (_, current) = app.get(&app.alice, &format!("/api/v1/resources/app/{id}")).await;
        assert_eq!(current["version"], 1);
        let (_, request) = app.update_app(&app.alice, &id, "3.0").await;
        let approved = app.approve(&app.bob, request["id"].as_str().unwrap()).await;
        assert_eq!(approved["status"], "completed");
        let (_, after) = app.get(&app.alice, &format!("/api/v1/resources/app/{id}")).await;
        assert_eq!(after["document"]["version"], "3.0");
        assert_eq!(after["version"], 2);
    })
    .await;
}

backend_tests!(r10_only_the_requester_cancels);
async fn r10_only_the_requester_cancels(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let id = app.create_app("Zoom").await;
        let (_, request) = app.update_app(&app.alice, &id, "2.0").await;
        let rid = request["id"].as_str().unwrap();
        let (s, body) = app.post(&app.dave, &format!("/api/v1/requests/{rid}/cancel"), json!({})).await;
        assert_problem(s, &body, 403, "forbidden");
        let (s, cancelled) = app.post(&app.alice, &format!("/api/v1/requests/{rid}/cancel"), json!({})).await;
        assert_eq!(s, StatusCode::OK, "{cancelled}");
        assert_eq!(cancelled["status"], "cancelled");
        let (s, body) = app.post(&app.bob, &format!("/api/v1/requests/{rid}/approve"), json!({})).await;
        assert_problem(s, &body, 409, "invalid_transition");
        let (s, _) = app.update_app(&app.alice, &id, "2.1").await;
        assert_eq!(s, StatusCode::ACCEPTED, "a cancelled request no longer blocks the object");
    })
    .await;
}

backend_tests!(r11_approving_an_expired_request_is_refused_and_it_reads_expired);
async fn r11_approving_an_expired_request_is_refused_and_it_reads_expired(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let id = app.create_app("Zoom").await;
        let (_, request) = app.update_app(&app.alice, &id, "2.0").await;
        let rid = request["id"].as_str().unwrap();
        app.clock.advance(30 * DAY);
        let (_, read) = app.get(&app.bob, &format!("/api/v1/requests/{rid}")).await;
        assert_eq!(read["status"], "expired", "exact on read, before any sweep");
        assert_eq!(read["canApprove"], false);
        let before = app.audit_actions("expired", rid).await;
        assert_eq!(before, 0);
        let (s, body) = app.post(&app.bob, &format!("/api/v1/requests/{rid}/approve"), json!({})).await;
        assert_problem(s, &body, 409, "invalid_transition");
        assert!(body["detail"].as_str().unwrap().contains("expired"), "{body}");
        assert_eq!(app.audit_actions("expired", rid).await, 1, "the expiry is recorded once");
        let (_, listed) = app.get(&app.alice, "/api/v1/requests?view=mine&status=needsApproval").await;
        assert!(listed["value"].as_array().unwrap().iter().all(|r| r["id"] != rid));
        let (s, _) = app.update_app(&app.alice, &id, "2.1").await;
        assert_eq!(s, StatusCode::ACCEPTED, "an expired request no longer blocks the object");
    })
    .await;
}

backend_tests!(r11_the_sweep_expires_approved_requests_waiting_for_completion);
async fn r11_the_sweep_expires_approved_requests_waiting_for_completion(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let id = app.create_app("Zoom").await;
        let (_, request) = app.update_app(&app.alice, &id, "2.0").await;
        let rid = request["id"].as_str().unwrap();
        app.clock.advance(DAY);
        app.approve(&app.bob, rid).await;
        app.clock.advance(30 * DAY - 1);
        assert_eq!(app.store.expire_due(app.clock_now()).await.unwrap(), 0, "approval restarted the clock");
        app.clock.advance(1);
        assert_eq!(app.store.expire_due(app.clock_now()).await.unwrap(), 1);
        assert_eq!(app.store.expire_due(app.clock_now()).await.unwrap(), 0, "once");
        let (s, body) = app.post(&app.alice, &format!("/api/v1/requests/{rid}/complete"), json!({})).await;
        assert_problem(s, &body, 409, "invalid_transition");
        assert_eq!(app.audit_actions("expired", rid).await, 1);
    })
    .await;
}

backend_tests!(r12_a_stale_completion_fails_and_changes_nothing);
async fn r12_a_stale_completion_fails_and_changes_nothing(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        // An approver's password reset is held (R9); meanwhile they change their own
        // notification settings, which needs no approval and bumps the account's version.
        let bob = &app.bob;
        let (s, request) = app
            .call(
                &app.admin,
                Method::PATCH,
                &format!("/api/v1/accounts/{}", bob.id),
                Some(json!({"password": "a brand new password", "justification": "lost"})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{request}");
        let rid = request["id"].as_str().unwrap();
        let (s, settings) = app
            .call(
                bob,
                Method::PUT,
                "/api/v1/me/notifications",
                Some(json!({"email": "bob@example.test", "optOuts": []})),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{settings}");
        app.approve(&app.carol, rid).await;
        let (s, done) = app.post(&app.admin, &format!("/api/v1/requests/{rid}/complete"), json!({})).await;
        assert_eq!(s, StatusCode::OK, "{done}");
        assert_eq!(done["status"], "failed");
        assert!(done["failureReason"].as_str().unwrap().contains("changed since"), "{done}");
        assert_eq!(done["before"]["displayName"], "bob");
        let (s, _) = app.get(bob, "/api/v1/me").await;
        assert_eq!(s, StatusCode::OK, "bob's token was not revoked: nothing was applied");
        assert_eq!(app.audit_actions("failed", rid).await, 1);
        assert_eq!(app.audit_actions("applied", &bob.id).await, 0, "nothing");
    })
    .await;
}

backend_tests!(r15_lists_show_thirty_days_unless_asked_for_more);
async fn r15_lists_show_thirty_days_unless_asked_for_more(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let id = app.create_app("Zoom").await;
        let (_, request) = app.update_app(&app.alice, &id, "2.0").await;
        let rid = request["id"].as_str().unwrap();
        app.post(&app.alice, &format!("/api/v1/requests/{rid}/cancel"), json!({})).await;
        app.clock.advance(31 * DAY);
        let (_, recent) = app.get(&app.alice, "/api/v1/requests?view=mine").await;
        assert!(recent["value"].as_array().unwrap().iter().all(|r| r["id"] != rid));
        let (_, old) = app.get(&app.alice, "/api/v1/requests?view=mine&since=2020-01-01T00:00:00Z").await;
        assert!(old["value"].as_array().unwrap().iter().any(|r| r["id"] == rid));
        let (s, one) = app.get(&app.alice, &format!("/api/v1/requests/{rid}")).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(one["status"], "cancelled");
    })
    .await;
}

backend_tests!(request_lists_page_newest_first);
async fn request_lists_page_newest_first(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let mut ids = Vec::new();
        for i in 0..5 {
            let (s, r) = app
                .post(
                    &app.alice,
                    "/api/v1/resources/script",
                    json!({"name": format!("s{i}"), "document": {}, "justification": "j"}),
                )
                .await;
            assert_eq!(s, StatusCode::ACCEPTED);
            ids.push(r["id"].as_str().unwrap().to_owned());
        }
        let (_, first) = app.get(&app.alice, "/api/v1/requests?view=mine&limit=3").await;
        let page: Vec<_> =
            first["value"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(page, vec![ids[4].clone(), ids[3].clone(), ids[2].clone()]);
        let cursor = first["nextCursor"].as_str().unwrap();
        let (_, second) = app.get(&app.alice, &format!("/api/v1/requests?view=mine&limit=3&cursor={cursor}")).await;
        let page: Vec<_> =
            second["value"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(page, vec![ids[1].clone(), ids[0].clone()]);
        assert!(second["nextCursor"].is_null());
    })
    .await;
}

impl TestApp {
    fn clock_now(&self) -> countersign_core::Millis {
        use countersign_core::Clock;
        self.clock.now()
    }
}
