//! Rules over the set of access policies rather than one policy: at most one per profile type,
//! so that exactly one policy's approvers govern each kind of change.

use crate::policy::AccessPolicy;
use crate::DomainError;

/// Refuses `proposed` when another policy already covers its profile type. `proposed.id` is
/// that of the policy being changed, or empty for a new one.
pub fn ensure_one_per_profile_type(existing: &[AccessPolicy], proposed: &AccessPolicy) -> Result<(), DomainError> {
    match existing.iter().find(|p| p.profile_type == proposed.profile_type && p.id != proposed.id) {
        Some(_) => Err(DomainError::ProfileTypeTaken(proposed.profile_type)),
        None => Ok(()),
    }
}

/// A policy keeps its profile type: moving it would leave one type unprotected and could give
/// another two policies.
pub fn ensure_same_profile_type(before: &AccessPolicy, after: &AccessPolicy) -> Result<(), DomainError> {
    if before.profile_type == after.profile_type {
        Ok(())
    } else {
        Err(DomainError::Validation("a policy's profileType cannot change; create a new policy instead".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Completion, DEFAULT_REQUEST_TTL};
    use crate::profile::ProfileType;

    fn policy(id: &str, profile_type: ProfileType) -> AccessPolicy {
        AccessPolicy {
            id: id.into(),
            display_name: format!("policy {id}"),
            description: String::new(),
            profile_type,
            approver_group_ids: vec!["g".into()],
            required_approvals: 1,
            completion: Completion::Requester,
            request_ttl_ms: DEFAULT_REQUEST_TTL,
            protect_assigned_groups: true,
            step_up: crate::step_up::StepUp::None,
        }
    }

    #[test]
    fn a_second_policy_for_a_profile_type_is_refused() {
        let existing = [policy("p1", ProfileType::App)];
        let refused = ensure_one_per_profile_type(&existing, &policy("", ProfileType::App));
        assert_eq!(refused, Err(DomainError::ProfileTypeTaken(ProfileType::App)));
        assert_eq!(refused.unwrap_err().code(), "conflict");
        assert_eq!(ensure_one_per_profile_type(&existing, &policy("", ProfileType::Script)), Ok(()));
        assert_eq!(ensure_one_per_profile_type(&existing, &policy("p1", ProfileType::App)), Ok(()), "itself");
    }

    #[test]
    fn a_policy_keeps_its_profile_type() {
        let before = policy("p1", ProfileType::App);
        assert_eq!(ensure_same_profile_type(&before, &policy("p1", ProfileType::App)), Ok(()));
        assert!(ensure_same_profile_type(&before, &policy("p1", ProfileType::Script)).is_err());
    }
}
