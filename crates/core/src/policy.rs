//! Access policies: which profile type is protected and who may approve (DESIGN §1, R7, R8, R11).

use crate::profile::ProfileType;
use crate::{DomainError, Millis, MILLIS_PER_DAY};
use serde::{Deserialize, Serialize};

/// R11: requests expire after 30 days without action unless a policy says otherwise.
pub const DEFAULT_REQUEST_TTL: Millis = 30 * MILLIS_PER_DAY;
/// The longest lifetime a policy may give its requests.
pub const MAX_REQUEST_TTL: Millis = 365 * MILLIS_PER_DAY;
/// The shortest: long enough for a human to notice.
pub const MIN_REQUEST_TTL: Millis = 60 * 1000;
pub const MAX_REQUIRED_APPROVALS: i64 = 10;

crate::named_enum! {
    /// R8: who applies an approved change.
    #[derive(Default)]
    pub enum Completion: "completion" {
        /// The requester completes the approved request, when it suits them (Intune's behaviour).
        #[default]
        Requester = "requester",
        /// The approving decision applies the change at once.
        Automatic = "automatic",
    }
}

impl Completion {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        s.parse()
            .map_err(|_| DomainError::Validation(format!("completion must be 'requester' or 'automatic', not '{s}'")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessPolicy {
    pub id: String,
    pub display_name: String,
    pub description: String,
    pub profile_type: ProfileType,
    pub approver_group_ids: Vec<String>,
    pub required_approvals: i64,
    pub completion: Completion,
    pub request_ttl_ms: Millis,
    /// R18: membership of a group that an object of this profile type is assigned to decides
    /// who the object reaches, so a change to it is held under this policy unless this is false.
    #[serde(default = "protects_assigned_groups_by_default")]
    pub protect_assigned_groups: bool,
    /// R21: what each decision under this policy must carry.
    #[serde(default = "crate::step_up::StepUp::before_r21")]
    pub step_up: crate::step_up::StepUp,
}

/// R18 holds by default: a policy that says nothing protects its objects' assigned groups.
pub const fn protects_assigned_groups_by_default() -> bool {
    true
}

impl AccessPolicy {
    /// Checks the shape of a policy (not who could approve it: that is R14, in `eligibility`).
    pub fn validate(&self) -> Result<(), DomainError> {
        crate::validate::display_name("displayName", &self.display_name)?;
        if self.approver_group_ids.is_empty() {
            return Err(DomainError::Validation("approverGroupIds must name at least one group".into()));
        }
        if !(1..=MAX_REQUIRED_APPROVALS).contains(&self.required_approvals) {
            return Err(DomainError::Validation(format!(
                "requiredApprovals must be between 1 and {MAX_REQUIRED_APPROVALS}"
            )));
        }
        if !(MIN_REQUEST_TTL..=MAX_REQUEST_TTL).contains(&self.request_ttl_ms) {
            return Err(DomainError::Validation(
                "requestTtl must be between one minute (PT1M) and 365 days (P365D)".into(),
            ));
        }
        Ok(())
    }
}

/// Parses the ISO 8601 durations a policy's `requestTtl` uses: `P30D`, `PT12H`, `P1DT6H30M`,
/// `PT90S`. Years and months are refused because their length is not fixed.
pub fn parse_duration(text: &str) -> Result<Millis, DomainError> {
    let bad = || DomainError::Validation(format!("'{text}' is not an ISO 8601 duration such as P30D or PT12H"));
    let rest = text.strip_prefix('P').ok_or_else(bad)?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return Err(bad()),
        None => (rest, None),
    };
    let mut total: Millis = 0;
    let mut any = false;
    let mut add = |part: &str, units: &[(char, Millis)]| -> Result<(), DomainError> {
        let mut number = String::new();
        let mut unit_index = 0;
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let position = units[unit_index..].iter().position(|(u, _)| *u == c).ok_or_else(bad)?;
            let (_, scale) = units[unit_index + position];
            unit_index += position + 1;
            let value: Millis = number.parse().map_err(|_| bad())?;
            total = value.checked_mul(scale).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
            number.clear();
            any = true;
        }
        if number.is_empty() {
            Ok(())
        } else {
            Err(bad())
        }
    };
    add(date, &[('W', 7 * MILLIS_PER_DAY), ('D', MILLIS_PER_DAY)])?;
    if let Some(time) = time {
        add(time, &[('H', 3_600_000), ('M', 60_000), ('S', 1000)])?;
    }
    if any {
        Ok(total)
    } else {
        Err(bad())
    }
}

/// Formats milliseconds the way `parse_duration` reads them: `P30D`, `PT12H`, `P1DT6H`.
pub fn format_duration(ms: Millis) -> String {
    let days = ms / MILLIS_PER_DAY;
    let mut rest = ms % MILLIS_PER_DAY;
    let hours = rest / 3_600_000;
    rest %= 3_600_000;
    let minutes = rest / 60_000;
    let seconds = (rest % 60_000) / 1000;
    let mut out = String::from("P");
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if hours > 0 || minutes > 0 || seconds > 0 {
        out.push('T');
        for (value, unit) in [(hours, 'H'), (minutes, 'M'), (seconds, 'S')] {
            if value > 0 {
                out.push_str(&format!("{value}{unit}"));
            }
        }
    }
    if out == "P" {
        out.push_str("T0S");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> AccessPolicy {
        AccessPolicy {
            id: "p".into(),
            display_name: "Apps".into(),
            description: String::new(),
            profile_type: ProfileType::App,
            approver_group_ids: vec!["g".into()],
            required_approvals: 1,
            completion: Completion::Requester,
            request_ttl_ms: DEFAULT_REQUEST_TTL,
            protect_assigned_groups: true,
            step_up: crate::step_up::StepUp::None,
        }
    }

    #[test]
    fn durations_parse_and_format() {
        assert_eq!(parse_duration("P30D").unwrap(), 30 * MILLIS_PER_DAY);
        assert_eq!(parse_duration("PT12H").unwrap(), 12 * 3_600_000);
        assert_eq!(parse_duration("P1DT6H30M").unwrap(), MILLIS_PER_DAY + 6 * 3_600_000 + 30 * 60_000);
        assert_eq!(parse_duration("P2W").unwrap(), 14 * MILLIS_PER_DAY);
        for bad in ["", "P", "PT", "30D", "P1Y", "P1M", "PT1D", "P1H", "PD", "P99999999999999999D"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for ms in [DEFAULT_REQUEST_TTL, 3_600_000, MILLIS_PER_DAY + 90_000] {
            assert_eq!(parse_duration(&format_duration(ms)).unwrap(), ms);
        }
    }

    #[test]
    fn policy_shape_is_validated() {
        assert!(policy().validate().is_ok());
        let mut p = policy();
        p.approver_group_ids.clear();
        assert!(p.validate().is_err());
        let mut p = policy();
        p.required_approvals = 0;
        assert!(p.validate().is_err());
        let mut p = policy();
        p.request_ttl_ms = 1000;
        assert!(p.validate().is_err());
        assert!(Completion::parse("whenever").is_err());
    }
}
