//! **R16 Independent people.** Countersign sees accounts, not people, so it tracks who
//! *controls* which account from the provenance of its live credentials: account X controls
//! account Y while a credential of Y that X set (a password), created (an API token) or that was
//! made through a credential X controls (a session opened with it, a token or password made in
//! such a session) is live. Control is transitive. An approval counts only if the approver's
//! control set is disjoint from the requester's and from those of the approvals already counted.

use crate::DomainError;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

crate::named_enum! {
    /// The kind of a live credential through which one account controls another.
    pub enum CredentialKind: "credential kind" {
        Password = "password",
        Token = "token",
        Session = "session",
        /// A passkey another account registered (issue 17).
        Passkey = "passkey",
        /// A single sign-on identity linked to the account (issue 17) through a session another
        /// account controlled.
        SsoIdentity = "ssoIdentity",
        /// Control recorded with a request when it was submitted, or with an approval when it
        /// was given: it still counts after the credential behind it is gone (a token revoked,
        /// a session ended), so control cannot be shed between submission and decision.
        Submitted = "submitted",
        Approved = "approved",
    }
}

/// `controller` controls `account` through one of `account`'s live credentials (ids).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ControlEdge {
    pub account: String,
    pub controller: String,
    pub via: CredentialKind,
}

/// Who may set up a new credential for `owner`, acting as `actor` (None: the system, at first
/// start or from the server's own command line) through a credential controlled by
/// `actor_credential_controllers`: the accounts that will control the new credential. Acting on
/// one's own account passes on only the control already on the credential used, so a password
/// changed in a session opened with a password someone else set stays theirs.
pub fn controllers_of_new_credential(
    owner: &str,
    actor: Option<&str>,
    actor_credential_controllers: &[String],
) -> Vec<String> {
    let mut controllers: BTreeSet<String> = actor_credential_controllers.iter().cloned().collect();
    if let Some(actor) = actor {
        controllers.insert(actor.to_owned());
    }
    controllers.remove(owner);
    controllers.into_iter().collect()
}

/// R16: a password set for an account by another account is temporary: it must be replaced at
/// first sign-in, and until then the account cannot approve.
pub fn password_is_temporary(owner: &str, actor: Option<&str>) -> bool {
    actor.is_some_and(|actor| actor != owner)
}

/// The control relation among the accounts a decision involves: every live credential's
/// edges, read transitively from those accounts, and the usernames for messages.
#[derive(Debug, Clone, Default)]
pub struct ControlGraph {
    /// For each account, who controls it directly, and how.
    controllers: BTreeMap<String, Vec<ControlEdge>>,
    usernames: BTreeMap<String, String>,
}

/// How the control sets of two accounts meet: the account they share, and for each side the
/// chain of edges from it up to that account (empty when it is the shared account itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlLink {
    pub shared: String,
    pub from_first: Vec<ControlEdge>,
    pub from_second: Vec<ControlEdge>,
}

impl ControlGraph {
    pub fn new(edges: impl IntoIterator<Item = ControlEdge>, usernames: BTreeMap<String, String>) -> Self {
        let mut controllers: BTreeMap<String, Vec<ControlEdge>> = BTreeMap::new();
        for edge in edges {
            let of = controllers.entry(edge.account.clone()).or_default();
            if !of.contains(&edge) {
                of.push(edge);
            }
        }
        ControlGraph { controllers, usernames }
    }

    /// Everyone in `account_id`'s control set but itself: what a request or an approval records.
    pub fn controllers_of(&self, account_id: &str) -> Vec<String> {
        self.control_set(account_id).into_keys().filter(|id| id != account_id).collect()
    }

    /// The username of `id` for messages (the id itself if it was not read).
    pub fn username<'a>(&'a self, id: &'a str) -> &'a str {
        self.usernames.get(id).map_or(id, String::as_str)
    }

    /// Who controls `account_id` directly, and how.
    pub fn direct_controllers(&self, account_id: &str) -> &[ControlEdge] {
        self.controllers.get(account_id).map(Vec::as_slice).unwrap_or_default()
    }

    /// `account_id`'s control set: itself and every account that controls it, each with the
    /// shortest chain of edges that leads there.
    pub fn control_set(&self, account_id: &str) -> BTreeMap<String, Vec<ControlEdge>> {
        let mut reached: BTreeMap<String, Vec<ControlEdge>> = BTreeMap::new();
        reached.insert(account_id.to_owned(), vec![]);
        let mut queue = VecDeque::from([account_id.to_owned()]);
        while let Some(current) = queue.pop_front() {
            let path = reached.get(&current).cloned().unwrap_or_default();
            for edge in self.direct_controllers(&current) {
                if !reached.contains_key(&edge.controller) {
                    let mut longer = path.clone();
                    longer.push(edge.clone());
                    reached.insert(edge.controller.clone(), longer);
                    queue.push_back(edge.controller.clone());
                }
            }
        }
        reached
    }

    /// How the control sets of `first` and `second` meet, if they do.
    pub fn link(&self, first: &str, second: &str) -> Option<ControlLink> {
        let of_first = self.control_set(first);
        let of_second = self.control_set(second);
        of_first
            .iter()
            .filter_map(|(id, path)| of_second.get(id).map(|other| (id, path, other)))
            .min_by_key(|(_, path, other)| path.len() + other.len())
            .map(|(id, path, other)| ControlLink {
                shared: id.clone(),
                from_first: path.clone(),
                from_second: other.clone(),
            })
    }

    /// A link in words: each step of both chains ("bob's password was set by mallory").
    pub fn describe(&self, link: &ControlLink) -> String {
        let steps: Vec<String> =
            link.from_first.iter().chain(&link.from_second).map(|edge| self.describe_edge(edge)).collect();
        if steps.is_empty() {
            format!("{} is the same account", self.username(&link.shared))
        } else {
            steps.join("; ")
        }
    }

    pub fn describe_edge(&self, edge: &ControlEdge) -> String {
        let (account, controller) = (self.username(&edge.account), self.username(&edge.controller));
        match edge.via {
            CredentialKind::Password => format!("{account}'s password was set by {controller}"),
            CredentialKind::Token => format!("an API token of {account}'s was made by {controller}"),
            CredentialKind::Passkey => format!("a passkey of {account}'s was registered by {controller}"),
            CredentialKind::Session => {
                format!("a session of {account}'s was opened with a password or passkey {controller} set")
            }
            CredentialKind::SsoIdentity => {
                format!("a single sign-on identity of {account}'s was linked in a session {controller} controlled")
            }
            CredentialKind::Submitted => format!("{controller} controlled {account} when {account} submitted it"),
            CredentialKind::Approved => format!("{controller} controlled {account} when {account} approved it"),
        }
    }

    /// **R16**: `approver` may be counted only if its control set is disjoint from the
    /// requester's and from those of the approvers already counted; otherwise `not_independent`,
    /// naming the link.
    pub fn ensure_independent(&self, approver: &str, requester: &str, counted: &[&str]) -> Result<(), DomainError> {
        if let Some(link) = self.link(approver, requester) {
            return Err(DomainError::NotIndependent(format!(
                "{} is not independent of the requester {}: {}",
                self.username(approver),
                self.username(requester),
                self.describe(&link)
            )));
        }
        for other in counted {
            if let Some(link) = self.link(approver, other) {
                return Err(DomainError::NotIndependent(format!(
                    "{} is not independent of {}, whose approval is already counted: {}",
                    self.username(approver),
                    self.username(other),
                    self.describe(&link)
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(account: &str, controller: &str, via: CredentialKind) -> ControlEdge {
        ControlEdge { account: account.into(), controller: controller.into(), via }
    }

    fn graph(edges: &[ControlEdge]) -> ControlGraph {
        ControlGraph::new(edges.iter().cloned(), BTreeMap::new())
    }

    #[test]
    fn an_account_whose_password_another_set_is_theirs() {
        let graph = graph(&[edge("alice", "mallory", CredentialKind::Password)]);
        let refused = graph.ensure_independent("mallory", "alice", &[]).unwrap_err();
        assert_eq!(refused.code().as_str(), "not_independent");
        assert_eq!(
            refused.to_string(),
            "mallory is not independent of the requester alice: alice's password was set by mallory"
        );
        assert!(graph.ensure_independent("bob", "alice", &[]).is_ok());
        assert!(graph.ensure_independent("alice", "mallory", &[]).is_err(), "control cuts both ways");
    }

    #[test]
    fn control_is_transitive_and_the_link_names_every_step() {
        let graph =
            graph(&[edge("svc", "mallory", CredentialKind::Token), edge("puppet", "svc", CredentialKind::Password)]);
        let set = graph.control_set("puppet");
        assert_eq!(set.keys().cloned().collect::<Vec<_>>(), ["mallory", "puppet", "svc"]);
        let link = graph.link("mallory", "puppet").unwrap();
        assert_eq!(link.shared, "mallory");
        assert_eq!(
            graph.describe(&link),
            "puppet's password was set by svc; an API token of svc's was made by mallory"
        );
    }

    #[test]
    fn two_accounts_controlled_by_a_third_are_not_independent_of_each_other() {
        let graph =
            graph(&[edge("a", "mallory", CredentialKind::Password), edge("b", "mallory", CredentialKind::Session)]);
        assert_eq!(graph.link("a", "b").unwrap().shared, "mallory");
        assert!(graph.ensure_independent("carol", "x", &["a"]).is_ok());
        let refused = graph.ensure_independent("b", "x", &["a"]).unwrap_err();
        assert!(refused.to_string().contains("whose approval is already counted"), "{refused}");
    }

    #[test]
    fn an_account_is_never_independent_of_itself() {
        let graph = graph(&[]);
        let link = graph.link("alice", "alice").unwrap();
        assert_eq!(graph.describe(&link), "alice is the same account");
    }

    #[test]
    fn control_recorded_at_submission_outlives_the_credential_behind_it() {
        // svc's only token, made by mallory, is revoked after svc submitted: no live edge left.
        let now = graph(&[]);
        assert!(now.ensure_independent("mallory", "svc", &[]).is_ok());
        let recorded = graph(&[edge("svc", "mallory", CredentialKind::Submitted)]);
        let refused = recorded.ensure_independent("mallory", "svc", &[]).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "mallory is not independent of the requester svc: mallory controlled svc when svc submitted it"
        );
        let before = graph(&[edge("svc", "mallory", CredentialKind::Token)]);
        assert_eq!(before.controllers_of("svc"), ["mallory"]);
    }

    #[test]
    fn cycles_end() {
        let graph = graph(&[edge("a", "b", CredentialKind::Password), edge("b", "a", CredentialKind::Password)]);
        assert_eq!(graph.control_set("a").len(), 2);
        assert!(graph.link("a", "c").is_none());
    }

    #[test]
    fn a_new_credential_carries_the_control_of_the_one_it_was_made_with() {
        // The system vouches for nobody: a seeded password is controlled by no account.
        assert!(controllers_of_new_credential("alice", None, &[]).is_empty());
        // Setting another account's password makes it yours, and passes on who controls you.
        assert_eq!(controllers_of_new_credential("alice", Some("mallory"), &["eve".into()]), ["eve", "mallory"]);
        // Changing your own password in a session someone else controls keeps it theirs.
        assert_eq!(controllers_of_new_credential("alice", Some("alice"), &["mallory".into()]), ["mallory"]);
        // ...and in a session nobody else controls, the password is yours alone.
        assert!(controllers_of_new_credential("alice", Some("alice"), &[]).is_empty());
        assert!(password_is_temporary("alice", Some("mallory")));
        assert!(!password_is_temporary("alice", Some("alice")));
        assert!(!password_is_temporary("alice", None));
    }
}
