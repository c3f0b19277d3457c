//! The executor: plays actions over HTTP as the accounts the attacker controls, and keeps what it
//! learns: the credentials it holds (the oracle's ground truth, see `oracle::Knowledge`), and
//! the pools that actions pick their targets from. Errors are ordinary answers; a 5xx is noted
//! as a failure.

use crate::actions::{Action, By, Pick, Via};
use crate::harness::TestApp;
use crate::http::{self, Answer, Credential, Session};
use crate::oracle::{Approved, Knowledge};
use crate::tenant::{self, Tenant};
use countersign_core::eligibility::AccountKind;
use countersign_core::permission::{Permission, BUILT_IN_ROLES};
use countersign_core::profile::{ProfileType, ResourceType};
use countersign_core::request::RequestStatus;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// What a role the attacker creates grants (`Action::CreateRole` picks one): every permission,
/// or one of these narrower sets.
fn role_grants() -> Vec<Vec<&'static str>> {
    let mut grants = vec![Permission::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>()];
    grants.extend(NARROW_GRANTS.iter().map(|g| g.to_vec()));
    grants
}

const NARROW_GRANTS: [&[&str]; 4] = [
    &[
        "maa.approve",
        "apps.read",
        "scripts.read",
        "compliancePolicies.read",
        "configurationPolicies.read",
        "devices.read",
        "roles.read",
        "groups.read",
        "accounts.read",
        "accessPolicies.read",
        "tenantConfiguration.read",
        "audit.read",
    ],
    &["accounts.read", "accounts.write"],
    &["groups.read", "groups.write", "roles.read", "roles.write"],
    &["apps.read", "apps.write", "apps.assign"],
];

const JUSTIFICATION: &str = "routine maintenance";

/// The credentials the attacker holds for one account.
struct Held {
    username: String,
    human: bool,
    /// The password it believes signs in now.
    password: Option<String>,
    /// Tokens, with their ids when it knows them (a service account's first token has none).
    tokens: Vec<(Option<String>, String)>,
    session: Option<Session>,
    /// Its password was refused at sign-in; not tried again until it changes or the account is
    /// enabled again (failed sign-ins are rate-limited).
    refused: bool,
}

pub struct Attacker<'a> {
    app: &'a TestApp,
    /// A client without cookies, for bearer calls.
    bearer: reqwest::Client,
    own: String,
    /// Accounts it holds a credential for, in the order it got them (mallory first).
    controlled: Vec<String>,
    held: BTreeMap<String, Held>,
    /// Every account it knows of: the tenant's, then the ones it made.
    accounts: Vec<String>,
    groups: Vec<String>,
    roles: Vec<String>,
    assignments: Vec<String>,
    resources: Vec<(ResourceType, String)>,
    device: String,
    policies: Vec<String>,
    /// Requests it knows of, oldest first.
    requests: Vec<String>,
    /// Passwords set by a request that is still to complete: (request, account, password).
    pending: Vec<(String, String, String)>,
    created: BTreeSet<String>,
    authenticated: BTreeSet<String>,
    /// Every password it chose for an account, applied or not.
    passwords: Vec<(String, String)>,
    /// Readable names for the ids in the trace and the violations.
    names: BTreeMap<String, String>,
    trace: Vec<String>,
    /// How many actions it has played, and the prefix of their trace lines.
    actions_done: usize,
    step: String,
    server_errors: Vec<String>,
    serial: u32,
}

impl<'a> Attacker<'a> {
    /// mallory, holding its own password and token; it knows the tenant's objects (the attacker
    /// may read the whole database) and, in property 2, the benign request.
    pub async fn new(app: &'a TestApp, tenant: &Tenant, benign: Option<&Approved>) -> Attacker<'a> {
        let mut names = BTreeMap::new();
        let people = [
            ("alice", &app.alice.id),
            ("admin", &app.admin.id),
            ("bob", &app.bob.id),
            ("carol", &app.carol.id),
            ("dave", &app.dave.id),
            ("svc", &app.svc.id),
            ("mallory", &tenant.mallory),
        ];
        for (name, id) in people {
            names.insert(id.clone(), name.to_owned());
        }
        let groups = vec![
            app.operators_group.clone(),
            app.approvers_group.clone(),
            app.empty_group.clone(),
            tenant.role_group.clone(),
            tenant.pilot.clone(),
            tenant.helpdesk.clone(),
        ];
        let group_names = ["Operators", "Approvers", "Empty", "Mallory's role", "Pilot", "Helpdesk"];
        for (id, name) in groups.iter().zip(group_names) {
            names.insert(id.clone(), format!("group {name}"));
        }
        let roles: Vec<String> = BUILT_IN_ROLES.iter().map(|r| r.id.to_owned()).collect();
        for role in BUILT_IN_ROLES {
            names.insert(role.id.to_owned(), format!("role {}", role.display_name));
        }
        let mut assignments = Vec::new();
        for assignment in app.store.role_assignments().await.expect("role assignments") {
            names.insert(assignment.id.clone(), format!("assignment {}", assignment.display_name));
            assignments.push(assignment.id);
        }
        let mut resources = Vec::new();
        for (resource_type, id) in &app.samples {
            names.insert(id.clone(), format!("sample {resource_type}"));
            if *resource_type != ResourceType::Device {
                resources.push((*resource_type, id.clone()));
            }
        }
        let mut policies = Vec::new();
        for policy in app.store.policies().await.expect("policies") {
            names.insert(policy.id.clone(), format!("policy '{}'", policy.display_name));
            policies.push(policy.id);
        }
        let requests: Vec<String> = benign.iter().map(|b| b.request.clone()).collect();
        for request in &requests {
            names.insert(request.clone(), "the benign request".into());
        }
        let trace = benign
            .map(|b| format!("  0. mallory proposes {}; bob reads the request and approves it", b.what))
            .into_iter()
            .collect();
        let mallory = Held {
            username: "mallory".into(),
            human: true,
            password: Some(tenant::OWN_PASSWORD.into()),
            tokens: vec![(None, tenant.mallory_token.clone())],
            session: None,
            refused: false,
        };
        Attacker {
            app,
            bearer: reqwest::Client::new(),
            own: tenant.mallory.clone(),
            controlled: vec![tenant.mallory.clone()],
            held: BTreeMap::from([(tenant.mallory.clone(), mallory)]),
            accounts: people.iter().map(|(_, id)| (*id).clone()).collect(),
            groups,
            roles,
            assignments,
            resources,
            device: tenant::sample_device(app),
            policies,
            requests,
            pending: vec![],
            created: BTreeSet::new(),
            authenticated: BTreeSet::from([tenant.mallory.clone()]),
            passwords: vec![(tenant.mallory.clone(), tenant::OWN_PASSWORD.into())],
            names,
            trace,
            actions_done: 0,
            step: String::new(),
            server_errors: vec![],
            serial: 0,
        }
    }

    /// What the attacker knows, for the oracle.
    pub fn knowledge(&self) -> Knowledge {
        Knowledge {
            own: self.own.clone(),
            created: self.created.clone(),
            authenticated: self.authenticated.clone(),
            passwords: self.passwords.clone(),
            token_holders: self.held.iter().filter(|(_, h)| !h.tokens.is_empty()).map(|(id, _)| id.clone()).collect(),
        }
    }

    pub fn server_errors(&self) -> Vec<String> {
        self.server_errors.iter().map(|e| format!("the server failed: {e}")).collect()
    }

    /// `text` with every id the attacker knows replaced by its name.
    pub fn label(&self, text: &str) -> String {
        self.names.iter().fold(text.to_owned(), |text, (id, name)| text.replace(id.as_str(), name))
    }

    pub fn trace(&self) -> String {
        self.label(&self.trace.join("\n"))
    }

    fn fresh(&mut self) -> u32 {
        self.serial += 1;
        self.serial
    }

    fn password(n: u32) -> String {
        format!("chosen by the attacker #{n}")
    }

    fn name(&self, id: &str) -> String {
        self.names.get(id).cloned().unwrap_or_else(|| id.to_owned())
    }

    /// Adds a credential for `account` (controlled from now on).
    async fn gain(&mut self, account: &str, password: Option<String>, token: Option<(Option<String>, String)>) {
        if !self.held.contains_key(account) {
            let Ok(Some(record)) = self.app.store.account(account).await else { return };
            let held = Held {
                username: record.username,
                human: record.kind == AccountKind::Human,
                password: None,
                tokens: vec![],
                session: None,
                refused: false,
            };
            self.held.insert(account.to_owned(), held);
            self.controlled.push(account.to_owned());
        }
        if let Some(held) = self.held.get_mut(account) {
            if password.is_some() {
                held.password = password;
                held.refused = false;
            }
            held.tokens.extend(token);
        }
    }

    /// A credential of `account`, preferring `via`: a token, or a session (signing in when it
    /// has none yet).
    async fn credential(&mut self, account: &str, via: Via) -> Option<Credential> {
        let held = self.held.get(account)?;
        let token = held.tokens.last().map(|(_, secret)| Credential::Token(secret.clone()));
        let can_sign_in = held.human && held.password.is_some() && !held.refused;
        if !can_sign_in || (via == Via::Token && token.is_some()) {
            return token;
        }
        if let Some(session) = &held.session {
            return Some(Credential::Session(session.clone()));
        }
        let (username, password) = (held.username.clone(), held.password.clone()?);
        match http::sign_in(&self.app.base, &username, &password).await {
            Ok(session) => {
                self.authenticated.insert(account.to_owned());
                let held = self.held.get_mut(account)?;
                held.session = Some(session.clone());
                Some(Credential::Session(session))
            }
            Err(refused) => {
                if refused.status.is_server_error() {
                    self.server_errors.push(format!("sign-in as {username} → {refused:?}"));
                }
                self.trace.push(format!("{}    ({username} cannot sign in: {})", self.step, refused.summary()));
                self.held.get_mut(account)?.refused = true;
                token
            }
        }
    }

    /// R16's first sign-in: a password someone else set is replaced by one the attacker chooses
    /// (so the account stays its own).
    async fn replace_password(&mut self, account: &str, credential: &Credential) -> bool {
        let Some(current) = self.held.get(account).and_then(|h| h.password.clone()) else { return false };
        let new = Self::password(self.fresh());
        self.passwords.push((account.to_owned(), new.clone()));
        let body = json!({"currentPassword": current, "newPassword": new});
        let answer =
            http::send(&self.app.base, &self.bearer, credential, Method::POST, "/api/v1/me/password", Some(&body))
                .await;
        self.trace.push(format!("{}    (replaces its password when asked → {})", self.step, answer.summary()));
        if answer.status != StatusCode::NO_CONTENT {
            return false;
        }
        self.gain(account, Some(new), None).await;
        true
    }

    /// One call as `account`; the answer, or `None` when the attacker holds no credential for it.
    async fn call_as(
        &mut self,
        account: &str,
        via: Via,
        what: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Option<Answer> {
        let mut via = via;
        let (mut signed_in_again, mut replaced) = (false, false);
        loop {
            let Some(credential) = self.credential(account, via).await else {
                self.trace.push(format!("{}(no credential of {} to act with)", self.step, self.name(account)));
                return None;
            };
            let answer =
                http::send(&self.app.base, &self.bearer, &credential, method.clone(), path, body.as_ref()).await;
            if answer.status == StatusCode::UNAUTHORIZED {
                // A session that ended, or a token that stopped working: try the other once.
                let held = self.held.get_mut(account)?;
                match credential {
                    Credential::Session(_) if !signed_in_again => {
                        held.session = None;
                        signed_in_again = true;
                        continue;
                    }
                    Credential::Token(_) if via == Via::Token && held.password.is_some() && !held.refused => {
                        via = Via::Session;
                        continue;
                    }
                    _ => {}
                }
            } else {
                self.authenticated.insert(account.to_owned());
            }
            if answer.status == StatusCode::FORBIDDEN && answer.code() == Some("password_change_required") && !replaced
            {
                replaced = true;
                if self.replace_password(account, &credential).await {
                    continue;
                }
            }
            if answer.status.is_server_error() {
                let body = body.as_ref().map(Value::to_string).unwrap_or_default();
                self.server_errors.push(format!("{method} {path} {body} → {} {}", answer.status, answer.body));
            }
            self.trace.push(format!(
                "{}{} [{}]: {what} → {}",
                self.step,
                self.name(account),
                credential.kind(),
                answer.summary()
            ));
            if answer.status == StatusCode::ACCEPTED {
                if let Some(request) = answer.id() {
                    self.names.insert(request.clone(), format!("R{}", self.requests.len() + 1));
                    self.requests.push(request);
                }
            }
            return Some(answer);
        }
    }

    /// One call as the controlled account `by` picks.
    async fn call(&mut self, by: By, what: &str, method: Method, path: &str, body: Option<Value>) -> Option<Answer> {
        let account = by.account.of(&self.controlled)?.clone();
        self.call_as(&account, by.via, what, method, path, body).await
    }

    fn newest(&self, pick: Pick) -> Option<String> {
        let n = self.requests.len();
        (n > 0).then(|| self.requests[n - 1 - usize::from(pick.0) % n].clone())
    }

    /// A request completed: a password it set is the attacker's now.
    async fn completed(&mut self, request: &str, answer: Option<&Answer>) {
        if answer.is_some_and(|a| a.status == StatusCode::OK && a.body["status"] == "completed") {
            let set: Vec<(String, String)> =
                self.pending.iter().filter(|(r, _, _)| r == request).map(|(_, a, p)| (a.clone(), p.clone())).collect();
            for (account, password) in set {
                self.gain(&account, Some(password), None).await;
            }
        }
    }

    async fn members(&self, group: &str) -> Vec<String> {
        self.app.store.group_members(group).await.map(|m| m.into_iter().map(|a| a.id).collect()).unwrap_or_default()
    }

    pub async fn perform(&mut self, action: &Action) {
        use Action::*;
        self.actions_done += 1;
        self.step = format!("{:>3}. ", self.actions_done);
        let j = JUSTIFICATION;
        match *action {
            CreateHuman { by } => {
                let n = self.fresh();
                let (username, password) = (format!("puppet{n}"), Self::password(n));
                let body = json!({"username": username, "displayName": format!("Puppet {n}"), "kind": "human",
                    "password": password, "justification": j});
                let answer =
                    self.call(by, &format!("create {username}"), Method::POST, "/api/v1/accounts", Some(body)).await;
                if let Some(id) = answer.filter(|a| a.status == StatusCode::CREATED).and_then(|a| a.id()) {
                    self.made(&id, username);
                    self.passwords.push((id.clone(), password.clone()));
                    self.gain(&id, Some(password), None).await;
                }
            }
            CreateService { by } => {
                let n = self.fresh();
                let username = format!("robot{n}");
                let body = json!({"username": username, "displayName": format!("Robot {n}"), "kind": "service",
                    "justification": j});
                let answer =
                    self.call(by, &format!("create {username}"), Method::POST, "/api/v1/accounts", Some(body)).await;
                if let Some(answer) = answer.filter(|a| a.status == StatusCode::CREATED) {
                    if let (Some(id), Some(token)) = (answer.id(), answer.body["token"].as_str()) {
                        self.made(&id, username);
                        self.gain(&id, None, Some((None, token.to_owned()))).await;
                    }
                }
            }
            SetPassword { by, account } => {
                let Some(target) = account.of(&self.accounts).cloned() else { return };
                let password = Self::password(self.fresh());
                self.passwords.push((target.clone(), password.clone()));
                let what = format!("set {}'s password", self.name(&target));
                let body = json!({"password": password, "justification": j});
                let answer =
                    self.call(by, &what, Method::PATCH, &format!("/api/v1/accounts/{target}"), Some(body)).await;
                match answer {
                    Some(a) if a.status == StatusCode::OK => self.gain(&target, Some(password), None).await,
                    Some(a) if a.status == StatusCode::ACCEPTED => {
                        if let Some(request) = a.id() {
                            self.pending.push((request, target, password));
                        }
                    }
                    _ => {}
                }
            }
            Rename { by, account } => {
                let Some(target) = account.of(&self.accounts).cloned() else { return };
                let n = self.fresh();
                let what = format!("rename {}", self.name(&target));
                let body = json!({"displayName": format!("Renamed {n}"), "justification": j});
                self.call(by, &what, Method::PATCH, &format!("/api/v1/accounts/{target}"), Some(body)).await;
            }
            Readdress { by, account } => {
                let Some(target) = account.of(&self.accounts).cloned() else { return };
                let n = self.fresh();
                let what = format!("send {}'s mail to the attacker", self.name(&target));
                let body = json!({"email": format!("attacker+{n}@example.test"), "justification": j});
                self.call(by, &what, Method::PATCH, &format!("/api/v1/accounts/{target}"), Some(body)).await;
            }
            SetEnabled { by, account, enabled } => {
                let Some(target) = account.of(&self.accounts).cloned() else { return };
                let what = format!("{} {}", if enabled { "enable" } else { "disable" }, self.name(&target));
                let body = json!({"enabled": enabled, "justification": j});
                let answer =
                    self.call(by, &what, Method::PATCH, &format!("/api/v1/accounts/{target}"), Some(body)).await;
                if enabled && answer.is_some_and(|a| a.status == StatusCode::OK) {
                    if let Some(held) = self.held.get_mut(&target) {
                        held.refused = false;
                    }
                }
            }
            DeleteAccount { by, account } => {
                let Some(target) = account.of(&self.accounts).cloned() else { return };
                let what = format!("delete {}", self.name(&target));
                let body = json!({"justification": j});
                self.call(by, &what, Method::DELETE, &format!("/api/v1/accounts/{target}"), Some(body)).await;
            }
            ChangeOwnPassword { by } => {
                let Some(account) = by.account.of(&self.controlled).cloned() else { return };
                let Some(current) = self.held.get(&account).and_then(|h| h.password.clone()) else { return };
                let new = Self::password(self.fresh());
                self.passwords.push((account.clone(), new.clone()));
                let body = json!({"currentPassword": current, "newPassword": new});
                let answer =
                    self.call(by, "change its own password", Method::POST, "/api/v1/me/password", Some(body)).await;
                if answer.is_some_and(|a| a.status == StatusCode::NO_CONTENT) {
                    self.gain(&account, Some(new), None).await;
                }
            }
            CreateToken { by } => {
                let Some(account) = by.account.of(&self.controlled).cloned() else { return };
                let n = self.fresh();
                let body = json!({"displayName": format!("token {n}")});
                let answer = self.call(by, "make itself a token", Method::POST, "/api/v1/tokens", Some(body)).await;
                if let Some(answer) = answer.filter(|a| a.status == StatusCode::CREATED) {
                    if let Some(token) = answer.body["token"].as_str() {
                        self.gain(&account, None, Some((answer.id(), token.to_owned()))).await;
                    }
                }
            }
            RevokeToken { by, token } => {
                let Some(account) = by.account.of(&self.controlled).cloned() else { return };
                let ids: Vec<String> = self
                    .held
                    .get(&account)
                    .map(|h| h.tokens.iter().filter_map(|(id, _)| id.clone()).collect())
                    .unwrap_or_default();
                let Some(id) = token.of(&ids).cloned() else { return };
                let answer = self
                    .call(by, "revoke one of its tokens", Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
                    .await;
                if answer.is_some_and(|a| a.status == StatusCode::NO_CONTENT) {
                    if let Some(held) = self.held.get_mut(&account) {
                        held.tokens.retain(|(t, _)| t.as_deref() != Some(id.as_str()));
                    }
                }
            }
            CreateGroup { by } => {
                let n = self.fresh();
                let body = json!({"displayName": format!("Group {n}"), "justification": j});
                let answer =
                    self.call(by, &format!("create group {n}"), Method::POST, "/api/v1/groups", Some(body)).await;
                if let Some(id) = answer.filter(|a| a.status == StatusCode::CREATED).and_then(|a| a.id()) {
                    self.names.insert(id.clone(), format!("group {n}"));
                    self.groups.push(id);
                }
            }
            AddMember { by, group, member } => {
                let (Some(group), Some(member)) =
                    (group.of(&self.groups).cloned(), member.of(&self.controlled).cloned())
                else {
                    return;
                };
                let mut members = self.members(&group).await;
                members.push(member.clone());
                let what = format!("add {} to {}", self.name(&member), self.name(&group));
                let body = json!({"members": members, "justification": j});
                self.call(by, &what, Method::PUT, &format!("/api/v1/groups/{group}/members"), Some(body)).await;
            }
            RemoveMember { by, group, member } => {
                let Some(group) = group.of(&self.groups).cloned() else { return };
                let mut members = self.members(&group).await;
                let Some(victim) = member.of(&members).cloned() else { return };
                members.retain(|m| *m != victim);
                let what = format!("remove {} from {}", self.name(&victim), self.name(&group));
                let body = json!({"members": members, "justification": j});
                self.call(by, &what, Method::PUT, &format!("/api/v1/groups/{group}/members"), Some(body)).await;
            }
            CreateRole { by, grants } => {
                let pool = role_grants();
                let Some(permissions) = grants.of(&pool).cloned() else { return };
                let n = self.fresh();
                let body = json!({"displayName": format!("Role {n}"), "permissions": permissions, "justification": j});
                let what = format!("create role {n} with {}", permissions.join(" "));
                let answer = self.call(by, &what, Method::POST, "/api/v1/roles", Some(body)).await;
                if let Some(id) = answer.filter(|a| a.status == StatusCode::CREATED).and_then(|a| a.id()) {
                    self.names.insert(id.clone(), format!("role {n}"));
                    self.roles.push(id);
                }
            }
            AssignRole { by, role, group } => {
                let (Some(role), Some(group)) = (role.of(&self.roles).cloned(), group.of(&self.groups).cloned()) else {
                    return;
                };
                let what = format!("give {} {}", self.name(&group), self.name(&role));
                let body = json!({"roleId": role, "groupIds": [group], "justification": j});
                let answer = self.call(by, &what, Method::POST, "/api/v1/roleAssignments", Some(body)).await;
                if let Some(id) = answer.filter(|a| a.status == StatusCode::CREATED).and_then(|a| a.id()) {
                    self.names
                        .insert(id.clone(), format!("assignment of {} to {}", self.name(&role), self.name(&group)));
                    self.assignments.push(id);
                }
            }
            ReassignRole { by, assignment, role, group } => {
                let (Some(assignment), Some(role), Some(group)) = (
                    assignment.of(&self.assignments).cloned(),
                    role.of(&self.roles).cloned(),
                    group.of(&self.groups).cloned(),
                ) else {
                    return;
                };
                let mut groups = match self.app.store.role_assignment(&assignment).await {
                    Ok(Some(current)) => current.group_ids,
                    _ => vec![],
                };
                groups.push(group.clone());
                let what =
                    format!("make {} give {} also to {}", self.name(&assignment), self.name(&role), self.name(&group));
                let body = json!({"roleId": role, "groupIds": groups, "justification": j});
                self.call(by, &what, Method::PUT, &format!("/api/v1/roleAssignments/{assignment}"), Some(body)).await;
            }
            CreateResource { by, kind } => {
                let Some(resource_type) = kind.of(&ResourceType::DOCUMENT_TYPES).copied() else { return };
                let n = self.fresh();
                let name = format!("{resource_type} {n}");
                let body = json!({"name": name, "document": {"v": n}, "justification": j});
                let answer = self
                    .call(
                        by,
                        &format!("create {name}"),
                        Method::POST,
                        &format!("/api/v1/resources/{resource_type}"),
                        Some(body),
                    )
                    .await;
                if let Some(id) = answer.filter(|a| a.status == StatusCode::CREATED).and_then(|a| a.id()) {
                    self.names.insert(id.clone(), name);
                    self.resources.push((resource_type, id));
                }
            }
            UpdateResource { by, resource } => {
                let Some((resource_type, id)) = resource.of(&self.resources).cloned() else { return };
                let current = match self.app.store.object_state(resource_type, &id).await {
                    Ok(Some((state, _))) => state.to_json(),
                    _ => json!({"name": "gone"}),
                };
                let n = self.fresh();
                let body = json!({"name": current["name"], "description": current["description"],
                    "document": {"v": n}, "justification": j});
                let what = format!("change {}", self.name(&id));
                self.call(by, &what, Method::PUT, &format!("/api/v1/resources/{resource_type}/{id}"), Some(body)).await;
            }
            AssignResource { by, resource, group } => {
                let (Some((resource_type, id)), Some(group)) =
                    (resource.of(&self.resources).cloned(), group.of(&self.groups).cloned())
                else {
                    return;
                };
                let what = format!("assign {} to {}", self.name(&id), self.name(&group));
                let body = json!({"groupIds": [group], "justification": j});
                let path = format!("/api/v1/resources/{resource_type}/{id}/assign");
                self.call(by, &what, Method::POST, &path, Some(body)).await;
            }
            DeleteResource { by, resource } => {
                let Some((resource_type, id)) = resource.of(&self.resources).cloned() else { return };
                let what = format!("delete {}", self.name(&id));
                let body = json!({"justification": j});
                self.call(by, &what, Method::DELETE, &format!("/api/v1/resources/{resource_type}/{id}"), Some(body))
                    .await;
            }
            ActOnDevice { by, op } => {
                let device = self.device.clone();
                let body = json!({"justification": j});
                let what = format!("{} the device", op.path());
                self.call(by, &what, Method::POST, &format!("/api/v1/devices/{device}/{}", op.path()), Some(body))
                    .await;
            }
            CreatePolicy { by, profile, group } => {
                let (Some(profile_type), Some(group)) =
                    (profile.of(&ProfileType::ALL).copied(), group.of(&self.groups).cloned())
                else {
                    return;
                };
                let n = self.fresh();
                let what = format!("create a {profile_type} policy approved by {}", self.name(&group));
                let body = json!({"displayName": format!("Policy {n}"), "profileType": profile_type,
                    "approverGroupIds": [group], "justification": j});
                let answer = self.call(by, &what, Method::POST, "/api/v1/accessPolicies", Some(body)).await;
                if let Some(id) = answer.filter(|a| a.status == StatusCode::CREATED).and_then(|a| a.id()) {
                    self.names.insert(id.clone(), format!("policy {n}"));
                    self.policies.push(id);
                }
            }
            UpdatePolicy { by, policy, group, automatic } => {
                let (Some(policy), Some(group)) = (policy.of(&self.policies).cloned(), group.of(&self.groups).cloned())
                else {
                    return;
                };
                let Ok(Some((current, _))) = self.app.store.policy(&policy).await else { return };
                let completion = if automatic { "automatic" } else { "requester" };
                let what = format!("make {} approved by {} ({completion})", self.name(&policy), self.name(&group));
                let body = json!({"displayName": current.display_name, "profileType": current.profile_type,
                    "approverGroupIds": [group], "completion": completion, "justification": j});
                self.call(by, &what, Method::PUT, &format!("/api/v1/accessPolicies/{policy}"), Some(body)).await;
            }
            DeletePolicy { by, policy } => {
                let Some(policy) = policy.of(&self.policies).cloned() else { return };
                let what = format!("delete {}", self.name(&policy));
                let body = json!({"justification": j});
                self.call(by, &what, Method::DELETE, &format!("/api/v1/accessPolicies/{policy}"), Some(body)).await;
            }
            Approve { by, request } => self.decide(by, request, "approve").await,
            Reject { by, request } => self.decide(by, request, "reject").await,
            Cancel { by, request } => self.decide(by, request, "cancel").await,
            Complete { by, request } => self.decide(by, request, "complete").await,
        }
    }

    fn made(&mut self, id: &str, username: String) {
        self.created.insert(id.to_owned());
        self.accounts.push(id.to_owned());
        self.names.insert(id.to_owned(), username);
    }

    async fn decide(&mut self, by: By, request: Pick, verb: &str) {
        let Some(request) = self.newest(request) else { return };
        let body = match verb {
            "approve" | "reject" => json!({"notes": "looks fine"}),
            _ => json!({}),
        };
        let what = format!("{verb} {}", self.name(&request));
        let answer =
            self.call(by, &what, Method::POST, &format!("/api/v1/requests/{request}/{verb}"), Some(body)).await;
        self.completed(&request, answer.as_ref()).await;
    }

    /// After the sequence: every open request the attacker knows of is approved by every account
    /// it controls that will, and every approved one its accounts asked for is completed.
    pub async fn harvest(&mut self) {
        self.step = "  h. ".into();
        for request in self.requests.clone().into_iter().rev() {
            let Ok(record) = self.app.store.request(&request).await else { continue };
            if record.status == RequestStatus::NeedsApproval {
                for approver in self.controlled.clone() {
                    if approver == record.requested_by {
                        continue;
                    }
                    let what = format!("approve {}", self.name(&request));
                    let path = format!("/api/v1/requests/{request}/approve");
                    let answer = self
                        .call_as(&approver, Via::Token, &what, Method::POST, &path, Some(json!({"notes": "ok"})))
                        .await;
                    self.completed(&request, answer.as_ref()).await;
                    if answer.is_some_and(|a| a.status == StatusCode::OK && a.body["status"] != "needsApproval") {
                        break;
                    }
                }
            }
            let Ok(record) = self.app.store.request(&request).await else { continue };
            if record.status == RequestStatus::Approved && self.held.contains_key(&record.requested_by) {
                let what = format!("complete {}", self.name(&request));
                let path = format!("/api/v1/requests/{request}/complete");
                let requester = record.requested_by.clone();
                let answer = self.call_as(&requester, Via::Token, &what, Method::POST, &path, Some(json!({}))).await;
                self.completed(&request, answer.as_ref()).await;
            }
        }
    }
}
