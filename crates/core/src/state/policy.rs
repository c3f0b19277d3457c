//! Access policies and notification channels: tenant configuration with rules of its own.

use crate::policy::{format_duration, parse_duration, AccessPolicy, Completion};
use crate::profile::ProfileType;
use crate::step_up::StepUp;
use crate::DomainError;
use serde::{Deserialize, Serialize};

/// An access policy as approvers see it: its request lifetime as an ISO 8601 duration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessPolicyState {
    pub display_name: String,
    pub description: String,
    pub profile_type: ProfileType,
    #[serde(with = "super::set")]
    pub approver_group_ids: Vec<String>,
    pub required_approvals: i64,
    pub completion: Completion,
    pub request_ttl: String,
    /// R18: whether membership changes of the groups this type's objects are assigned to are held.
    pub protect_assigned_groups: bool,
    /// R21: `passkey` (each decision signs the change digest with a passkey) or `none`. Not
    /// written when `none`, so the digests of states stored before R21 stay as they were.
    #[serde(default = "StepUp::before_r21", skip_serializing_if = "StepUp::is_none")]
    pub step_up: StepUp,
}

impl AccessPolicyState {
    pub fn of(policy: &AccessPolicy) -> AccessPolicyState {
        AccessPolicyState {
            display_name: policy.display_name.clone(),
            description: policy.description.clone(),
            profile_type: policy.profile_type,
            approver_group_ids: policy.approver_group_ids.clone(),
            required_approvals: policy.required_approvals,
            completion: policy.completion,
            request_ttl: format_duration(policy.request_ttl_ms),
            protect_assigned_groups: policy.protect_assigned_groups,
            step_up: policy.step_up,
        }
    }

    /// The policy this state describes, as the rules use it.
    pub fn to_policy(&self, id: &str) -> Result<AccessPolicy, DomainError> {
        Ok(AccessPolicy {
            id: id.to_owned(),
            display_name: self.display_name.clone(),
            description: self.description.clone(),
            profile_type: self.profile_type,
            approver_group_ids: self.approver_group_ids.clone(),
            required_approvals: self.required_approvals,
            completion: self.completion,
            request_ttl_ms: parse_duration(&self.request_ttl)?,
            protect_assigned_groups: self.protect_assigned_groups,
            step_up: self.step_up,
        })
    }
}

crate::named_enum! {
    /// Where a notification channel delivers.
    pub enum ChannelKind: "channel kind" {
        Webhook = "webhook",
        Slack = "slack",
        Teams = "teams",
        Email = "email",
    }
}

/// A notification channel as people may see it: its URL redacted, its secrets never.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotificationChannelState {
    pub display_name: String,
    pub kind: ChannelKind,
    pub enabled: bool,
    /// The URL's scheme and host only (the path is often the secret); none for e-mail.
    pub target: Option<String>,
    /// Whether deliveries carry an HMAC signature.
    pub signed: bool,
    /// Only in a proposed change: the URL or signing secret is replaced, which the redacted
    /// target alone might not show.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret_changed: bool,
}

/// A channel's secret part, kept apart from its state and never shown to anyone: where it
/// delivers, and the key its webhook deliveries are signed with. E-mail channels have neither.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelSecret {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub signing_secret: String,
}

impl ChannelSecret {
    /// Whether deliveries carry a signature.
    pub fn signs(&self) -> bool {
        !self.signing_secret.is_empty()
    }
}

/// Never prints the URL (its path is often a credential) or the signing key.
impl std::fmt::Debug for ChannelSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelSecret")
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("signing_secret", &if self.signs() { "<redacted>" } else { "" })
            .finish()
    }
}
