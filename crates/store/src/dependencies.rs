//! R17: what a held change depends on besides its object, frozen with the request at
//! submission ([`freeze`]), read again under lock at completion ([`current_versions`]), and
//! shown to approvers as it is now ([`Store::dependencies_now`]).

use crate::rows::{int, json, text};
use crate::{placeholders, Result, Store, StoreError, WriteTx};
use countersign_core::dependency::{Dependency, Needs, Versions};
use countersign_core::profile::ResourceType;
use countersign_core::state::GroupMember;
use countersign_core::DomainError;
use std::collections::{BTreeMap, BTreeSet};

/// The types a change can depend on, in the order completion locks them: the order other
/// writes take these rows in too (an account's delete locks the account, then its groups), so
/// that two transactions never wait on each other.
const LOCK_ORDER: [ResourceType; 3] = [ResourceType::Account, ResourceType::Group, ResourceType::Role];

/// A dependency's row: its id, name and version.
struct Found {
    id: String,
    name: String,
    version: i64,
}

/// The live rows of `ids` of `resource_type`, in id order; locked (on PostgreSQL) when `lock`.
async fn read(tx: &mut WriteTx, resource_type: ResourceType, ids: &[&str], lock: bool) -> Result<Vec<Found>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let (table, name, live) = match resource_type {
        ResourceType::Group => ("directory_groups", "display_name", ""),
        ResourceType::Account => ("accounts", "username", " AND deleted_at IS NULL"),
        ResourceType::Role => ("roles", "display_name", ""),
        other => return Err(StoreError::Corrupt(format!("a request depends on a {other}"))),
    };
    let sql = format!(
        "SELECT id, {name} AS name, version FROM {table} WHERE id IN ({}){live} ORDER BY id{}",
        placeholders(1, ids.len()),
        if lock { tx.for_update() } else { "" }
    );
    let mut query = sqlx::query(&sql);
    for id in ids {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(tx.conn()).await?;
    rows.iter().map(|r| Ok(Found { id: text(r, "id")?, name: text(r, "name")?, version: int(r, "version")? })).collect()
}

/// The ids of the members of `group_ids`.
async fn members_of(tx: &mut WriteTx, group_ids: &BTreeSet<String>) -> Result<Vec<String>> {
    if group_ids.is_empty() {
        return Ok(vec![]);
    }
    let sql = format!("SELECT account_id FROM group_members WHERE group_id IN ({})", placeholders(1, group_ids.len()));
    let mut query = sqlx::query(&sql);
    for id in group_ids {
        query = query.bind(id);
    }
    let rows = query.fetch_all(tx.conn()).await?;
    rows.iter().map(|r| text(r, "account_id")).collect()
}

/// R17 at submission, in the submitting transaction: the name and version of everything the
/// change needs. Groups first, then roles, then accounts: the order completion names a moved
/// one in. Something named that does not exist is refused: the change could never be applied.
///
/// Not locked: a dependency that moves after this read and before the submission commits was
/// read at its old version, so the request fails at completion; it never passes unseen.
pub(crate) async fn freeze(tx: &mut WriteTx, needs: Needs) -> Result<Vec<Dependency>> {
    let Needs { references, members_of: standing } = needs;
    let mut accounts = references.accounts;
    accounts.extend(members_of(tx, &standing).await?);
    let mut frozen = Vec::new();
    for (resource_type, ids) in [
        (ResourceType::Group, references.groups),
        (ResourceType::Role, references.roles),
        (ResourceType::Account, accounts),
    ] {
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let found = read(tx, resource_type, &ids, false).await?;
        if let Some(missing) = ids.iter().find(|id| !found.iter().any(|f| f.id == **id)) {
            return Err(DomainError::Validation(format!("{resource_type} {missing} does not exist")).into());
        }
        frozen.extend(found.into_iter().map(|f| Dependency {
            resource_type,
            id: f.id,
            name: f.name,
            version: f.version,
        }));
    }
    Ok(frozen)
}

/// R17 at completion, in the completing transaction: the versions of `frozen` now, their rows
/// locked on PostgreSQL so that none can move before the change commits.
pub(crate) async fn current_versions(tx: &mut WriteTx, frozen: &[Dependency]) -> Result<Versions> {
    let mut versions = Versions::new();
    for resource_type in LOCK_ORDER {
        let ids: Vec<&str> =
            frozen.iter().filter(|d| d.resource_type == resource_type).map(|d| d.id.as_str()).collect();
        for found in read(tx, resource_type, &ids, true).await? {
            versions.insert((resource_type, found.id), found.version);
        }
    }
    Ok(versions)
}

/// A dependency of a request as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyState {
    pub name: String,
    pub version: i64,
    /// A group's members now, by username; empty for other types.
    pub members: Vec<GroupMember>,
    /// A role's permissions now; empty for other types.
    pub permissions: Vec<String>,
}

/// A dependency as it was frozen, beside what it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyNow {
    pub frozen: Dependency,
    /// `None` once it is deleted.
    pub current: Option<DependencyState>,
}

impl DependencyNow {
    /// Whether completing the request now would fail on this dependency.
    pub fn changed(&self) -> bool {
        self.frozen.has_changed(self.current.as_ref().map(|c| c.version))
    }
}

impl Store {
    /// What approvers see of a request's dependencies: each as it is now, groups with their
    /// current members and roles with their current permissions, in a few reads for all of
    /// them together.
    pub async fn dependencies_now(&self, frozen: &[Dependency]) -> Result<Vec<DependencyNow>> {
        if frozen.is_empty() {
            return Ok(vec![]);
        }
        let mut tx = self.reader().await?;
        let ids_of = |resource_type: ResourceType| -> Vec<&str> {
            frozen.iter().filter(|d| d.resource_type == resource_type).map(|d| d.id.as_str()).collect()
        };
        let mut now: BTreeMap<(ResourceType, String), DependencyState> = BTreeMap::new();
        for resource_type in LOCK_ORDER {
            for found in read(&mut tx, resource_type, &ids_of(resource_type), false).await? {
                let state =
                    DependencyState { name: found.name, version: found.version, members: vec![], permissions: vec![] };
                now.insert((resource_type, found.id), state);
            }
        }
        let groups = ids_of(ResourceType::Group);
        if !groups.is_empty() {
            let sql = format!(
                "SELECT m.group_id AS group_id, a.id AS id, a.username AS username FROM group_members m \
                 JOIN accounts a ON a.id = m.account_id WHERE m.group_id IN ({}) ORDER BY a.username, a.id",
                placeholders(1, groups.len())
            );
            let mut query = sqlx::query(&sql);
            for id in &groups {
                query = query.bind(*id);
            }
            for row in query.fetch_all(tx.conn()).await? {
                if let Some(group) = now.get_mut(&(ResourceType::Group, text(&row, "group_id")?)) {
                    group.members.push(GroupMember { id: text(&row, "id")?, username: text(&row, "username")? });
                }
            }
        }
        let roles = ids_of(ResourceType::Role);
        if !roles.is_empty() {
            let sql = format!("SELECT id, permissions FROM roles WHERE id IN ({})", placeholders(1, roles.len()));
            let mut query = sqlx::query(&sql);
            for id in &roles {
                query = query.bind(*id);
            }
            for row in query.fetch_all(tx.conn()).await? {
                if let Some(role) = now.get_mut(&(ResourceType::Role, text(&row, "id")?)) {
                    role.permissions = json(&row, "permissions")?;
                }
            }
        }
        tx.rollback().await?;
        Ok(frozen
            .iter()
            .map(|d| DependencyNow { frozen: d.clone(), current: now.remove(&(d.resource_type, d.id.clone())) })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::Proposal;
    use crate::testing::{TestBackend, TestDatabase};
    use crate::{Actor, PolicyPlan, StoreOptions, Submitted, TenantPlan};
    use countersign_core::eligibility::AccountKind;
    use countersign_core::permission::{Permission, PermissionSet, BUILT_IN_ROLES};
    use countersign_core::profile::{Operation, ProfileType};
    use countersign_core::request::{Decision, RequestStatus};
    use countersign_core::state::{GroupState, ObjectState, RoleAssignmentState, RoleState};
    use countersign_core::visibility::Viewer;
    use countersign_core::Millis;

    const NOW: Millis = 1_800_000_000_000;

    fn every_permission() -> PermissionSet {
        PermissionSet::new(Permission::ALL.map(|p| p.as_str()))
    }

    fn actor(id: &str, name: &str) -> Actor {
        Actor {
            id: id.to_owned(),
            name: name.to_owned(),
            username: name.to_owned(),
            kind: AccountKind::Human,
            via: vec![],
        }
    }

    struct Tenant {
        store: Store,
        alice: String,
        bob: String,
        carol: String,
        approvers: String,
        helpdesk: String,
        other: String,
        helpers: String,
    }

    /// alice proposes; bob approves (Approver role, in the approver group of the `role` and
    /// `operationApprovalPolicy` policies, when `protected`); carol is in Helpdesk; Helpers is
    /// a custom role.
    async fn tenant(database: &TestDatabase, protected: bool) -> Tenant {
        let store = Store::connect(&database.url, StoreOptions::default()).await.expect("store");
        store.seed_built_in_roles(NOW).await.expect("built-in roles");
        let mut plan = TenantPlan::new();
        let alice = plan.human("alice", "Alice", None, Some("hash"));
        let bob = plan.human("bob", "Bob", None, Some("hash"));
        let carol = plan.human("carol", "Carol", None, Some("hash"));
        let approvers = plan.group("Approvers", "", &[&bob]);
        let helpdesk = plan.group("Helpdesk", "", &[&carol]);
        let other = plan.group("Other", "", &[] as &[&str]);
        let approver_role = BUILT_IN_ROLES.iter().find(|r| r.display_name == "Approver").map(|r| r.id).unwrap();
        plan.role_assignment("Approvers", approver_role, &[&approvers]);
        if protected {
            plan.policy(PolicyPlan::new("roles", ProfileType::Role, &[&approvers]));
            plan.policy(PolicyPlan::new("guards", ProfileType::OperationApprovalPolicy, &[&approvers]));
        }
        let mut proposals = plan.into_proposals();
        let role = Proposal::create(
            ResourceType::Role,
            ObjectState::Role(RoleState {
                display_name: "Helpers".into(),
                description: String::new(),
                permissions: vec!["apps.read".into()],
                built_in: false,
            }),
        );
        let helpers = role.object_id.clone();
        proposals.insert(0, role);
        assert!(store.seed(proposals, NOW).await.expect("seed"));
        Tenant { store, alice, bob, carol, approvers, helpdesk, other, helpers }
    }

    impl Tenant {
        /// Applies or holds a change of the object `id` of `resource_type` proposed by alice.
        async fn change(
            &self,
            resource_type: ResourceType,
            id: &str,
            edit: impl FnOnce(&mut ObjectState),
        ) -> Submitted {
            let (before, version) = self.store.object_state(resource_type, id).await.unwrap().unwrap();
            let mut after = before.clone();
            edit(&mut after);
            let proposal =
                Proposal::change(resource_type, Operation::Update, id.to_owned(), before, version, Some(after));
            self.store
                .submit(&actor(&self.alice, "alice"), &every_permission(), proposal, Some("j"), NOW)
                .await
                .unwrap()
        }

        async fn add_member(&self, group: &str, account: &str, username: &str) {
            let applied = self
                .change(ResourceType::Group, group, |state| {
                    if let ObjectState::Group(GroupState { members, .. }) = state {
                        members.push(GroupMember { id: account.to_owned(), username: username.to_owned() });
                    }
                })
                .await;
            assert!(matches!(applied, Submitted::Applied { .. }), "{applied:?}");
        }

        /// alice proposes granting Helpers to Helpdesk; bob approves.
        async fn approved_grant(&self) -> String {
            let proposal = Proposal::create(
                ResourceType::RoleAssignment,
                ObjectState::RoleAssignment(RoleAssignmentState {
                    display_name: "Helpdesk helpers".into(),
                    role_id: self.helpers.clone(),
                    group_ids: vec![self.helpdesk.clone()],
                }),
            );
            let submitted =
                self.store.submit(&actor(&self.alice, "alice"), &every_permission(), proposal, Some("j"), NOW).await;
            let Ok(Submitted::Held(request)) = submitted else { panic!("a role grant is held: {submitted:?}") };
            let permissions = PermissionSet::new(["roles.read", "maa.approve"]);
            let groups = [self.approvers.clone()];
            let viewer = Viewer { id: &self.bob, permissions: &permissions, group_ids: &groups };
            let decided = self
                .store
                .decide(&actor(&self.bob, "bob"), viewer, &request.id, Decision::Approve, None, None, NOW)
                .await;
            assert_eq!(decided.expect("bob approves").status, RequestStatus::Approved);
            request.id
        }

        async fn complete(&self, request: &str) -> crate::RequestRecord {
            let permissions = every_permission();
            let viewer = Viewer { id: &self.alice, permissions: &permissions, group_ids: &[] };
            self.store.complete(&actor(&self.alice, "alice"), viewer, request, NOW).await.expect("complete")
        }

        async fn version(&self, resource_type: ResourceType, id: &str) -> Option<i64> {
            self.store.object_state(resource_type, id).await.unwrap().map(|(_, version)| version)
        }
    }

    crate::backend_tests!(r17_a_held_change_freezes_the_groups_role_and_members_it_depends_on);
    async fn r17_a_held_change_freezes_the_groups_role_and_members_it_depends_on(backend: TestBackend) {
        let database = TestDatabase::create(backend).await;
        let t = tenant(&database, true).await;
        let request = t.approved_grant().await;
        let stored = t.store.request(&request).await.unwrap();
        let frozen: Vec<_> =
            stored.dependencies.iter().map(|d| (d.resource_type, d.name.as_str(), d.version)).collect();
        assert_eq!(
            frozen,
            [
                (ResourceType::Group, "Helpdesk", 1),
                (ResourceType::Role, "Helpers", 1),
                (ResourceType::Account, "carol", 1)
            ],
            "{backend:?}: the group, the role, and the member the grant gives the role to"
        );
        let now = t.store.dependencies_now(&stored.dependencies).await.unwrap();
        assert!(now.iter().all(|d| !d.changed()), "{backend:?}");
        let helpdesk = now[0].current.as_ref().unwrap();
        assert_eq!(helpdesk.members.iter().map(|m| m.username.as_str()).collect::<Vec<_>>(), ["carol"]);
        assert_eq!(now[1].current.as_ref().unwrap().permissions, ["apps.read"]);
        t.store.close().await;
        database.drop_database().await;
    }

    crate::backend_tests!(r17_completion_fails_naming_a_group_that_gained_a_member);
    async fn r17_completion_fails_naming_a_group_that_gained_a_member(backend: TestBackend) {
        let database = TestDatabase::create(backend).await;
        let t = tenant(&database, true).await;
        let request = t.approved_grant().await;
        // Helpdesk holds no role yet, so adding to it is not held.
        t.add_member(&t.helpdesk, &t.alice, "alice").await;
        let done = t.complete(&request).await;
        assert_eq!(done.status, RequestStatus::Failed, "{backend:?}");
        let reason = done.failure_reason.unwrap_or_default();
        assert!(
            reason.contains("group 'Helpdesk' changed after the request was submitted (version 1, now 2)"),
            "{backend:?}: {reason}"
        );
        let assigned = sqlx::query("SELECT id FROM role_assignments WHERE role_id = $1")
            .bind(&t.helpers)
            .fetch_optional(t.store.pool())
            .await
            .unwrap();
        assert!(assigned.is_none(), "{backend:?}: nothing was applied");
        let dependencies = t.store.request(&request).await.unwrap().dependencies;
        let now = t.store.dependencies_now(&dependencies).await.unwrap();
        assert!(now[0].changed() && !now[1].changed(), "{backend:?}");
        t.store.close().await;
        database.drop_database().await;
    }

    crate::backend_tests!(r17_an_unrelated_change_does_not_fail_completion);
    async fn r17_an_unrelated_change_does_not_fail_completion(backend: TestBackend) {
        let database = TestDatabase::create(backend).await;
        let t = tenant(&database, true).await;
        let request = t.approved_grant().await;
        t.add_member(&t.other, &t.alice, "alice").await;
        let done = t.complete(&request).await;
        assert_eq!(done.status, RequestStatus::Completed, "{backend:?}: {:?}", done.failure_reason);
        t.store.close().await;
        database.drop_database().await;
    }

    crate::backend_tests!(r17_every_write_that_changes_a_dependency_moves_its_version);
    async fn r17_every_write_that_changes_a_dependency_moves_its_version(backend: TestBackend) {
        let database = TestDatabase::create(backend).await;
        let t = tenant(&database, false).await;
        let group = t.version(ResourceType::Group, &t.helpdesk).await;
        t.add_member(&t.helpdesk, &t.alice, "alice").await;
        assert_eq!(t.version(ResourceType::Group, &t.helpdesk).await, group.map(|v| v + 1), "membership");

        let role = t.version(ResourceType::Role, &t.helpers).await;
        t.change(ResourceType::Role, &t.helpers, |state| {
            if let ObjectState::Role(role) = state {
                role.permissions.push("apps.write".into());
            }
        })
        .await;
        assert_eq!(t.version(ResourceType::Role, &t.helpers).await, role.map(|v| v + 1), "permissions");

        let mut carol = t.version(ResourceType::Account, &t.carol).await.unwrap();
        let (before, version) = t.store.object_state(ResourceType::Account, &t.carol).await.unwrap().unwrap();
        let mut reset = Proposal::change(
            ResourceType::Account,
            Operation::Update,
            t.carol.clone(),
            before.clone(),
            version,
            Some(before.clone()),
        );
        reset.secret = Some("another hash".into());
        t.store.submit(&actor(&t.alice, "alice"), &every_permission(), reset, None, NOW).await.unwrap();
        carol += 1;
        assert_eq!(t.version(ResourceType::Account, &t.carol).await, Some(carol), "a password reset");

        t.store.change_own_password(&actor(&t.carol, "carol"), "her own hash", None, false, NOW).await.unwrap();
        carol += 1;
        assert_eq!(t.version(ResourceType::Account, &t.carol).await, Some(carol), "her own new password");

        t.change(ResourceType::Account, &t.carol, |state| {
            if let ObjectState::Account(account) = state {
                account.enabled = false;
            }
        })
        .await;
        carol += 1;
        assert_eq!(t.version(ResourceType::Account, &t.carol).await, Some(carol), "disabled");

        let (before, version) = t.store.object_state(ResourceType::Account, &t.carol).await.unwrap().unwrap();
        let delete = Proposal::change(ResourceType::Account, Operation::Delete, t.carol.clone(), before, version, None);
        let group = t.version(ResourceType::Group, &t.helpdesk).await;
        t.store.submit(&actor(&t.alice, "alice"), &every_permission(), delete, None, NOW).await.unwrap();
        assert_eq!(t.version(ResourceType::Account, &t.carol).await, None, "deleted");
        assert_eq!(t.version(ResourceType::Group, &t.helpdesk).await, group.map(|v| v + 1), "a member left");
        let mut tx = t.store.reader().await.unwrap();
        let frozen = [Dependency {
            resource_type: ResourceType::Account,
            id: t.carol.clone(),
            name: "carol".into(),
            version: 1,
        }];
        assert!(
            current_versions(&mut tx, &frozen).await.unwrap().is_empty(),
            "{backend:?}: a deleted account has no version"
        );
        tx.rollback().await.unwrap();
        t.store.close().await;
        database.drop_database().await;
    }

    crate::backend_tests!(r17_a_held_change_naming_a_missing_group_is_refused);
    async fn r17_a_held_change_naming_a_missing_group_is_refused(backend: TestBackend) {
        let database = TestDatabase::create(backend).await;
        let t = tenant(&database, true).await;
        let proposal = Proposal::create(
            ResourceType::RoleAssignment,
            ObjectState::RoleAssignment(RoleAssignmentState {
                display_name: "Nobody".into(),
                role_id: t.helpers.clone(),
                group_ids: vec!["00000000-0000-7000-8000-000000000000".into()],
            }),
        );
        let refused = t.store.submit(&actor(&t.alice, "alice"), &every_permission(), proposal, Some("j"), NOW).await;
        assert!(matches!(refused, Err(StoreError::Domain(DomainError::Validation(_)))), "{backend:?}: {refused:?}");
        t.store.close().await;
        database.drop_database().await;
    }
}
