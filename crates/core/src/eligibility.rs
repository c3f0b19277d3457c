//! R2 (who approves) and R14 (protection must not lock the tenant).

use crate::control::ControlGraph;
use crate::permission::{read_permission, Permission, PermissionSet, MAA_APPROVE};
use crate::profile::ResourceType;
use crate::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;

crate::named_enum! {
    /// A person, or automation with an API token (which never approves, R2).
    pub enum AccountKind: "account kind" {
        Human = "human",
        Service = "service",
    }
}

impl AccountKind {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        s.parse().map_err(|_| DomainError::Validation(format!("kind must be 'human' or 'service', not '{s}'")))
    }
}

/// What is known about a possible approver at decision time.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: String,
    pub kind: AccountKind,
    pub enabled: bool,
    /// R16: still signs in with a password someone else set.
    pub password_change_required: bool,
    pub group_ids: Vec<String>,
    pub permissions: PermissionSet,
}

/// Why an account may not approve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "reason")]
pub enum Ineligibility {
    NotHuman,
    Disabled,
    PasswordChangeRequired,
    NotInApproverGroup,
    LacksApprovePermission,
    LacksReadPermission { permission: Permission },
}

impl fmt::Display for Ineligibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ineligibility::NotHuman => f.write_str("service accounts never approve"),
            Ineligibility::Disabled => f.write_str("the account is disabled"),
            Ineligibility::PasswordChangeRequired => {
                f.write_str("still has a password someone else set, and must choose their own first")
            }
            Ineligibility::NotInApproverGroup => f.write_str("not a member of an approver group"),
            Ineligibility::LacksApprovePermission => {
                write!(f, "lacks the permission {MAA_APPROVE} (Approval for Multi Admin Approval)")
            }
            Ineligibility::LacksReadPermission { permission } => write!(f, "lacks the permission {permission}"),
        }
    }
}

/// R2: every reason `candidate` may not decide a request on `resource_type` whose approvers are
/// `approver_group_ids`. Empty means eligible. Being the requester is R3, checked separately.
pub fn ineligibility(
    candidate: &Candidate,
    approver_group_ids: &[String],
    resource_type: ResourceType,
) -> Vec<Ineligibility> {
    let mut reasons = Vec::new();
    if candidate.kind != AccountKind::Human {
        reasons.push(Ineligibility::NotHuman);
    }
    if !candidate.enabled {
        reasons.push(Ineligibility::Disabled);
    }
    if candidate.password_change_required {
        reasons.push(Ineligibility::PasswordChangeRequired);
    }
    if !candidate.group_ids.iter().any(|g| approver_group_ids.contains(g)) {
        reasons.push(Ineligibility::NotInApproverGroup);
    }
    if !candidate.permissions.has(MAA_APPROVE) {
        reasons.push(Ineligibility::LacksApprovePermission);
    }
    let read = read_permission(resource_type);
    if !candidate.permissions.has(read) {
        reasons.push(Ineligibility::LacksReadPermission { permission: read });
    }
    reasons
}

pub fn describe(reasons: &[Ineligibility]) -> String {
    reasons.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// R14: a policy may be saved only if its approver groups hold at least `required_approvals`
/// eligible approvers other than the account saving it and independent of it (R16: a member the
/// saver controls could never approve the saver's changes). `members` are the approver groups'
/// members with their names, for the message; `control` the control relation around them.
pub fn ensure_satisfiable(
    saver_id: &str,
    members: &[(Candidate, String)],
    control: &ControlGraph,
    approver_group_ids: &[String],
    protected_type: ResourceType,
    required_approvals: i64,
) -> Result<(), DomainError> {
    let mut eligible = 0_i64;
    let mut notes = Vec::new();
    for (candidate, name) in members {
        if candidate.id == saver_id {
            notes.push(format!("{name}: is the account saving the policy"));
            continue;
        }
        if let Some(link) = control.link(&candidate.id, saver_id) {
            notes.push(format!("{name}: is not independent of you ({})", control.describe(&link)));
            continue;
        }
        let reasons = ineligibility(candidate, approver_group_ids, protected_type);
        if reasons.is_empty() {
            eligible += 1;
        } else {
            notes.push(format!("{name}: {}", describe(&reasons)));
        }
    }
    if eligible >= required_approvals {
        return Ok(());
    }
    let found = if members.is_empty() { "the approver groups have no members".to_owned() } else { notes.join("; ") };
    Err(DomainError::NoEligibleApprover(format!(
        "{required_approvals} eligible approver(s) needed, {eligible} found ({found})"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(id: &str, permissions: &[&str]) -> Candidate {
        Candidate {
            id: id.into(),
            kind: AccountKind::Human,
            enabled: true,
            password_change_required: false,
            group_ids: vec!["approvers".into()],
            permissions: PermissionSet::new(permissions.iter().copied()),
        }
    }

    fn groups() -> Vec<String> {
        vec!["approvers".into()]
    }

    #[test]
    fn r2_an_enabled_human_member_with_approve_and_read_is_eligible() {
        let bob = candidate("bob", &["maa.approve", "apps.read"]);
        assert!(ineligibility(&bob, &groups(), ResourceType::App).is_empty());
    }

    #[test]
    fn r2_each_missing_condition_is_reported() {
        let mut svc = candidate("svc", &["maa.approve", "apps.read"]);
        svc.kind = AccountKind::Service;
        assert_eq!(ineligibility(&svc, &groups(), ResourceType::App), vec![Ineligibility::NotHuman]);

        let mut off = candidate("off", &["maa.approve", "apps.read"]);
        off.enabled = false;
        assert_eq!(ineligibility(&off, &groups(), ResourceType::App), vec![Ineligibility::Disabled]);

        let mut temporary = candidate("new", &["maa.approve", "apps.read"]);
        temporary.password_change_required = true;
        assert_eq!(
            ineligibility(&temporary, &groups(), ResourceType::App),
            vec![Ineligibility::PasswordChangeRequired],
            "R16: an account still on a password someone else set cannot approve"
        );

        let outsider = candidate("x", &["maa.approve", "apps.read"]);
        assert_eq!(
            ineligibility(&outsider, &["other".to_string()], ResourceType::App),
            vec![Ineligibility::NotInApproverGroup]
        );

        let reader = candidate("r", &["apps.read"]);
        assert_eq!(ineligibility(&reader, &groups(), ResourceType::App), vec![Ineligibility::LacksApprovePermission]);

        let blind = candidate("b", &["maa.approve"]);
        assert_eq!(
            ineligibility(&blind, &groups(), ResourceType::Script),
            vec![Ineligibility::LacksReadPermission { permission: Permission::ScriptsRead }]
        );
    }

    #[test]
    fn r14_r16_members_the_saver_controls_do_not_count() {
        use crate::control::{ControlEdge, CredentialKind};
        let puppet = candidate("puppet", &["maa.approve", "apps.read"]);
        let members = vec![(puppet, "puppet".to_string())];
        let control = ControlGraph::new(
            [ControlEdge { account: "puppet".into(), controller: "admin".into(), via: CredentialKind::Password }],
            Default::default(),
        );
        let err = ensure_satisfiable("admin", &members, &control, &groups(), ResourceType::App, 1).unwrap_err();
        assert_eq!(err.code(), "no_eligible_approver");
        assert!(
            err.to_string().contains("puppet: is not independent of you (puppet's password was set by admin)"),
            "{err}"
        );
        assert!(
            ensure_satisfiable("admin", &members, &ControlGraph::default(), &groups(), ResourceType::App, 1).is_ok()
        );
    }

    #[test]
    fn r14_the_saver_alone_cannot_satisfy_a_policy() {
        let admin = candidate("admin", &["maa.approve", "apps.read"]);
        let members = vec![(admin, "admin".to_string())];
        let err = ensure_satisfiable("admin", &members, &ControlGraph::default(), &groups(), ResourceType::App, 1)
            .unwrap_err();
        assert_eq!(err.code(), "no_eligible_approver");
        assert!(err.to_string().contains("admin: is the account saving the policy"));
    }

    #[test]
    fn r14_says_why_each_member_does_not_count_and_honours_quorum() {
        let bob = candidate("bob", &["maa.approve", "apps.read"]);
        let carol = candidate("carol", &["apps.read"]);
        let members = vec![(bob, "bob".to_string()), (carol, "carol".to_string())];
        assert!(
            ensure_satisfiable("admin", &members, &ControlGraph::default(), &groups(), ResourceType::App, 1).is_ok()
        );
        let err = ensure_satisfiable("admin", &members, &ControlGraph::default(), &groups(), ResourceType::App, 2)
            .unwrap_err();
        assert!(err.to_string().contains("carol: lacks the permission maa.approve"), "{err}");
        let empty =
            ensure_satisfiable("admin", &[], &ControlGraph::default(), &groups(), ResourceType::App, 1).unwrap_err();
        assert!(empty.to_string().contains("no members"));
    }
}
