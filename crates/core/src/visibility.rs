//! Who may see a request, and so act on it: its requester, anyone who may read its resource
//! type, and the members of the groups that decide it. A request someone may not see does not
//! exist for them (404), so its existence leaks nothing.

use crate::permission::{read_permission, PermissionSet};
use crate::profile::ResourceType;

/// The account looking at a request, with what it holds now.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub id: &'a str,
    pub permissions: &'a PermissionSet,
    pub group_ids: &'a [String],
}

impl Viewer<'_> {
    /// Sees the request without asking who decides it: its requester, or a reader of its type.
    pub fn sees_directly(&self, requested_by: &str, resource_type: ResourceType) -> bool {
        requested_by == self.id || self.permissions.has(read_permission(resource_type))
    }

    /// Sees it as a member of one of the groups that decide it.
    pub fn sees_as_approver(&self, approver_group_ids: &[String]) -> bool {
        self.group_ids.iter().any(|g| approver_group_ids.contains(g))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requester_readers_of_the_type_and_approver_group_members_see_a_request() {
        let none = PermissionSet::default();
        let readers = PermissionSet::new(["apps.read"]);
        let groups = ["approvers".to_string()];
        let stranger = Viewer { id: "eve", permissions: &none, group_ids: &[] };
        assert!(!stranger.sees_directly("alice", ResourceType::App));
        assert!(!stranger.sees_as_approver(&groups));
        let requester = Viewer { id: "alice", ..stranger };
        assert!(requester.sees_directly("alice", ResourceType::App));
        let reader = Viewer { permissions: &readers, ..stranger };
        assert!(reader.sees_directly("alice", ResourceType::App));
        assert!(!reader.sees_directly("alice", ResourceType::Script), "reading apps shows no script request");
        let member = Viewer { group_ids: &groups, ..stranger };
        assert!(member.sees_as_approver(&groups));
        assert!(!member.sees_as_approver(&["others".to_string()]));
    }
}
