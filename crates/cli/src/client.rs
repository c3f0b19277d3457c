//! The API client behind `countersign requests|policies|resources …`.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use reqwest::Method;
use serde_json::Value;

pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// A failure worth showing to the user as it is.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{detail} ({code}, HTTP {status})")]
    Api { status: u16, code: String, detail: String },
    #[error("cannot reach {url}: {source}")]
    Connect { url: String, source: reqwest::Error },
    #[error("{0}")]
    Usage(String),
    /// Refused here, before sending, by the rule the server would apply (issue 15).
    #[error("{detail} ({code}, refused before sending)")]
    Refused { code: String, detail: String },
}

impl From<countersign_core::DomainError> for ClientError {
    fn from(e: countersign_core::DomainError) -> Self {
        ClientError::Refused { code: e.code().to_string(), detail: e.to_string() }
    }
}

impl Client {
    pub fn new(base: &str, token: &str) -> Result<Self, ClientError> {
        if token.is_empty() {
            return Err(ClientError::Usage(
                "no API token: set COUNTERSIGN_TOKEN (create one with POST /api/v1/tokens or in My account)".into(),
            ));
        }
        Ok(Client {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http: reqwest::Client::new(),
        })
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, ClientError> {
        if let Some(body) = &body {
            countersign_core::limits::json(body).map_err(countersign_core::DomainError::from)?;
        }
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|source| ClientError::Connect { url: url.clone(), source })?;
        let status = response.status();
        let text = response.text().await.map_err(|source| ClientError::Connect { url, source })?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok(value);
        }
        Err(ClientError::Api {
            status: status.as_u16(),
            code: value["code"].as_str().unwrap_or("error").to_owned(),
            detail: value["detail"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("request failed").to_owned()),
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Value, ClientError> {
        self.call(Method::POST, path, Some(body)).await
    }
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// R12, R20: a server's text as a terminal should show it, with control characters, escape
/// sequences, line breaks and bidirectional overrides escaped (`\u{1b}`), so no field can
/// forge a line, rewrite the screen or disguise a name.
pub fn shown(text: &str) -> String {
    countersign_core::text::shown(text).into_owned()
}

/// A value's text, raw: the caller escapes it once it has cut it to size.
fn raw(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A value for the terminal (see [`shown`]).
fn cell(value: &Value) -> String {
    shown(&raw(value))
}

/// JSON for the terminal: hidden characters inside strings as `\uXXXX` (see
/// [`countersign_core::text::json_shown`]), so the output is the same JSON and shows as it reads.
pub fn json_for_terminal(json: &str) -> String {
    countersign_core::text::json_shown(json).into_owned()
}

/// R20: an account as the API names it (`{id, displayName, username}`): "Display Name (username)".
pub fn party(value: &Value) -> String {
    let name = cell(&value["displayName"]);
    match value["username"].as_str() {
        Some(_) => format!("{name} ({})", cell(&value["username"])),
        None => name,
    }
}

/// Requests with `requestedBy/named` set to [`party`] of the requester, for a table column.
pub fn with_named_requesters(rows: &[Value]) -> Vec<Value> {
    rows.iter()
        .map(|row| {
            let mut row = row.clone();
            let named = party(&row["requestedBy"]);
            if let Some(requested_by) = row.get_mut("requestedBy").and_then(Value::as_object_mut) {
                requested_by.insert("named".into(), Value::String(named));
            }
            row
        })
        .collect()
}

/// A table of `columns` (header, JSON pointer) over `rows`.
pub fn table(rows: &[Value], columns: &[(&str, &str)]) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(columns.iter().map(|(h, _)| *h));
    for row in rows {
        table.add_row(columns.iter().map(|(_, pointer)| {
            // Cut before escaping, so no escape is cut in half.
            let text = raw(row.pointer(pointer).unwrap_or(&Value::Null));
            if text.chars().count() > 60 {
                format!("{}…", shown(&text.chars().take(59).collect::<String>()))
            } else {
                shown(&text)
            }
        }));
    }
    table.to_string()
}

/// A request as a block of `label: value` lines plus its diff and approvals.
pub fn request_details(r: &Value) -> String {
    let mut out = String::new();
    for (label, pointer) in [
        ("Request", "/id"),
        ("Status", "/status"),
        ("Object", "/objectName"),
        ("Resource type", "/resourceType"),
        ("Operation", "/operation"),
        ("Requested by", "/requestedBy"),
        ("Requested at", "/requestedAt"),
        ("Expires at", "/expiresAt"),
        ("Justification", "/justification"),
        ("Approvals", "/approvals"),
        ("Failure", "/failureReason"),
    ] {
        let value = r.pointer(pointer).unwrap_or(&Value::Null);
        let text = if pointer == "/requestedBy" {
            party(value)
        } else if pointer == "/approvals" {
            format!(
                "{} of {}",
                value.as_array().map_or(0, |a| a.iter().filter(|x| x["decision"] == "approve").count()),
                cell(&r["requiredApprovals"])
            )
        } else {
            cell(value)
        };
        if !text.is_empty() {
            out.push_str(&format!("{label:<14} {text}\n"));
        }
    }
    for approval in r["approvals"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {} {} at {}{}\n",
            party(&approval["approver"]),
            if approval["decision"] == "approve" { "approved" } else { "rejected" },
            cell(&approval["at"]),
            approval["notes"].as_str().map(|n| format!(": {}", shown(n))).unwrap_or_default()
        ));
    }
    // R16: who could approve, and whether each is independent of the requester.
    let approvers = r["approvers"].as_array().into_iter().flatten().collect::<Vec<_>>();
    if !approvers.is_empty() {
        out.push_str("\nApprovers:\n");
        for approver in approvers {
            let standing = if approver["eligible"] != true {
                let reasons = approver["reasons"].as_array().into_iter().flatten().map(cell).collect::<Vec<_>>();
                format!("not eligible: {}", reasons.join("; "))
            } else if approver["independent"] == true {
                "independent".to_owned()
            } else {
                format!("NOT INDEPENDENT: {}", cell(&approver["link"]))
            };
            out.push_str(&format!(
                "  {} ({}) {standing}\n",
                cell(&approver["username"]),
                cell(&approver["displayName"])
            ));
        }
    }
    // Only the server's line breaks remain: each line is shown on its own, with a `\r` or an
    // escape sequence inside it escaped.
    out.push_str(&format!("\nChange (digest {}):\n", cell(&r["changeDigest"])));
    let diff = r["diffText"].as_str().unwrap_or_default();
    if !diff.is_empty() {
        for line in diff.strip_suffix('\n').unwrap_or(diff).split('\n') {
            out.push_str(&format!("  {}\n", shown(line)));
        }
    }
    out.push_str(&dependencies(r));
    out
}

/// R17: what the change depends on, each as it is now, and which changed since submission
/// (completing would then apply nothing). Nothing when the request has none.
fn dependencies(r: &Value) -> String {
    let Some(all) = r["dependencies"].as_array().filter(|a| !a.is_empty()) else { return String::new() };
    let mut out = String::from("\nDepends on:\n");
    for d in all {
        let status = match (&d["currentVersion"], d["changed"].as_bool()) {
            (Value::Null, _) => "DELETED since submission".to_owned(),
            (now, Some(true)) => {
                format!("CHANGED since submission (version {}, now {})", cell(&d["versionAtSubmission"]), cell(now))
            }
            _ => "unchanged".to_owned(),
        };
        out.push_str(&format!("  {} '{}': {status}\n", cell(&d["resourceType"]), cell(&d["name"])));
        let names = |list: &Value, field: Option<&str>| -> Vec<String> {
            list.as_array().into_iter().flatten().map(|item| cell(field.map_or(item, |f| &item[f]))).collect()
        };
        if d["members"].is_array() {
            let members = names(&d["members"], Some("username"));
            let members = if members.is_empty() { "(none)".to_owned() } else { members.join(", ") };
            out.push_str(&format!("    members now: {members}\n"));
        }
        if d["permissions"].is_array() {
            out.push_str(&format!("    permissions now: {}\n", names(&d["permissions"], None).join(", ")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn a_body_past_the_input_limit_is_refused_before_anything_is_sent() {
        // Nothing listens on port 9: a refusal that reached the network would be `Connect`.
        let client = Client::new("http://127.0.0.1:9", "token").unwrap();
        let deep = (0..40).fold(json!({}), |inner, _| json!({ "a": inner }));
        for body in [json!({ "notes": "ok\u{0}" }), json!({ "document": deep })] {
            let refused = client.post("/api/v1/requests/x/approve", body).await.unwrap_err();
            assert!(matches!(&refused, ClientError::Refused { code, .. } if code == "input_limit"), "{refused}");
        }
    }

    #[test]
    fn every_field_reaches_the_terminal_escaped() {
        let hostile = "ok\u{1b}[2K\rforged\nline \u{202e}txt";
        let request = json!({
            "id": "r1", "status": "needsApproval", "objectName": hostile, "justification": hostile,
            "requestedBy": {"displayName": hostile}, "requiredApprovals": 1,
            "approvals": [{"approver": {"displayName": hostile}, "decision": "reject", "at": "t", "notes": hostile}],
            "approvers": [{"username": hostile, "displayName": hostile, "eligible": false, "reasons": [hostile]}],
            "diffText": "~ /a: 1 → 2\r\u{1b}[1A\n+ /b: 3\n",
            "dependencies": [{"resourceType": "group", "name": hostile, "versionAtSubmission": 1, "currentVersion": 1,
                "changed": false, "members": [{"username": hostile}], "permissions": null}],
        });
        let shown = request_details(&request);
        assert!(!shown.chars().any(|c| c != '\n' && countersign_core::text::is_hidden(c)), "{shown:?}");
        assert!(shown.contains("ok\\u{1b}[2K\\u{d}forged\\u{a}line \\u{202e}txt"), "{shown}");
        assert!(shown.contains("  ~ /a: 1 → 2\\u{d}\\u{1b}[1A\n  + /b: 3\n"), "only the server's line breaks: {shown}");
        let listed = table(&[request], &[("Justification", "/justification"), ("By", "/requestedBy/displayName")]);
        assert!(!listed.chars().any(|c| c != '\n' && countersign_core::text::is_hidden(c)), "{listed:?}");
        assert_eq!(
            json_for_terminal("{\n  \"a\": \"x\u{202e}y\u{1f600}\"\n}"),
            "{\n  \"a\": \"x\\u202ey\u{1f600}\"\n}"
        );
        assert_eq!(json_for_terminal("\"\u{e000}\u{f0000}\""), "\"\\ue000\\udb80\\udc00\"");
    }

    #[test]
    fn a_request_shows_what_it_depends_on_and_what_changed() {
        let request = json!({
            "id": "r1", "status": "approved", "approvals": [], "requiredApprovals": 1, "diffText": "",
            "dependencies": [
                {"resourceType": "group", "id": "g1", "name": "Helpdesk", "versionAtSubmission": 1, "currentVersion": 2,
                 "changed": true, "members": [{"id": "a1", "username": "alice"}, {"id": "a2", "username": "carol"}],
                 "permissions": null},
                {"resourceType": "role", "id": "r1", "name": "Helpers", "versionAtSubmission": 1, "currentVersion": 1,
                 "changed": false, "members": null, "permissions": ["apps.read"]},
                {"resourceType": "account", "id": "a3", "name": "dave", "versionAtSubmission": 4, "currentVersion": null,
                 "changed": true, "members": null, "permissions": null},
            ],
        });
        let shown = request_details(&request);
        assert!(shown.contains("Depends on:\n"), "{shown}");
        assert!(
            shown.contains(
                "  group 'Helpdesk': CHANGED since submission (version 1, now 2)\n    members now: alice, carol\n"
            ),
            "{shown}"
        );
        assert!(shown.contains("  role 'Helpers': unchanged\n    permissions now: apps.read\n"), "{shown}");
        assert!(shown.contains("  account 'dave': DELETED since submission\n"), "{shown}");
        let without = request_details(&json!({"id": "r1", "dependencies": null}));
        assert!(!without.contains("Depends on"), "{without}");
    }
}
