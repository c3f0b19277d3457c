//! Countersign's names ↔ Microsoft Graph's (beta) names, and the part of OData's `$filter` that
//! automation uses on approval requests: `status eq '…'` joined by `or`.

use countersign_core::profile::{ProfileType, ResourceType};
use countersign_core::request::RequestStatus;

/// Graph's `operationApprovalPolicyType` for a profile type. DESIGN §2 named the profile types
/// after Graph's members, so the mapping is one to one.
pub fn policy_type(profile_type: ProfileType) -> &'static str {
    match profile_type {
        ProfileType::App => "app",
        ProfileType::Script => "script",
        ProfileType::CompliancePolicy => "compliancePolicy",
        ProfileType::ConfigurationPolicy => "configurationPolicy",
        ProfileType::DeviceWipe => "deviceWipe",
        ProfileType::DeviceRetire => "deviceRetire",
        ProfileType::DeviceDelete => "deviceDelete",
        ProfileType::Role => "role",
        ProfileType::OperationApprovalPolicy => "operationApprovalPolicy",
        ProfileType::TenantConfiguration => "tenantConfiguration",
    }
}

/// Members of Graph's `operationApprovalPolicyType` that Countersign has no profile type for.
pub const UNSUPPORTED_POLICY_TYPES: [&str; 15] = [
    "unknown",
    "deviceAction",
    "deviceRetireNonCompliant",
    "deviceLock",
    "deviceErase",
    "deviceDisableActivationLock",
    "windowsEnrollment",
    "appProtectionPolicy",
    "policySet",
    "filter",
    "endpointSecurityPolicy",
    "deviceResetPasscode",
    "customOrganizationalMessage",
    "unknownFutureValue",
    "deviceDeprovision",
];

/// The profile type for a Graph `operationApprovalPolicyType`, or why there is none.
pub fn profile_type_of(graph: &str) -> Result<ProfileType, String> {
    if let Some(p) = ProfileType::ALL.into_iter().find(|p| policy_type(*p) == graph) {
        return Ok(p);
    }
    if UNSUPPORTED_POLICY_TYPES.contains(&graph) {
        Err(format!("the policy type '{graph}' is not supported by Countersign"))
    } else {
        Err(format!("'{graph}' is not an operationApprovalPolicyType"))
    }
}

/// Countersign's profile types do not depend on the device platform: every policy is
/// Graph's `notApplicable` platform.
pub const POLICY_PLATFORM: &str = "notApplicable";

/// Members of Graph's `operationApprovalPolicyPlatform`.
pub const POLICY_PLATFORMS: [&str; 9] = [
    "notApplicable",
    "androidDeviceAdministrator",
    "androidEnterprise",
    "iOSiPadOS",
    "macOS",
    "windows10AndLater",
    "windows81AndLater",
    "windows10X",
    "unknownFutureValue",
];

/// Checks a Graph `policyPlatform` (a flags enum: comma-separated members).
pub fn check_platform(graph: &str) -> Result<(), String> {
    for member in graph.split(',').map(str::trim) {
        if !POLICY_PLATFORMS.contains(&member) {
            return Err(format!("'{member}' is not an operationApprovalPolicyPlatform"));
        }
        if member != POLICY_PLATFORM {
            return Err(format!("Countersign's policies apply to every platform; policyPlatform must be '{POLICY_PLATFORM}', not '{member}'"));
        }
    }
    Ok(())
}

/// Graph's `operationApprovalRequestStatus` for a status. Graph has no `failed`: its
/// `completed` "does not indicate success or failure".
pub fn graph_status(status: RequestStatus) -> &'static str {
    match status {
        RequestStatus::NeedsApproval => "needsApproval",
        RequestStatus::Approved => "approved",
        RequestStatus::Rejected => "rejected",
        RequestStatus::Cancelled => "cancelled",
        RequestStatus::Completed | RequestStatus::Failed => "completed",
        RequestStatus::Expired => "expired",
    }
}

/// Members of Graph's `operationApprovalRequestStatus`.
pub const GRAPH_STATUSES: [&str; 8] =
    ["unknown", "needsApproval", "approved", "rejected", "cancelled", "completed", "expired", "unknownFutureValue"];

/// The statuses that show as a Graph status (`completed` is also our `failed`; `unknown` and
/// `unknownFutureValue` match nothing).
pub fn statuses_of(graph: &str) -> Result<Vec<RequestStatus>, String> {
    if !GRAPH_STATUSES.contains(&graph) {
        return Err(format!("'{graph}' is not an operationApprovalRequestStatus"));
    }
    Ok(RequestStatus::ALL.into_iter().filter(|s| graph_status(*s) == graph).collect())
}

/// Graph's `operationApprovalSource` members (the `approvalSource` of a decision).
pub const APPROVAL_SOURCES: [&str; 4] = ["unknown", "adminConsole", "email", "unknownFutureValue"];

/// The resource type for an `entityType` of `retrieveRequestStatus`: Countersign's own names,
/// or the name of the matching Graph entity.
pub fn resource_type_of_entity(entity_type: &str) -> Result<ResourceType, String> {
    if let Ok(t) = entity_type.parse::<ResourceType>() {
        return Ok(t);
    }
    Ok(match entity_type {
        "mobileApp" => ResourceType::App,
        "deviceManagementScript" | "deviceShellScript" => ResourceType::Script,
        "deviceCompliancePolicy" => ResourceType::CompliancePolicy,
        "deviceManagementConfigurationPolicy" | "deviceConfiguration" => ResourceType::ConfigurationPolicy,
        "managedDevice" => ResourceType::Device,
        "roleDefinition" | "deviceAndAppManagementRoleDefinition" => ResourceType::Role,
        "deviceAndAppManagementRoleAssignment" => ResourceType::RoleAssignment,
        "user" => ResourceType::Account,
        "operationApprovalPolicy" => ResourceType::AccessPolicy,
        _ => return Err(format!("'{entity_type}' is not an entity type that approval requests are made for")),
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Open,
    Close,
}

fn tokens(input: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Token::Open);
            }
            ')' => {
                chars.next();
                out.push(Token::Close);
            }
            '\'' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            text.push('\'');
                        }
                        Some('\'') => break,
                        Some(c) => text.push(c),
                        None => return Err("a string literal is not closed".into()),
                    }
                }
                out.push(Token::Text(text));
            }
            c if c.is_alphanumeric() || c == '_' || c == '/' || c == '.' => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_alphanumeric() || c == '_' || c == '/' || c == '.' {
                        word.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Token::Word(word));
            }
            other => return Err(format!("unexpected character '{other}'")),
        }
    }
    Ok(out)
}

/// How deep parentheses may nest in a `$filter`: the parser recurses once per level, and a
/// filter long enough would otherwise overflow the stack of the worker serving it.
const MAX_FILTER_NESTING: usize = 32;

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    /// Parentheses open around the clause being read.
    depth: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn expr(&mut self) -> Result<Vec<RequestStatus>, String> {
        let mut statuses = self.term()?;
        loop {
            match self.peek() {
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("or") => {
                    self.next();
                    statuses.extend(self.term()?);
                }
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("and") => {
                    return Err("only 'or' can join clauses here (status eq '…' or status eq '…')".into())
                }
                _ => return Ok(statuses),
            }
        }
    }

    fn term(&mut self) -> Result<Vec<RequestStatus>, String> {
        match self.next() {
            Some(Token::Open) => {
                if self.depth == MAX_FILTER_NESTING {
                    return Err(format!("parentheses are nested more than {MAX_FILTER_NESTING} deep"));
                }
                self.depth += 1;
                let inner = self.expr()?;
                self.depth -= 1;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err("a '(' is not closed".into()),
                }
            }
            Some(Token::Word(field)) if field == "status" => {
                match self.next() {
                    Some(Token::Word(op)) if op.eq_ignore_ascii_case("eq") => {}
                    Some(Token::Word(op)) => return Err(format!("the operator '{op}' is not supported; use eq")),
                    _ => return Err("expected eq after status".into()),
                }
                match self.next() {
                    Some(Token::Text(value)) => statuses_of(&value),
                    _ => Err("expected a quoted status after 'status eq'".into()),
                }
            }
            Some(Token::Word(field)) => Err(format!("filtering on '{field}' is not supported; filter on status")),
            Some(Token::Text(_)) | Some(Token::Close) | None => {
                Err("expected a clause such as status eq 'needsApproval'".into())
            }
        }
    }
}

/// Parses a `$filter` on approval requests into the statuses it selects (deduplicated).
pub fn parse_status_filter(input: &str) -> Result<Vec<RequestStatus>, String> {
    let mut parser = Parser { tokens: tokens(input)?, at: 0, depth: 0 };
    let statuses = parser.expr()?;
    if parser.at < parser.tokens.len() {
        return Err("unexpected text after the filter".into());
    }
    let mut unique = Vec::new();
    for s in statuses {
        if !unique.contains(&s) {
            unique.push(s);
        }
    }
    Ok(unique)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_type_maps_to_a_graph_policy_type_and_back() {
        for p in ProfileType::ALL {
            assert_eq!(profile_type_of(policy_type(p)), Ok(p));
        }
        let names: Vec<_> = ProfileType::ALL.iter().map(|p| policy_type(*p)).collect();
        assert_eq!(
            names,
            [
                "app",
                "script",
                "compliancePolicy",
                "configurationPolicy",
                "deviceWipe",
                "deviceRetire",
                "deviceDelete",
                "role",
                "operationApprovalPolicy",
                "tenantConfiguration"
            ]
        );
        for graph in UNSUPPORTED_POLICY_TYPES {
            assert!(profile_type_of(graph).unwrap_err().contains("not supported"), "{graph}");
        }
        assert!(profile_type_of("App").unwrap_err().contains("not an operationApprovalPolicyType"));
    }

    #[test]
    fn every_status_maps_to_a_graph_status_and_back() {
        for s in RequestStatus::ALL {
            let graph = graph_status(s);
            assert!(GRAPH_STATUSES.contains(&graph));
            assert!(statuses_of(graph).unwrap().contains(&s), "{s:?}");
        }
        assert_eq!(graph_status(RequestStatus::Failed), "completed");
        assert_eq!(statuses_of("completed").unwrap(), [RequestStatus::Completed, RequestStatus::Failed]);
        assert_eq!(statuses_of("needsApproval").unwrap(), [RequestStatus::NeedsApproval]);
        assert_eq!(statuses_of("approved").unwrap(), [RequestStatus::Approved]);
        assert_eq!(statuses_of("rejected").unwrap(), [RequestStatus::Rejected]);
        assert_eq!(statuses_of("cancelled").unwrap(), [RequestStatus::Cancelled]);
        assert_eq!(statuses_of("expired").unwrap(), [RequestStatus::Expired]);
        assert!(statuses_of("unknown").unwrap().is_empty());
        assert!(statuses_of("unknownFutureValue").unwrap().is_empty());
        assert!(statuses_of("failed").is_err(), "failed is not a Graph status");
    }

    #[test]
    fn platforms_and_entity_types() {
        assert!(check_platform("notApplicable").is_ok());
        assert!(check_platform("windows10AndLater").unwrap_err().contains("every platform"));
        assert!(check_platform("windows").unwrap_err().contains("not an operationApprovalPolicyPlatform"));
        assert_eq!(resource_type_of_entity("app"), Ok(ResourceType::App));
        assert_eq!(resource_type_of_entity("mobileApp"), Ok(ResourceType::App));
        assert_eq!(resource_type_of_entity("managedDevice"), Ok(ResourceType::Device));
        assert!(resource_type_of_entity("widget").is_err());
    }

    #[test]
    fn status_filters_parse() {
        use RequestStatus::*;
        assert_eq!(parse_status_filter("status eq 'needsApproval'"), Ok(vec![NeedsApproval]));
        assert_eq!(
            parse_status_filter("status eq 'needsApproval' or status eq 'approved'"),
            Ok(vec![NeedsApproval, Approved])
        );
        assert_eq!(
            parse_status_filter("(status eq 'completed') OR (status eq 'expired' or status eq 'completed')"),
            Ok(vec![Completed, Failed, Expired])
        );
        assert_eq!(parse_status_filter("  status   EQ 'rejected'  "), Ok(vec![Rejected]));
    }

    #[test]
    fn status_filter_errors_say_what_is_wrong() {
        let err = |f: &str| parse_status_filter(f).unwrap_err();
        assert!(err("status eq 'bogus'").contains("not an operationApprovalRequestStatus"));
        assert!(err("status eq 'failed'").contains("not an operationApprovalRequestStatus"));
        assert!(err("status ne 'approved'").contains("'ne' is not supported"));
        assert!(err("requestor eq 'x'").contains("'requestor' is not supported"));
        assert!(err("status eq 'approved' and status eq 'rejected'").contains("only 'or'"));
        assert!(err("status eq 'approved").contains("not closed"));
        assert!(err("(status eq 'approved'").contains("'(' is not closed"));
        assert!(err("status eq approved").contains("quoted status"));
        assert!(err("status eq 'approved' status").contains("unexpected text"));
        assert!(err("").contains("expected a clause"));
        assert!(err("status eq 'approved';").contains("unexpected character"));
    }
}
