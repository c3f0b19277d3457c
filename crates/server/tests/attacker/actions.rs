//! What the attacker may do: one action per operation of the REST API. Each names its targets by
//! index into the pools the attacker knows when it runs (see `attacker::Attacker`), taken modulo
//! the pool's size, so that every sequence can be played and shrinks to a shorter one.

use crate::Property;
use countersign_core::permission::BUILT_IN_ROLES;
use proptest::collection::vec;
use proptest::prelude::*;
use std::fmt;

/// An index into a pool.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Pick(pub u8);

impl Pick {
    pub fn of<T>(self, pool: &[T]) -> Option<&T> {
        (!pool.is_empty()).then(|| &pool[usize::from(self.0) % pool.len()])
    }
}

impl fmt::Debug for Pick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Which credential of the acting account to use (the other one when it has none of this kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Token,
    Session,
}

/// Who acts: an index into the accounts the attacker controls, in the order it came to control
/// them (0 is mallory), and through which credential.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct By {
    pub account: Pick,
    pub via: Via,
}

impl fmt::Debug for By {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}/{:?}", self.account, self.via)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceOp {
    Wipe,
    Retire,
    Delete,
}

impl DeviceOp {
    pub fn path(self) -> &'static str {
        match self {
            DeviceOp::Wipe => "wipe",
            DeviceOp::Retire => "retire",
            DeviceOp::Delete => "delete",
        }
    }
}

/// One operation of the REST API, with its targets.
#[derive(Clone, Debug)]
pub enum Action {
    // Accounts: `account` picks from every account the attacker knows of.
    CreateHuman { by: By },
    CreateService { by: By },
    SetPassword { by: By, account: Pick },
    Rename { by: By, account: Pick },
    Readdress { by: By, account: Pick },
    SetEnabled { by: By, account: Pick, enabled: bool },
    DeleteAccount { by: By, account: Pick },
    ChangeOwnPassword { by: By },
    CreateToken { by: By },
    RevokeToken { by: By, token: Pick },
    // Groups: `member` picks from the controlled accounts to add, or from the group's members
    // to remove.
    CreateGroup { by: By },
    AddMember { by: By, group: Pick, member: Pick },
    RemoveMember { by: By, group: Pick, member: Pick },
    // RBAC: `grants` picks one of `attacker::role_grants()`.
    CreateRole { by: By, grants: Pick },
    AssignRole { by: By, role: Pick, group: Pick },
    ReassignRole { by: By, assignment: Pick, role: Pick, group: Pick },
    // Resources: `kind` picks a document type.
    CreateResource { by: By, kind: Pick },
    UpdateResource { by: By, resource: Pick },
    AssignResource { by: By, resource: Pick, group: Pick },
    DeleteResource { by: By, resource: Pick },
    ActOnDevice { by: By, op: DeviceOp },
    // Access policies: `profile` picks a profile type.
    CreatePolicy { by: By, profile: Pick, group: Pick },
    UpdatePolicy { by: By, policy: Pick, group: Pick, automatic: bool },
    DeletePolicy { by: By, policy: Pick },
    // Requests: `request` picks from the requests the attacker knows of, newest first.
    Approve { by: By, request: Pick },
    Reject { by: By, request: Pick },
    Cancel { by: By, request: Pick },
    Complete { by: By, request: Pick },
}

fn pick() -> impl Strategy<Value = Pick> {
    any::<u8>().prop_map(Pick)
}

fn by() -> impl Strategy<Value = By> {
    let via = prop_oneof![3 => Just(Via::Token), 2 => Just(Via::Session)];
    (pick(), via).prop_map(|(account, via)| By { account, via })
}

/// Every action, weighted towards the ones takeovers are made of (passwords, membership,
/// proposals, decisions).
pub fn action() -> impl Strategy<Value = Action> {
    use Action::*;
    prop_oneof![
        2 => by().prop_map(|by| CreateHuman { by }),
        2 => by().prop_map(|by| CreateService { by }),
        5 => (by(), pick()).prop_map(|(by, account)| SetPassword { by, account }),
        2 => (by(), pick()).prop_map(|(by, account)| Rename { by, account }),
        2 => (by(), pick()).prop_map(|(by, account)| Readdress { by, account }),
        1 => (by(), pick(), any::<bool>()).prop_map(|(by, account, enabled)| SetEnabled { by, account, enabled }),
        1 => (by(), pick()).prop_map(|(by, account)| DeleteAccount { by, account }),
        1 => by().prop_map(|by| ChangeOwnPassword { by }),
        2 => by().prop_map(|by| CreateToken { by }),
        1 => (by(), pick()).prop_map(|(by, token)| RevokeToken { by, token }),
        2 => by().prop_map(|by| CreateGroup { by }),
        4 => (by(), pick(), pick()).prop_map(|(by, group, member)| AddMember { by, group, member }),
        2 => (by(), pick(), pick()).prop_map(|(by, group, member)| RemoveMember { by, group, member }),
        1 => (by(), pick()).prop_map(|(by, grants)| CreateRole { by, grants }),
        2 => (by(), pick(), pick()).prop_map(|(by, role, group)| AssignRole { by, role, group }),
        1 => (by(), pick(), pick(), pick())
            .prop_map(|(by, assignment, role, group)| ReassignRole { by, assignment, role, group }),
        2 => (by(), pick()).prop_map(|(by, kind)| CreateResource { by, kind }),
        4 => (by(), pick()).prop_map(|(by, resource)| UpdateResource { by, resource }),
        2 => (by(), pick(), pick()).prop_map(|(by, resource, group)| AssignResource { by, resource, group }),
        1 => (by(), pick()).prop_map(|(by, resource)| DeleteResource { by, resource }),
        1 => (by(), prop_oneof![Just(DeviceOp::Wipe), Just(DeviceOp::Retire), Just(DeviceOp::Delete)])
            .prop_map(|(by, op)| ActOnDevice { by, op }),
        1 => (by(), pick(), pick()).prop_map(|(by, profile, group)| CreatePolicy { by, profile, group }),
        2 => (by(), pick(), pick(), any::<bool>())
            .prop_map(|(by, policy, group, automatic)| UpdatePolicy { by, policy, group, automatic }),
        1 => (by(), pick()).prop_map(|(by, policy)| DeletePolicy { by, policy }),
        3 => (by(), pick()).prop_map(|(by, request)| Approve { by, request }),
        1 => (by(), pick()).prop_map(|(by, request)| Reject { by, request }),
        1 => (by(), pick()).prop_map(|(by, request)| Cancel { by, request }),
        3 => (by(), pick()).prop_map(|(by, request)| Complete { by, request }),
    ]
}

/// The built-in roles that can propose a protected change (property 2 needs one).
const PROPOSING_ROLES: [&str; 4] =
    ["Administrator", "Application Manager", "Policy and Profile Manager", "Help Desk Operator"];

/// One case: mallory's role (an index into `BUILT_IN_ROLES`), whether it is also in the approver
/// group, which benign change it proposes in property 2 (of those its role can), and what it does.
#[derive(Clone)]
pub struct Case {
    pub role: usize,
    pub approver: bool,
    pub benign: Pick,
    pub actions: Vec<Action>,
}

impl Case {
    /// A case that does nothing, with the fullest set-up: an Administrator in the approver group.
    pub fn idle() -> Case {
        Case { role: role_index("Administrator"), approver: true, benign: Pick(0), actions: vec![] }
    }

    pub fn role_name(&self) -> &'static str {
        BUILT_IN_ROLES[self.role].display_name
    }
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let approver = if self.approver { " and an approver" } else { "" };
        writeln!(f, "mallory is {}{approver} (benign change {:?}), and does:", self.role_name(), self.benign)?;
        for (i, action) in self.actions.iter().enumerate() {
            writeln!(f, "  {:>2}. {action:?}", i + 1)?;
        }
        Ok(())
    }
}

fn role_index(name: &str) -> usize {
    BUILT_IN_ROLES.iter().position(|r| r.display_name == name).unwrap_or(0)
}

/// Cases for `property`: an Administrator most often (the role that can take over the most),
/// an approver half the time (the case a puppet requester needs), and up to `steps` actions.
pub fn case(property: Property, steps: usize) -> impl Strategy<Value = Case> {
    let administrator = role_index("Administrator");
    let roles: Vec<usize> = match property {
        Property::NothingApproved => (0..BUILT_IN_ROLES.len()).collect(),
        Property::OneBenignApproval => PROPOSING_ROLES.iter().map(|name| role_index(name)).collect(),
    };
    let role = prop_oneof![2 => Just(administrator), 1 => proptest::sample::select(roles)];
    (role, any::<bool>(), pick(), vec(action(), 1..=steps.max(1))).prop_map(|(role, approver, benign, actions)| Case {
        role,
        approver,
        benign,
        actions,
    })
}
