//! **R17 The approved context is frozen.** A change depends on more than its object: the groups
//! it names, the accounts it adds to a group, the role it assigns. An approver who approves
//! "add group G (members: carol) as an approver group" approves *that* G; if G gains a member
//! between approval and completion, what would be applied is no longer what was approved.
//!
//! So the store freezes, at submission, the version of every dependency ([`depends_on`] says
//! which), and completion applies nothing if any of them moved ([`first_changed`]).

use crate::profile::ResourceType;
use crate::state::{ObjectState, References};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One object a change depends on besides its own, as it was when the change was submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    pub resource_type: ResourceType,
    pub id: String,
    /// Its name at submission: a group's or role's display name, an account's username.
    pub name: String,
    pub version: i64,
}

/// R12: what each dependency was called at submission, so the diff names the ids it shows.
pub fn names(dependencies: &[Dependency]) -> crate::diff::Names {
    dependencies.iter().map(|d| (d.id.clone(), d.name.clone())).collect()
}

impl Dependency {
    /// Whether the object moved since submission; `current` is `None` once it is deleted.
    pub fn has_changed(&self, current: Option<i64>) -> bool {
        current != Some(self.version)
    }
}

/// What a change depends on, as ids: what [`Dependency`]s the store freezes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// The groups, accounts and roles depended on themselves.
    pub references: References,
    /// Groups whose members the change gives standing (approving for a policy, holding a role)
    /// that they did not have: each member account is depended on too, so that taking one over
    /// between approval and completion (a password reset, while it is not yet protected) fails
    /// the change rather than hand its standing to whoever took the account.
    pub members_of: BTreeSet<String>,
}

/// What a change from `before` to `after` depends on (`None`: a create's before, a delete's
/// after). The groups and roles `after` names; the accounts it adds to a group (after's members
/// less before's: a member who stays or leaves gains nothing); and the members of any group
/// that `after` newly makes an approver group or a role-assignment member group, or whose
/// standing it changes (another role, another profile type). A delete depends on nothing.
pub fn depends_on(before: Option<&ObjectState>, after: Option<&ObjectState>) -> Needs {
    let Some(after) = after else { return Needs::default() };
    let mut references = after.references();
    let had = before.map(ObjectState::references).unwrap_or_default();
    references.accounts.retain(|id| !had.accounts.contains(id));
    // The groups of `now` not already in `was`.
    let gaining = |now: &[String], was: &[String]| -> BTreeSet<String> {
        now.iter().filter(|id| !was.contains(id)).cloned().collect()
    };
    let members_of = match (before, after) {
        (Some(ObjectState::AccessPolicy(b)), ObjectState::AccessPolicy(a)) if b.profile_type == a.profile_type => {
            gaining(&a.approver_group_ids, &b.approver_group_ids)
        }
        (_, ObjectState::AccessPolicy(a)) => gaining(&a.approver_group_ids, &[]),
        (Some(ObjectState::RoleAssignment(b)), ObjectState::RoleAssignment(a)) if b.role_id == a.role_id => {
            gaining(&a.group_ids, &b.group_ids)
        }
        (_, ObjectState::RoleAssignment(a)) => gaining(&a.group_ids, &[]),
        _ => BTreeSet::new(),
    };
    Needs { references, members_of }
}

/// The current versions of dependencies by type and id; an object that no longer exists has
/// no entry.
pub type Versions = BTreeMap<(ResourceType, String), i64>;

/// A dependency that moved after submission, and its version now (`None`: deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed<'a> {
    pub dependency: &'a Dependency,
    pub now: Option<i64>,
}

impl fmt::Display for Changed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.dependency;
        match self.now {
            Some(now) => write!(
                f,
                "{} '{}' changed after the request was submitted (version {}, now {now})",
                d.resource_type, d.name, d.version
            ),
            None => write!(f, "{} '{}' was deleted after the request was submitted", d.resource_type, d.name),
        }
    }
}

/// R17 at completion: the first of `frozen` whose version is not the one it had at
/// submission, or `None` when the context is as it was approved.
pub fn first_changed<'a>(frozen: &'a [Dependency], current: &Versions) -> Option<Changed<'a>> {
    frozen.iter().find_map(|dependency| {
        let now = current.get(&(dependency.resource_type, dependency.id.clone())).copied();
        dependency.has_changed(now).then_some(Changed { dependency, now })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(resource_type: ResourceType, value: serde_json::Value) -> ObjectState {
        ObjectState::from_json(resource_type, value).unwrap()
    }

    fn policy(groups: &[&str], profile_type: &str) -> ObjectState {
        state(
            ResourceType::AccessPolicy,
            json!({"displayName": "Apps", "description": "", "profileType": profile_type, "approverGroupIds": groups,
                   "requiredApprovals": 1, "completion": "requester", "requestTtl": "P30D", "protectAssignedGroups": true}),
        )
    }

    fn assignment(role: &str, groups: &[&str]) -> ObjectState {
        state(ResourceType::RoleAssignment, json!({"displayName": "Ops", "roleId": role, "groupIds": groups}))
    }

    fn group(members: &[&str]) -> ObjectState {
        let members: Vec<_> = members.iter().map(|id| json!({"id": id, "username": format!("user-{id}")})).collect();
        state(ResourceType::Group, json!({"displayName": "Helpdesk", "description": "", "members": members}))
    }

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_policy_depends_on_its_approver_groups_and_the_members_of_those_it_adds() {
        let needs = depends_on(Some(&policy(&["g1"], "app")), Some(&policy(&["g1", "g2"], "app")));
        assert_eq!(needs.references.groups, set(&["g1", "g2"]));
        assert_eq!(needs.members_of, set(&["g2"]), "g1's members approve already");
        assert!(needs.references.accounts.is_empty() && needs.references.roles.is_empty());
        let created = depends_on(None, Some(&policy(&["g1"], "app")));
        assert_eq!(created.members_of, set(&["g1"]));
        let retyped = depends_on(Some(&policy(&["g1"], "app")), Some(&policy(&["g1"], "script")));
        assert_eq!(retyped.members_of, set(&["g1"]), "approving for another profile type is new standing");
    }

    #[test]
    fn a_role_assignment_depends_on_its_role_and_groups() {
        let needs = depends_on(Some(&assignment("r1", &["g1"])), Some(&assignment("r1", &["g1", "g2"])));
        assert_eq!(needs.references.roles, set(&["r1"]));
        assert_eq!(needs.references.groups, set(&["g1", "g2"]));
        assert_eq!(needs.members_of, set(&["g2"]));
        let other_role = depends_on(Some(&assignment("r1", &["g1"])), Some(&assignment("r2", &["g1"])));
        assert_eq!(other_role.references.roles, set(&["r2"]), "the role it will assign");
        assert_eq!(other_role.members_of, set(&["g1"]), "g1's members get another role");
    }

    #[test]
    fn a_membership_change_depends_on_the_accounts_it_adds_only() {
        let needs = depends_on(Some(&group(&["a1", "a2"])), Some(&group(&["a2", "a3"])));
        assert_eq!(needs.references.accounts, set(&["a3"]), "a2 stays, a1 leaves");
        assert!(needs.references.groups.is_empty() && needs.members_of.is_empty());
        assert_eq!(depends_on(None, Some(&group(&["a1"]))).references.accounts, set(&["a1"]));
    }

    #[test]
    fn an_assignment_depends_on_its_groups_but_not_their_members() {
        let app = state(
            ResourceType::App,
            json!({"name": "VPN", "description": "", "document": {}, "assignedGroupIds": ["g1"]}),
        );
        let needs = depends_on(None, Some(&app));
        assert_eq!(needs.references.groups, set(&["g1"]));
        assert!(needs.members_of.is_empty());
    }

    #[test]
    fn a_delete_depends_on_nothing() {
        assert_eq!(depends_on(Some(&policy(&["g1"], "app")), None), Needs::default());
        assert_eq!(depends_on(Some(&group(&["a1"])), None), Needs::default());
    }

    fn frozen() -> Vec<Dependency> {
        vec![
            Dependency { resource_type: ResourceType::Group, id: "g1".into(), name: "Helpdesk".into(), version: 3 },
            Dependency { resource_type: ResourceType::Account, id: "a1".into(), name: "dave".into(), version: 2 },
        ]
    }

    fn versions(entries: &[(ResourceType, &str, i64)]) -> Versions {
        entries.iter().map(|(t, id, v)| ((*t, id.to_string()), *v)).collect()
    }

    #[test]
    fn completion_passes_when_nothing_moved() {
        let current = versions(&[(ResourceType::Group, "g1", 3), (ResourceType::Account, "a1", 2)]);
        assert_eq!(first_changed(&frozen(), &current), None);
        assert_eq!(first_changed(&[], &Versions::new()), None);
    }

    #[test]
    fn completion_names_the_first_dependency_that_changed() {
        let frozen = frozen();
        let current = versions(&[(ResourceType::Group, "g1", 4), (ResourceType::Account, "a1", 3)]);
        let changed = first_changed(&frozen, &current).unwrap();
        assert_eq!(changed.dependency.id, "g1");
        assert_eq!(changed.to_string(), "group 'Helpdesk' changed after the request was submitted (version 3, now 4)");
    }

    #[test]
    fn completion_names_a_deleted_dependency() {
        let frozen = frozen();
        let current = versions(&[(ResourceType::Group, "g1", 3)]);
        let changed = first_changed(&frozen, &current).unwrap();
        assert_eq!(changed.now, None);
        assert_eq!(changed.to_string(), "account 'dave' was deleted after the request was submitted");
    }

    #[test]
    fn an_object_of_another_type_with_the_same_id_is_not_the_dependency() {
        let current = versions(&[(ResourceType::Role, "g1", 3), (ResourceType::Account, "a1", 2)]);
        assert_eq!(first_changed(&frozen(), &current).map(|c| c.dependency.id.as_str()), Some("g1"));
    }

    #[test]
    fn a_dependency_is_stored_in_camel_case() {
        let d = &frozen()[0];
        let value = serde_json::to_value(d).unwrap();
        assert_eq!(value, json!({"resourceType": "group", "id": "g1", "name": "Helpdesk", "version": 3}));
        assert_eq!(&serde_json::from_value::<Dependency>(value).unwrap(), d);
    }
}
