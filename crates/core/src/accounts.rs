//! What an account manager may not do to their own account.

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

#[cfg(test)]
mod tests {
    use super::*;

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
