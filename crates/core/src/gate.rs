//! The MAA gate: is this change held for approval, and who governs it (R1, R9, R18)?
//!
//! Every interface asks this one function. It sees only the policies and a few facts about the
//! object being changed, so it can be tested exhaustively without a database.

use crate::policy::{AccessPolicy, Completion, DEFAULT_REQUEST_TTL};
use crate::profile::ProfileType;
use crate::Millis;

/// What a change touches, as far as protection is concerned.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// Enrolling a device, creating an account or an empty group: nothing that any policy
    /// protects exists yet.
    Unprotected,
    /// Apps, scripts, compliance and configuration policies, device actions, device categories:
    /// protected when a policy for their profile type exists.
    Protectable(ProfileType),
    /// Roles and role assignments: protected when a `role` policy exists.
    Rbac,
    /// The membership (or deletion) of a group. `assigned_to` holds the profile types of the
    /// live objects assigned to it, whose reach its membership decides (R18).
    GroupMembership { group_id: &'a str, is_role_member_group: bool, assigned_to: &'a [ProfileType] },
    /// What an account in these groups is known, reached and signed in by: its password,
    /// tokens, passkeys, enabled state, e-mail address or display name, or its existence (R9).
    AccountIdentity { account_group_ids: &'a [String] },
    /// An access policy: `existing` for update and delete, `proposed` for create and update.
    AccessPolicy { existing: Option<&'a AccessPolicy>, proposed: Option<&'a AccessPolicy> },
}

/// Who decides a held change, fixed at submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Governance {
    pub profile_type: ProfileType,
    /// The policy whose *current* approver groups decide at decision time (R2). `None` when the
    /// approvers were fixed at submission: a policy being created, or an R9 change to a group
    /// or account named by several policies while no `operationApprovalPolicy` policy exists.
    pub policy_id: Option<String>,
    pub approver_group_ids: Vec<String>,
    pub required_approvals: i64,
    pub completion: Completion,
    pub request_ttl_ms: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Not protected: apply at once.
    Apply,
    /// R1: hold as an approval request governed so.
    Hold(Governance),
}

fn governed_by(policy: &AccessPolicy) -> Governance {
    Governance {
        profile_type: policy.profile_type,
        policy_id: Some(policy.id.clone()),
        approver_group_ids: policy.approver_group_ids.clone(),
        required_approvals: policy.required_approvals,
        completion: policy.completion,
        request_ttl_ms: policy.request_ttl_ms,
    }
}

fn policy_for(policies: &[AccessPolicy], profile_type: ProfileType) -> Option<&AccessPolicy> {
    policies.iter().find(|p| p.profile_type == profile_type)
}

/// R9 for a group or account: a change to every policy naming one of `groups`.
fn guards_of_guards(policies: &[AccessPolicy], groups: &[&str]) -> Gate {
    let naming: Vec<&AccessPolicy> =
        policies.iter().filter(|p| p.approver_group_ids.iter().any(|g| groups.contains(&g.as_str()))).collect();
    if naming.is_empty() {
        return Gate::Apply;
    }
    if let Some(oap) = policy_for(policies, ProfileType::OperationApprovalPolicy) {
        return Gate::Hold(governed_by(oap));
    }
    if let [only] = naming.as_slice() {
        let mut governance = governed_by(only);
        governance.profile_type = ProfileType::OperationApprovalPolicy;
        governance.completion = Completion::Requester;
        return Gate::Hold(governance);
    }
    Gate::Hold(all_of(&naming, ProfileType::OperationApprovalPolicy))
}

/// Governance by every one of `policies` at once: the union of their approver groups, the
/// strictest quorum, fixed at submission.
fn all_of(policies: &[&AccessPolicy], profile_type: ProfileType) -> Governance {
    let mut approver_group_ids: Vec<String> =
        policies.iter().flat_map(|p| p.approver_group_ids.iter().cloned()).collect();
    approver_group_ids.sort();
    approver_group_ids.dedup();
    Governance {
        profile_type,
        policy_id: None,
        approver_group_ids,
        required_approvals: policies.iter().map(|p| p.required_approvals).max().unwrap_or(1),
        completion: Completion::Requester,
        request_ttl_ms: DEFAULT_REQUEST_TTL,
    }
}

/// A group no policy names as approvers: its membership is governed by every policy whose
/// objects it decides the reach of (R18, unless the policy opts out) and, for a member group of
/// a role assignment, by the `role` policy; by all of them at once when there are several.
fn membership(policies: &[AccessPolicy], is_role_member_group: bool, assigned_to: &[ProfileType]) -> Gate {
    let governing: Vec<&AccessPolicy> = policies
        .iter()
        .filter(|p| {
            let rbac = is_role_member_group && p.profile_type == ProfileType::Role;
            let reach = p.protect_assigned_groups && assigned_to.contains(&p.profile_type);
            rbac || reach
        })
        .collect();
    match governing.as_slice() {
        [] => Gate::Apply,
        [only] => Gate::Hold(governed_by(only)),
        // Named after the last of their types (DESIGN §2's order), so that a change that is
        // also an RBAC change stays a `role` change, which no approver can opt out of hearing.
        several => {
            let profile_type = several.iter().map(|p| p.profile_type).max().unwrap_or(ProfileType::Role);
            Gate::Hold(all_of(several, profile_type))
        }
    }
}

/// Decides whether a change to `subject` is applied at once or held, given every access policy.
pub fn gate(subject: Subject<'_>, policies: &[AccessPolicy]) -> Gate {
    match subject {
        Subject::Unprotected => Gate::Apply,
        Subject::Protectable(profile_type) => match policy_for(policies, profile_type) {
            Some(policy) => Gate::Hold(governed_by(policy)),
            None => Gate::Apply,
        },
        Subject::Rbac => match policy_for(policies, ProfileType::Role) {
            Some(policy) => Gate::Hold(governed_by(policy)),
            None => Gate::Apply,
        },
        // R9 first: an approver group is guarded as a guard, whatever else it decides.
        Subject::GroupMembership { group_id, is_role_member_group, assigned_to } => {
            match guards_of_guards(policies, &[group_id]) {
                Gate::Apply => membership(policies, is_role_member_group, assigned_to),
                decided => decided,
            }
        }
        Subject::AccountIdentity { account_group_ids } => {
            let groups: Vec<&str> = account_group_ids.iter().map(String::as_str).collect();
            guards_of_guards(policies, &groups)
        }
        Subject::AccessPolicy { existing, proposed } => {
            // R9: always held, whether or not an operationApprovalPolicy policy exists.
            if let Some(oap) = policy_for(policies, ProfileType::OperationApprovalPolicy) {
                return Gate::Hold(governed_by(oap));
            }
            let (source, policy_id) = match (existing, proposed) {
                (Some(current), _) => (current, Some(current.id.clone())),
                // A new operationApprovalPolicy policy would take over the guarding of every
                // existing policy, so it is a change to all of them: their current approvers
                // decide, not the (possibly puppet) approvers it proposes.
                (None, Some(new))
                    if new.profile_type == ProfileType::OperationApprovalPolicy && !policies.is_empty() =>
                {
                    return Gate::Hold(all_of(
                        &policies.iter().collect::<Vec<_>>(),
                        ProfileType::OperationApprovalPolicy,
                    ));
                }
                (None, Some(new)) => (new, None),
                (None, None) => return Gate::Apply,
            };
            Gate::Hold(Governance {
                profile_type: ProfileType::OperationApprovalPolicy,
                policy_id,
                approver_group_ids: source.approver_group_ids.clone(),
                required_approvals: source.required_approvals,
                completion: Completion::Requester,
                request_ttl_ms: DEFAULT_REQUEST_TTL,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(id: &str, profile_type: ProfileType, groups: &[&str]) -> AccessPolicy {
        AccessPolicy {
            id: id.into(),
            display_name: id.into(),
            description: String::new(),
            profile_type,
            approver_group_ids: groups.iter().map(|g| g.to_string()).collect(),
            required_approvals: 1,
            completion: Completion::Requester,
            request_ttl_ms: DEFAULT_REQUEST_TTL,
            protect_assigned_groups: true,
            step_up: crate::step_up::StepUp::None,
        }
    }

    fn held_by(gate: Gate) -> Governance {
        match gate {
            Gate::Hold(g) => g,
            Gate::Apply => panic!("expected the change to be held"),
        }
    }

    #[test]
    fn unprotected_types_apply_at_once() {
        let policies = [policy("apps", ProfileType::App, &["g1"])];
        assert_eq!(gate(Subject::Protectable(ProfileType::Script), &policies), Gate::Apply);
        assert_eq!(gate(Subject::Rbac, &policies), Gate::Apply);
    }

    #[test]
    fn r1_a_protected_type_is_held_by_its_policy() {
        let policies = [policy("apps", ProfileType::App, &["g1"])];
        let g = held_by(gate(Subject::Protectable(ProfileType::App), &policies));
        assert_eq!(g.policy_id.as_deref(), Some("apps"));
        assert_eq!(g.approver_group_ids, vec!["g1"]);
    }

    #[test]
    fn r9_access_policy_changes_are_held_even_without_any_policy() {
        let new = policy("new", ProfileType::App, &["g9"]);
        let g = held_by(gate(Subject::AccessPolicy { existing: None, proposed: Some(&new) }, &[]));
        assert_eq!(g.policy_id, None, "a policy being created fixes its proposed approvers");
        assert_eq!(g.approver_group_ids, vec!["g9"]);
        assert_eq!(g.profile_type, ProfileType::OperationApprovalPolicy);
    }

    #[test]
    fn r9_existing_policy_is_governed_by_its_current_approvers() {
        let current = policy("apps", ProfileType::App, &["g1"]);
        let proposed = policy("apps", ProfileType::App, &["puppets"]);
        let policies = [current.clone()];
        let g = held_by(gate(Subject::AccessPolicy { existing: Some(&current), proposed: Some(&proposed) }, &policies));
        assert_eq!(g.approver_group_ids, vec!["g1"], "not the proposed puppet group");
        assert_eq!(g.policy_id.as_deref(), Some("apps"));
    }

    #[test]
    fn r9_a_first_operation_approval_policy_is_decided_by_every_current_approver_not_its_own() {
        let policies = [policy("apps", ProfileType::App, &["g1"]), policy("scripts", ProfileType::Script, &["g2"])];
        let puppets = policy("oap", ProfileType::OperationApprovalPolicy, &["puppets"]);
        let g = held_by(gate(Subject::AccessPolicy { existing: None, proposed: Some(&puppets) }, &policies));
        assert_eq!(g.approver_group_ids, vec!["g1", "g2"]);
        assert_eq!(g.policy_id, None);
        let first = held_by(gate(Subject::AccessPolicy { existing: None, proposed: Some(&puppets) }, &[]));
        assert_eq!(first.approver_group_ids, vec!["puppets"], "the first policy of all protects more, guards nothing");
    }

    #[test]
    fn r9_an_operation_approval_policy_governs_every_guard_change() {
        let apps = policy("apps", ProfileType::App, &["g1"]);
        let policies = [apps.clone(), policy("oap", ProfileType::OperationApprovalPolicy, &["sec"])];
        for subject in [
            Subject::AccessPolicy { existing: Some(&apps), proposed: None },
            Subject::GroupMembership { group_id: "g1", is_role_member_group: false, assigned_to: &[] },
            Subject::AccountIdentity { account_group_ids: &["g1".to_string()] },
        ] {
            let g = held_by(gate(subject, &policies));
            assert_eq!(g.policy_id.as_deref(), Some("oap"));
            assert_eq!(g.approver_group_ids, vec!["sec"]);
        }
    }

    #[test]
    fn r9_approver_group_membership_is_held_without_any_role_policy() {
        let policies = [policy("apps", ProfileType::App, &["g1"]), policy("scripts", ProfileType::Script, &["g2"])];
        let g = held_by(gate(
            Subject::GroupMembership { group_id: "g1", is_role_member_group: false, assigned_to: &[] },
            &policies,
        ));
        assert_eq!(g.approver_group_ids, vec!["g1"]);
        assert_eq!(g.profile_type, ProfileType::OperationApprovalPolicy);
        assert_eq!(
            gate(
                Subject::GroupMembership { group_id: "other", is_role_member_group: false, assigned_to: &[] },
                &policies
            ),
            Gate::Apply
        );
    }

    #[test]
    fn r9_an_account_in_two_approver_groups_is_governed_by_both() {
        let policies = [policy("apps", ProfileType::App, &["g1"]), policy("scripts", ProfileType::Script, &["g2"])];
        let groups = ["g2".to_string(), "g1".to_string(), "x".to_string()];
        let g = held_by(gate(Subject::AccountIdentity { account_group_ids: &groups }, &policies));
        assert_eq!(g.policy_id, None);
        assert_eq!(g.approver_group_ids, vec!["g1", "g2"]);
        assert_eq!(gate(Subject::AccountIdentity { account_group_ids: &["x".to_string()] }, &policies), Gate::Apply);
    }

    #[test]
    fn role_member_groups_are_protected_only_when_a_role_policy_exists() {
        let subject = Subject::GroupMembership { group_id: "admins", is_role_member_group: true, assigned_to: &[] };
        assert_eq!(gate(subject, &[policy("apps", ProfileType::App, &["g1"])]), Gate::Apply);
        let policies = [policy("rbac", ProfileType::Role, &["sec"])];
        assert_eq!(held_by(gate(subject, &policies)).policy_id.as_deref(), Some("rbac"));
        assert_eq!(held_by(gate(Subject::Rbac, &policies)).policy_id.as_deref(), Some("rbac"));
    }

    #[test]
    fn r18_a_group_a_protected_object_is_assigned_to_is_held_under_that_policy() {
        let mut scripts = policy("scripts", ProfileType::Script, &["g-scripts"]);
        scripts.completion = Completion::Automatic;
        scripts.required_approvals = 2;
        let policies = [policy("apps", ProfileType::App, &["g-apps"]), scripts];
        let subject = Subject::GroupMembership {
            group_id: "G",
            is_role_member_group: false,
            assigned_to: &[ProfileType::Script],
        };
        let g = held_by(gate(subject, &policies));
        assert_eq!(g.policy_id.as_deref(), Some("scripts"), "the scripts policy's approvers decide at decision time");
        assert_eq!(g.profile_type, ProfileType::Script);
        assert_eq!((g.required_approvals, g.completion), (2, Completion::Automatic), "exactly as a script change");
        let unprotected = [ProfileType::CompliancePolicy, ProfileType::ConfigurationPolicy];
        let subject =
            Subject::GroupMembership { group_id: "G", is_role_member_group: false, assigned_to: &unprotected };
        assert_eq!(gate(subject, &policies), Gate::Apply, "no policy protects what G's members receive");
    }

    #[test]
    fn r18_a_policy_may_opt_out_of_protecting_its_assigned_groups() {
        let mut scripts = policy("scripts", ProfileType::Script, &["g-scripts"]);
        scripts.protect_assigned_groups = false;
        let assigned = [ProfileType::Script, ProfileType::App];
        let subject = Subject::GroupMembership { group_id: "G", is_role_member_group: false, assigned_to: &assigned };
        assert_eq!(gate(subject, &[scripts.clone()]), Gate::Apply);
        let policies = [scripts, policy("apps", ProfileType::App, &["g-apps"])];
        assert_eq!(held_by(gate(subject, &policies)).policy_id.as_deref(), Some("apps"), "the other still protects G");
        assert!(
            matches!(gate(Subject::Protectable(ProfileType::Script), &policies), Gate::Hold(_)),
            "opting out is about the groups only: scripts themselves stay protected"
        );
    }

    #[test]
    fn r18_a_group_several_policies_govern_is_decided_by_all_of_them() {
        let mut apps = policy("apps", ProfileType::App, &["g-apps", "shared"]);
        apps.required_approvals = 3;
        let policies = [apps, policy("scripts", ProfileType::Script, &["shared", "g-scripts"])];
        let assigned = [ProfileType::App, ProfileType::Script];
        let subject = Subject::GroupMembership { group_id: "G", is_role_member_group: false, assigned_to: &assigned };
        let g = held_by(gate(subject, &policies));
        assert_eq!(g.policy_id, None, "fixed at submission");
        assert_eq!(g.approver_group_ids, vec!["g-apps", "g-scripts", "shared"]);
        assert_eq!(g.required_approvals, 3, "the strictest quorum");
        assert_eq!((g.profile_type, g.completion), (ProfileType::Script, Completion::Requester));
    }

    #[test]
    fn r18_a_role_member_group_that_is_also_assigned_is_decided_by_both_and_stays_a_role_change() {
        let mut rbac = policy("rbac", ProfileType::Role, &["sec"]);
        // The switch is R18's: it never lifts the protection of a role's member groups.
        rbac.protect_assigned_groups = false;
        let policies = [policy("apps", ProfileType::App, &["g-apps"]), rbac];
        let assigned = [ProfileType::App];
        let subject = Subject::GroupMembership { group_id: "G", is_role_member_group: true, assigned_to: &assigned };
        let g = held_by(gate(subject, &policies));
        assert_eq!((g.approver_group_ids, g.profile_type), (vec!["g-apps".into(), "sec".into()], ProfileType::Role));
        let subject = Subject::GroupMembership { group_id: "G", is_role_member_group: true, assigned_to: &[] };
        assert_eq!(held_by(gate(subject, &policies)).policy_id.as_deref(), Some("rbac"));
    }

    #[test]
    fn r9_comes_before_r18_for_an_approver_group_that_is_also_assigned() {
        let policies = [policy("apps", ProfileType::App, &["g1"]), policy("scripts", ProfileType::Script, &["g2"])];
        let assigned = [ProfileType::Script];
        let subject = Subject::GroupMembership { group_id: "g1", is_role_member_group: true, assigned_to: &assigned };
        let g = held_by(gate(subject, &policies));
        assert_eq!((g.profile_type, g.approver_group_ids), (ProfileType::OperationApprovalPolicy, vec!["g1".into()]));
        let mut with_oap = policies.to_vec();
        with_oap.push(policy("oap", ProfileType::OperationApprovalPolicy, &["sec"]));
        assert_eq!(held_by(gate(subject, &with_oap)).policy_id.as_deref(), Some("oap"));
    }

    /// Every combination of policies, opt-outs, role membership and assigned profile types
    /// against the rule as DESIGN R18 states it.
    #[test]
    fn r18_membership_governance_over_every_combination() {
        let types = [
            ProfileType::App,
            ProfileType::Script,
            ProfileType::CompliancePolicy,
            ProfileType::ConfigurationPolicy,
            ProfileType::Role,
        ];
        let has = |mask: u32, i: usize| mask & (1 << i) != 0;
        for present in 0..1u32 << types.len() {
            for protecting in 0..1u32 << types.len() {
                let policies: Vec<AccessPolicy> = (0..types.len())
                    .filter(|&i| has(present, i))
                    .map(|i| AccessPolicy {
                        required_approvals: i as i64 + 1,
                        protect_assigned_groups: has(protecting, i),
                        step_up: crate::step_up::StepUp::None,
                        ..policy(types[i].as_str(), types[i], &[&format!("g-{}", types[i])])
                    })
                    .collect();
                for role_member in [false, true] {
                    for assigned_mask in 0..1u32 << 4 {
                        let assigned: Vec<ProfileType> =
                            (0..4).filter(|&i| has(assigned_mask, i)).map(|i| types[i]).collect();
                        let expected: Vec<&AccessPolicy> = policies
                            .iter()
                            .filter(|p| {
                                (role_member && p.profile_type == ProfileType::Role)
                                    || (p.protect_assigned_groups && assigned.contains(&p.profile_type))
                            })
                            .collect();
                        let subject = Subject::GroupMembership {
                            group_id: "G",
                            is_role_member_group: role_member,
                            assigned_to: &assigned,
                        };
                        let decided = gate(subject, &policies);
                        let case = format!("policies {present:05b}, protecting {protecting:05b}, role member {role_member}, assigned {assigned:?}");
                        match expected.as_slice() {
                            [] => assert_eq!(decided, Gate::Apply, "{case}"),
                            [only] => assert_eq!(decided, Gate::Hold(governed_by(only)), "{case}"),
                            several => {
                                let g = held_by(decided);
                                let mut groups: Vec<String> =
                                    several.iter().map(|p| p.approver_group_ids[0].clone()).collect();
                                groups.sort();
                                assert_eq!(g.approver_group_ids, groups, "{case}");
                                assert_eq!(g.policy_id, None, "{case}");
                                let strictest = several.iter().map(|p| p.required_approvals).max();
                                assert_eq!(Some(g.required_approvals), strictest, "{case}");
                                assert_eq!(
                                    Some(g.profile_type),
                                    several.iter().map(|p| p.profile_type).max(),
                                    "{case}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
