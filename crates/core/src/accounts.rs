//! What an account manager may not do: to their own account, and (R19) to an account that holds
//! more than they do.

use crate::permission::PermissionSet;
use crate::DomainError;

/// A change an account cannot make to itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfChange {
    Disable,
    Delete,
}

/// Refuses to let the caller disable or delete their own account: it would end the session that
/// asked, and could leave the tenant with no one able to undo it.
pub fn ensure_not_self(caller_id: &str, account_id: &str, change: SelfChange) -> Result<(), DomainError> {
    if caller_id != account_id {
        return Ok(());
    }
    let verb = match change {
        SelfChange::Disable => "disable",
        SelfChange::Delete => "delete",
    };
    Err(DomainError::Validation(format!("you cannot {verb} your own account")))
}

/// R19: changing another account's password, tokens or enabled state, or deleting it, needs
/// every permission that account holds. Otherwise `accounts.write` would be a way to become
/// Administrator: reset the Administrator's password, sign in as them.
pub fn ensure_no_escalation(proposer: &PermissionSet, target: &PermissionSet) -> Result<(), DomainError> {
    match target.iter().find(|p| !proposer.has(*p)) {
        Some(missing) => Err(DomainError::WouldEscalate(missing)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permission::Permission;

    #[test]
    fn r19_an_account_manager_cannot_take_over_an_account_holding_more() {
        let manager = PermissionSet::new(["accounts.read", "accounts.write"]);
        let administrator = PermissionSet::new(Permission::ALL.map(Permission::as_str));
        let refused = ensure_no_escalation(&manager, &administrator).unwrap_err();
        assert_eq!(refused.code(), "would_escalate");
        assert_eq!(ensure_no_escalation(&administrator, &manager), Ok(()), "holding more is enough");
        assert_eq!(ensure_no_escalation(&manager, &manager), Ok(()), "holding the same is enough");
        assert_eq!(ensure_no_escalation(&manager, &PermissionSet::default()), Ok(()), "an account with no role");
        let helper = PermissionSet::new(["accounts.write", "devices.wipe"]);
        assert!(ensure_no_escalation(&manager, &helper).is_err(), "one permission more is too many");
    }

    #[test]
    fn nobody_disables_or_deletes_their_own_account() {
        for change in [SelfChange::Disable, SelfChange::Delete] {
            assert!(ensure_not_self("alice", "alice", change).is_err());
            assert_eq!(ensure_not_self("alice", "bob", change), Ok(()));
        }
        assert_eq!(
            ensure_not_self("alice", "alice", SelfChange::Delete).unwrap_err().to_string(),
            "you cannot delete your own account"
        );
    }
}
