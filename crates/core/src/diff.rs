//! R12: what exactly changes, as approvers see it.

use serde::Serialize;
use serde_json::Value;

crate::named_enum! {
    /// How a value differs.
    pub enum ChangeKind: "change kind" {
        Added = "added",
        Removed = "removed",
        Changed = "changed",
    }
}

/// One difference between `before` and `after`, at a dotted path such as `document.timeout`.
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

/// Every difference between two JSON states. `Null` stands for "no object" (create, delete).
/// Arrays of plain values (group ids, permissions) are compared as sets, which is what they mean.
pub fn diff(before: &Value, after: &Value) -> Vec<DiffEntry> {
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn is_scalar_array(items: &[Value]) -> bool {
    items.iter().all(|v| !v.is_object() && !v.is_array())
}

fn walk(path: &str, before: &Value, after: &Value, out: &mut Vec<DiffEntry>) {
    if before == after {
        return;
    }
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let p = join(path, key);
                match (b.get(key), a.get(key)) {
                    (Some(x), Some(y)) => walk(&p, x, y, out),
                    (Some(x), None) => out.push(entry(p, ChangeKind::Removed, Some(x), None)),
                    (None, Some(y)) => out.push(entry(p, ChangeKind::Added, None, Some(y))),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(b), Value::Array(a)) if is_scalar_array(b) && is_scalar_array(a) => {
            for gone in b.iter().filter(|x| !a.contains(x)) {
                out.push(entry(path.to_owned(), ChangeKind::Removed, Some(gone), None));
            }
            for new in a.iter().filter(|y| !b.contains(y)) {
                out.push(entry(path.to_owned(), ChangeKind::Added, None, Some(new)));
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            for i in 0..b.len().max(a.len()) {
                let p = format!("{path}[{i}]");
                match (b.get(i), a.get(i)) {
                    (Some(x), Some(y)) => walk(&p, x, y, out),
                    (Some(x), None) => out.push(entry(p, ChangeKind::Removed, Some(x), None)),
                    (None, Some(y)) => out.push(entry(p, ChangeKind::Added, None, Some(y))),
                    (None, None) => {}
                }
            }
        }
        (Value::Null, new) => out.push(entry(path.to_owned(), ChangeKind::Added, None, Some(new))),
        (old, Value::Null) => out.push(entry(path.to_owned(), ChangeKind::Removed, Some(old), None)),
        (old, new) => out.push(entry(path.to_owned(), ChangeKind::Changed, Some(old), Some(new))),
    }
}

fn entry(path: String, kind: ChangeKind, before: Option<&Value>, after: Option<&Value>) -> DiffEntry {
    let path = if path.is_empty() { "(object)".to_owned() } else { path };
    DiffEntry { path, kind, before: before.cloned(), after: after.cloned() }
}

/// One line per difference, for e-mails, the CLI and logs:
/// `~ document.timeout: 30 → 60`, `+ assignedGroupIds: "g2"`, `- description: "old"`.
pub fn render(entries: &[DiffEntry]) -> String {
    if entries.is_empty() {
        return "no changes".to_owned();
    }
    entries
        .iter()
        .map(|e| {
            let show = |v: &Option<Value>| v.as_ref().map(Value::to_string).unwrap_or_default();
            match e.kind {
                ChangeKind::Added => format!("+ {}: {}", e.path, show(&e.after)),
                ChangeKind::Removed => format!("- {}: {}", e.path, show(&e.before)),
                ChangeKind::Changed => format!("~ {}: {} → {}", e.path, show(&e.before), show(&e.after)),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_changes_are_named_by_path() {
        let before = json!({"name": "Zoom", "document": {"version": "5.1", "silent": true}});
        let after = json!({"name": "Zoom", "document": {"version": "5.2", "args": "-q"}});
        let d = diff(&before, &after);
        assert_eq!(
            render(&d),
            "+ document.args: \"-q\"\n- document.silent: true\n~ document.version: \"5.1\" → \"5.2\""
        );
    }

    #[test]
    fn scalar_arrays_compare_as_sets() {
        let d = diff(&json!({"groups": ["a", "b"]}), &json!({"groups": ["b", "c"]}));
        assert_eq!(render(&d), "- groups: \"a\"\n+ groups: \"c\"");
        assert!(diff(&json!({"g": ["a", "b"]}), &json!({"g": ["a", "b"]})).is_empty());
    }

    #[test]
    fn create_and_delete_show_the_whole_object() {
        let obj = json!({"name": "x"});
        assert_eq!(diff(&Value::Null, &obj)[0].kind, ChangeKind::Added);
        assert_eq!(diff(&obj, &Value::Null)[0].path, "(object)");
        assert_eq!(render(&[]), "no changes");
    }

    #[test]
    fn arrays_of_objects_compare_by_position() {
        let d = diff(&json!({"rules": [{"a": 1}]}), &json!({"rules": [{"a": 2}, {"b": 3}]}));
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].path, "rules[0].a");
        assert_eq!(d[1].path, "rules[1]");
    }
}
