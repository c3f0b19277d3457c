//! R12: what exactly changes, as approvers see it, and the digest that pins it.
//!
//! The diff is complete and unambiguous:
//! - paths are JSON Pointers (RFC 6901), so `{"a.b": 0}` and `{"a": {"b": 0}}` differ;
//! - arrays compare in order, so a reorder or a duplicate is a change (fields that are sets
//!   are sets in their state types, so they never show a spurious reorder); what an array keeps
//!   shows nothing, so inserting one rule shows one addition;
//! - [`apply`] rebuilds `after` from `before` and the diff, so nothing can hide outside it;
//! - [`render`] is injective: keys and strings are quoted with every hidden character escaped
//!   (`crate::text`), so no key or value can forge a line, and two different diffs never render
//!   alike.

use crate::profile::{Operation, ResourceType};
use crate::text::quoted;
use crate::DomainError;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

crate::named_enum! {
    /// How a value differs.
    pub enum ChangeKind: "change kind" {
        Added = "added",
        Removed = "removed",
        Changed = "changed",
    }
}

/// One difference between `before` and `after`, at a JSON Pointer such as `/document/timeout`
/// (`""` is the whole object: a create or a delete).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffEntry {
    pub path: String,
    pub kind: ChangeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// Every difference between two JSON states, in document order. `Null` at the top stands for
/// "no object" (create, delete); anywhere below it `null` is a value like any other.
pub fn diff(before: &Value, after: &Value) -> Vec<DiffEntry> {
    let mut out = Vec::new();
    match (before, after) {
        (Value::Null, Value::Null) => {}
        (Value::Null, new) => out.push(entry(String::new(), ChangeKind::Added, None, Some(new))),
        (old, Value::Null) => out.push(entry(String::new(), ChangeKind::Removed, Some(old), None)),
        (old, new) => walk(String::new(), old, new, &mut out),
    }
    out
}

/// `prefix` extended by one reference token, escaped as RFC 6901 says (`~` as `~0`, `/` as `~1`).
fn pointer(prefix: &str, token: &str) -> String {
    let mut path = String::with_capacity(prefix.len() + token.len() + 1);
    path.push_str(prefix);
    path.push('/');
    for c in token.chars() {
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
    path
}

fn walk(path: String, before: &Value, after: &Value, out: &mut Vec<DiffEntry>) {
    if before == after {
        return;
    }
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let p = pointer(&path, key);
                match (b.get(key), a.get(key)) {
                    (Some(x), Some(y)) => walk(p, x, y, out),
                    (Some(x), None) => out.push(entry(p, ChangeKind::Removed, Some(x), None)),
                    (None, Some(y)) => out.push(entry(p, ChangeKind::Added, None, Some(y))),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(b), Value::Array(a)) => walk_array(&path, b, a, out),
        (old, new) => out.push(entry(path, ChangeKind::Changed, Some(old), Some(new))),
    }
}

/// Above this many cells the longest common subsequence is not searched: elements pair by
/// position instead, which is still exact, only less concise.
const MATCH_LIMIT: usize = 1 << 20;

/// Arrays in order. Elements kept unchanged (the longest common subsequence) show nothing;
/// between them, elements pair up by position and show how they changed, and the rest are
/// removed (named by their index in `before`) or added (named by their index in `after`).
fn walk_array(path: &str, b: &[Value], a: &[Value], out: &mut Vec<DiffEntry>) {
    let (mut i, mut j) = (0, 0);
    for (kept_b, kept_a) in kept(b, a).into_iter().chain([(b.len(), a.len())]) {
        let paired = (kept_b - i).min(kept_a - j);
        for k in 0..paired {
            walk(pointer(path, &(i + k).to_string()), &b[i + k], &a[j + k], out);
        }
        for (k, gone) in b.iter().enumerate().take(kept_b).skip(i + paired) {
            out.push(entry(pointer(path, &k.to_string()), ChangeKind::Removed, Some(gone), None));
        }
        for (k, new) in a.iter().enumerate().take(kept_a).skip(j + paired) {
            out.push(entry(pointer(path, &k.to_string()), ChangeKind::Added, None, Some(new)));
        }
        (i, j) = (kept_b + 1, kept_a + 1);
    }
}

/// The index pairs of a longest common subsequence of `b` and `a`, ascending.
fn kept(b: &[Value], a: &[Value]) -> Vec<(usize, usize)> {
    let prefix = b.iter().zip(a).take_while(|(x, y)| x == y).count();
    let suffix = b[prefix..].iter().rev().zip(a[prefix..].iter().rev()).take_while(|(x, y)| x == y).count();
    let (mid_b, mid_a) = (&b[prefix..b.len() - suffix], &a[prefix..a.len() - suffix]);
    let mut pairs: Vec<(usize, usize)> = (0..prefix).map(|k| (k, k)).collect();
    let (n, m) = (mid_b.len(), mid_a.len());
    if n > 0 && m > 0 && n.saturating_mul(m) <= MATCH_LIMIT {
        // lengths[x][y]: the longest common subsequence of mid_b[x..] and mid_a[y..].
        let mut lengths = vec![vec![0u32; m + 1]; n + 1];
        for x in (0..n).rev() {
            for y in (0..m).rev() {
                lengths[x][y] = if mid_b[x] == mid_a[y] {
                    lengths[x + 1][y + 1] + 1
                } else {
                    lengths[x + 1][y].max(lengths[x][y + 1])
                };
            }
        }
        let (mut x, mut y) = (0, 0);
        while x < n && y < m {
            if mid_b[x] == mid_a[y] {
                pairs.push((prefix + x, prefix + y));
                (x, y) = (x + 1, y + 1);
            } else if lengths[x + 1][y] >= lengths[x][y + 1] {
                x += 1;
            } else {
                y += 1;
            }
        }
    }
    pairs.extend((0..suffix).map(|k| (b.len() - suffix + k, a.len() - suffix + k)));
    pairs
}

fn entry(path: String, kind: ChangeKind, before: Option<&Value>, after: Option<&Value>) -> DiffEntry {
    DiffEntry { path, kind, before: before.cloned(), after: after.cloned() }
}

/// The reference tokens of a JSON Pointer, unescaped.
fn tokens(path: &str) -> Result<Vec<String>, DomainError> {
    if path.is_empty() {
        return Ok(vec![]);
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(DomainError::Validation(format!("{path:?} is not a JSON Pointer")));
    };
    Ok(rest.split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect())
}

/// `before` with `entries` applied: `after` again when `entries` is `diff(before, after)`.
/// Deepest paths first, so an array's indices in `before` still hold while the elements it
/// keeps change; then, per depth, replacements, removals (last first, by index in `before`)
/// and additions (first first, by index in `after`).
pub fn apply(before: &Value, entries: &[DiffEntry]) -> Result<Value, DomainError> {
    let mut by_depth: BTreeMap<usize, Vec<&DiffEntry>> = BTreeMap::new();
    for e in entries {
        by_depth.entry(tokens(&e.path)?.len()).or_default().push(e);
    }
    let mut doc = before.clone();
    for level in by_depth.into_values().rev() {
        let of = |kind| level.iter().copied().filter(move |e| e.kind == kind);
        let ordered: Vec<&DiffEntry> = of(ChangeKind::Changed)
            .chain(of(ChangeKind::Removed).collect::<Vec<_>>().into_iter().rev())
            .chain(of(ChangeKind::Added))
            .collect();
        for e in ordered {
            apply_one(&mut doc, e)?;
        }
    }
    Ok(doc)
}

fn apply_one(doc: &mut Value, e: &DiffEntry) -> Result<(), DomainError> {
    let bad = || DomainError::Validation(format!("the diff does not fit at {:?}", e.path));
    let mut tokens = tokens(&e.path)?;
    let Some(last) = tokens.pop() else {
        *doc = e.after.clone().unwrap_or(Value::Null);
        return Ok(());
    };
    let mut parent = doc;
    for token in &tokens {
        parent = match parent {
            Value::Object(map) => map.get_mut(token),
            Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        }
        .ok_or_else(bad)?;
    }
    match (parent, e.kind, &e.after) {
        (Value::Object(map), ChangeKind::Removed, _) => {
            map.remove(&last).ok_or_else(bad)?;
        }
        (Value::Object(map), _, Some(value)) => {
            map.insert(last, value.clone());
        }
        (Value::Array(items), kind, value) => {
            let i = last.parse::<usize>().map_err(|_| bad())?;
            match (kind, value) {
                (ChangeKind::Removed, _) if i < items.len() => {
                    items.remove(i);
                }
                (ChangeKind::Added, Some(value)) if i <= items.len() => items.insert(i, value.clone()),
                (ChangeKind::Changed, Some(value)) if i < items.len() => items[i] = value.clone(),
                _ => return Err(bad()),
            }
        }
        _ => return Err(bad()),
    }
    Ok(())
}

/// What referenced ids are called (groups, accounts, roles), so approvers read
/// `"0190…" (group "Finance laptops")` rather than a bare id.
pub type Names = BTreeMap<String, String>;

/// Whether a path can be shown bare: only characters that never delimit anything in a line.
fn plain_path(path: &str) -> bool {
    !path.is_empty() && path.chars().all(|c| c.is_ascii_alphanumeric() || "/~_-.@$".contains(c))
}

/// A path as every surface shows it: bare when it holds only plain characters, quoted (every
/// hidden character escaped) when not, `(object)` for the whole object.
pub fn shown_path(path: &str) -> String {
    let mut out = String::new();
    write_path(path, &mut out);
    out
}

/// A value as every surface shows it, on one line.
pub fn shown_value(value: &Value, names: &Names) -> String {
    let mut out = String::new();
    write_value(value, names, &mut out);
    out
}

fn write_path(path: &str, out: &mut String) {
    if path.is_empty() {
        out.push_str("(object)");
    } else if plain_path(path) {
        out.push_str(path);
    } else {
        out.push_str(&quoted(path));
    }
}

/// A value on one line: JSON's shape, strings quoted by [`quoted`] (so no newline, escape
/// sequence or bidirectional override reaches a screen), object keys in order.
fn write_value(value: &Value, names: &Names, out: &mut String) {
    match value {
        Value::String(s) => {
            out.push_str(&quoted(s));
            if let Some(name) = names.get(s) {
                out.push_str(" (");
                out.push_str(&quoted(name));
                out.push(')');
            }
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(item, names, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in sorted(map).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&quoted(key));
                out.push_str(": ");
                write_value(item, names, out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn sorted(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// One entry on one line: `~ /document/timeout: 30 → 60`, `+ /assignedGroupIds/1: "g2"`,
/// `- "/document/a b": "old"` (a path with any other character is quoted).
pub fn render_entry(entry: &DiffEntry, names: &Names) -> String {
    let mut line = String::new();
    line.push_str(match entry.kind {
        ChangeKind::Added => "+ ",
        ChangeKind::Removed => "- ",
        ChangeKind::Changed => "~ ",
    });
    write_path(&entry.path, &mut line);
    line.push_str(": ");
    let null = Value::Null;
    match entry.kind {
        ChangeKind::Added => write_value(entry.after.as_ref().unwrap_or(&null), names, &mut line),
        ChangeKind::Removed => write_value(entry.before.as_ref().unwrap_or(&null), names, &mut line),
        ChangeKind::Changed => {
            write_value(entry.before.as_ref().unwrap_or(&null), names, &mut line);
            line.push_str(" → ");
            write_value(entry.after.as_ref().unwrap_or(&null), names, &mut line);
        }
    }
    line
}

/// One line per difference, for e-mails, the CLI, logs and the API's `diffText`.
pub fn render(entries: &[DiffEntry], names: &Names) -> String {
    if entries.is_empty() {
        return "no changes".to_owned();
    }
    entries.iter().map(|e| render_entry(e, names)).collect::<Vec<_>>().join("\n")
}

/// Canonical JSON: keys sorted, no whitespace, numbers and strings as serde_json writes them.
/// Independent of how the map type orders its keys.
fn canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, item)) in sorted(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(&Value::String(key.clone()), out);
                out.push(b':');
                canonical(item, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

/// What a change is, for its digest: everything completion would act on.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub object_id: &'a str,
    pub resource_type: ResourceType,
    pub operation: Operation,
    pub before_version: i64,
    pub before: &'a Value,
    pub after: &'a Value,
}

impl Change<'_> {
    /// R12's `changeDigest`: lowercase hex SHA-256 over the canonical JSON of
    /// `["countersign.change.v1", objectId, type, operation, beforeVersion, before, after]`.
    pub fn digest(&self) -> String {
        let framed = Value::Array(vec![
            Value::from("countersign.change.v1"),
            Value::from(self.object_id),
            Value::from(self.resource_type.as_str()),
            Value::from(self.operation.as_str()),
            Value::from(self.before_version),
            self.before.clone(),
            self.after.clone(),
        ]);
        let mut bytes = Vec::new();
        canonical(&framed, &mut bytes);
        hex::encode(Sha256::digest(&bytes))
    }
}

/// R12: an approver who says which digest they saw approves that one or nothing.
pub fn ensure_digest_seen(presented: Option<&str>, current: &str) -> Result<(), DomainError> {
    match presented.map(str::trim) {
        Some(seen) if !seen.eq_ignore_ascii_case(current) => Err(DomainError::ChangeDigestMismatch {
            seen: seen.chars().take(64).collect(),
            current: current.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// R12: completion applies the digest every counted approval approved, or nothing. Returns
/// why not: an approval of another digest (the stored change was altered after it), or one
/// that recorded none.
pub fn approved_as_is<'a>(
    current: &str,
    approvals: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<(), String> {
    for (approver, digest) in approvals {
        match digest {
            Some(d) if d == current => {}
            Some(d) => {
                return Err(format!(
                "the change no longer matches what {approver} approved (approved digest {d}, stored change {current})"
            ))
            }
            None => return Err(format!("{approver}'s approval recorded no change digest")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
